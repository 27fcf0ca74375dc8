"""SMTP/LMTP intake (`manage.py smtpd`), driven over a real loopback socket with smtplib."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from django.conf import settings

from reports import smtp_intake
from reports.models import InboundMessage
from reports.rawstore import read_blob
from reports.smtp_intake import IntakeHandler, server_factory

pytestmark = pytest.mark.network

MAX_BYTES = 10_000
RAW = (
    b"From: Reporter <reporter@example.org>\r\n"
    b"To: abuse@abusedesk.localhost\r\n"
    b"Subject: Abuse report\r\n"
    b"Message-ID: <smtp-1@example.org>\r\n"
    b"\r\n"
    b"Please block t.me/example_channel.\r\n"
    b".a line that smtplib dot-stuffs\r\n"
)


class _IntakeController(Controller):
    def __init__(self, handler: IntakeHandler, *, lmtp: bool, port: int) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=port)
        self.lmtp = lmtp

    def factory(self) -> SMTP:
        return server_factory(self.handler, lmtp=self.lmtp, max_bytes=MAX_BYTES, hostname="desk.test")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def start_server() -> Iterator[Callable[..., int]]:
    """Start the intake handler on a free loopback port; returns the port."""
    running: list[tuple[_IntakeController, IntakeHandler]] = []

    def _start(*, lmtp: bool = False) -> int:
        handler = IntakeHandler(
            address=settings.ABUSEDESK_ADDRESS,
            extra_recipients=["reports@desk.example"],
        )
        controller = _IntakeController(handler, lmtp=lmtp, port=_free_port())
        controller.start()
        running.append((controller, handler))
        return controller.port

    yield _start
    for controller, handler in running:
        controller.stop()
        handler.close()


def _send(
    port: int,
    raw: bytes = RAW,
    *,
    sender: str = "reporter@example.org",
    to: str = "abuse@abusedesk.localhost",
) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.example")
        assert client.mail(sender)[0] == 250
        assert client.rcpt(to)[0] == 250
        return client.data(raw)


@pytest.mark.django_db(transaction=True)
def test_message_is_stored_with_its_envelope_and_exact_bytes_before_250(start_server):
    code, answer = _send(start_server())
    message = InboundMessage.objects.get()
    assert code == 250
    assert str(message.pk).encode() in answer
    assert (message.source, message.envelope_sender, message.envelope_recipient) == (
        "smtp",
        "reporter@example.org",
        "abuse@abusedesk.localhost",
    )
    assert read_blob(message.raw.name) == RAW
    assert message.raw_size == len(RAW)


@pytest.mark.django_db(transaction=True)
def test_other_recipients_are_refused_with_550(start_server):
    with smtplib.SMTP("127.0.0.1", start_server(), timeout=10) as client:
        client.ehlo("client.example")
        client.mail("reporter@example.org")
        assert client.rcpt("someone@abusedesk.localhost")[0] == 550
        assert client.rcpt("abuse@other.example")[0] == 550
        assert client.rcpt("abusex@abusedesk.localhost")[0] == 550
        assert client.docmd("DATA")[0] == 503
    assert not InboundMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_plus_addresses_and_configured_recipients_are_accepted(start_server):
    port = start_server()
    assert _send(port, to="Abuse+c123.sig@AbuseDesk.localhost")[0] == 250
    assert _send(port, RAW + b"second\r\n", to="reports@desk.example")[0] == 250
    assert sorted(InboundMessage.objects.values_list("envelope_recipient", flat=True)) == [
        "Abuse+c123.sig@AbuseDesk.localhost",
        "reports@desk.example",
    ]


@pytest.mark.django_db(transaction=True)
def test_size_limit_is_advertised_and_bigger_mail_gets_552(start_server):
    big = RAW + (b"x" * 70 + b"\r\n") * 200
    with smtplib.SMTP("127.0.0.1", start_server(), timeout=10) as client:
        client.ehlo("client.example")
        assert client.esmtp_features["size"] == str(MAX_BYTES)
        assert client.mail("reporter@example.org", ["SIZE=20000"])[0] == 552
        client.mail("reporter@example.org")
        client.rcpt("abuse@abusedesk.localhost")
        assert client.data(big)[0] == 552
    assert not InboundMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_storage_failure_answers_451_and_the_retry_is_stored(start_server, monkeypatch):
    def failing_store(raw: bytes, **kwargs: object) -> None:
        raise OSError("disk full")

    port = start_server()
    monkeypatch.setattr(smtp_intake, "do_store_inbound", failing_store)
    assert _send(port)[0] == 451
    assert not InboundMessage.objects.exists()
    monkeypatch.undo()
    assert _send(port)[0] == 250
    assert InboundMessage.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_redelivery_of_the_same_bytes_is_acknowledged_and_stored_once(start_server):
    port = start_server()
    assert _send(port)[0] == 250
    assert _send(port)[0] == 250
    assert InboundMessage.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_bounce_with_null_sender_is_stored_with_empty_envelope_sender(start_server):
    assert _send(start_server(), sender="")[0] == 250
    assert InboundMessage.objects.get().envelope_sender == ""


@pytest.mark.django_db(transaction=True)
def test_a_nul_byte_in_the_envelope_is_stored_not_refused_forever(start_server):
    """PostgreSQL refuses NUL in text; a 451 for it would make the sender retry until it gives up."""
    port = start_server()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.example")
        assert client.docmd("MAIL FROM:<evil\x00sender@example.org>")[0] == 250
        assert client.rcpt("abuse@abusedesk.localhost")[0] == 250
        assert client.data(RAW)[0] == 250
    assert InboundMessage.objects.get().envelope_sender == "evil\ufffdsender@example.org"


@pytest.mark.django_db(transaction=True)
def test_lmtp_answers_once_per_accepted_recipient(start_server):
    with smtplib.LMTP("127.0.0.1", start_server(lmtp=True), timeout=10) as client:
        client.ehlo("client.example")
        client.mail("reporter@example.org")
        assert client.rcpt("abuse@abusedesk.localhost")[0] == 250
        assert client.rcpt("nobody@abusedesk.localhost")[0] == 550
        assert client.rcpt("abuse+case7@abusedesk.localhost")[0] == 250
        first = client.data(RAW)
        second = client.getreply()
        assert client.noop()[0] == 250
    message = InboundMessage.objects.get()
    assert (first[0], second[0]) == (250, 250)
    assert message.envelope_recipient == "abuse@abusedesk.localhost"
    assert read_blob(message.raw.name) == RAW


@pytest.mark.django_db(transaction=True)
def test_lmtp_storage_failure_answers_451_for_each_recipient(start_server, monkeypatch):
    def failing_store(raw: bytes, **kwargs: object) -> None:
        raise OSError("database down")

    monkeypatch.setattr(smtp_intake, "do_store_inbound", failing_store)
    with smtplib.LMTP("127.0.0.1", start_server(lmtp=True), timeout=10) as client:
        client.ehlo("client.example")
        client.mail("reporter@example.org")
        client.rcpt("abuse@abusedesk.localhost")
        client.rcpt("abuse+x@abusedesk.localhost")
        assert (client.data(RAW)[0], client.getreply()[0]) == (451, 451)
    assert not InboundMessage.objects.exists()


def test_command_stops_cleanly_on_sigterm(tmp_path: Path):
    env = {**os.environ, "ABUSEDESK_VAR_DIR": str(tmp_path)}
    manage = Path(__file__).resolve().parents[2] / "manage.py"
    process = subprocess.Popen(
        [sys.executable, str(manage), "smtpd", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().decode()
        port = int(ready.rsplit(":", 1)[1])
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.ehlo("client.example")[0] == 250
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=4)
    finally:
        process.kill()
    assert "SMTP listening on 127.0.0.1:" in ready
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == "smtpd: stopped"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lmtp", [False, True], ids=["smtp", "lmtp"])
def test_lines_longer_than_1000_bytes_are_accepted_up_to_the_size_limit(start_server, lmtp):
    """aiosmtpd's default answers 500 "Line too long" to these: a permanent bounce for real mail."""
    long_line = b"<p>" + b"x" * 8_000 + b" t.me/long_line_channel</p>\r\n"
    raw = RAW.replace(b"\r\n\r\n", b"\r\nContent-Type: text/html\r\n\r\n", 1) + long_line
    assert len(long_line) < MAX_BYTES < len(long_line) * 2
    port = start_server(lmtp=lmtp)
    client_class = smtplib.LMTP if lmtp else smtplib.SMTP
    with client_class("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.example")
        client.mail("reporter@example.org")
        client.rcpt("abuse@abusedesk.localhost")
        code, _ = client.data(raw)
    assert code == 250
    assert read_blob(InboundMessage.objects.get().raw.name) == raw


@pytest.mark.django_db(transaction=True)
def test_a_single_line_over_the_size_limit_is_refused(start_server):
    with smtplib.SMTP("127.0.0.1", start_server(), timeout=10) as client:
        client.ehlo("client.example")
        client.mail("reporter@example.org")
        client.rcpt("abuse@abusedesk.localhost")
        code, answer = client.data(RAW + b"y" * (MAX_BYTES + 100) + b"\r\n")
        assert (code, answer[:17]) == (500, b"Line too long (se")
        assert client.noop()[0] == 250
    assert not InboundMessage.objects.exists()
