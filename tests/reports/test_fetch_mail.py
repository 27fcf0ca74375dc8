"""IMAP polling (`manage.py fetch_mail`) against a real, throwaway Dovecot on loopback."""

from __future__ import annotations

import grp
import imaplib
import io
import os
import pwd
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from reports import imap_intake
from reports.actions import StoreResult, do_store_inbound
from reports.imap_intake import ImapError, parse_mailbox_url
from reports.models import InboundMessage
from reports.rawstore import read_blob

DOVECOT = Path("/usr/sbin/dovecot")
PASSWORD = "s3cret/@pass"
KEYWORD = imap_intake.STORED_KEYWORD


def _mail(subject: str, body: str = "Please block t.me/example_channel.") -> bytes:
    return (
        f"From: Reporter <reporter@example.org>\r\nTo: abuse@abusedesk.localhost\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


MAILS = [_mail("one"), _mail("two"), _mail("three")]

# Any user name logs in with PASSWORD and gets its own empty Maildir: one server serves the whole
# module, and each test takes a fresh user.
CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
auth_failure_delay = 0
first_valid_uid = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
}}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass(frozen=True)
class Mailbox:
    port: int
    user: str

    def url(self, folder: str = "INBOX") -> str:
        # The password holds "/" and "@" to prove the URL's percent-decoding.
        return f"imap://{self.user}:s3cret%2F%40pass@127.0.0.1:{self.port}/{folder}"

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=5)
        client.login(self.user, PASSWORD)
        return client


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_greeting(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dovecot exited with {process.returncode}: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                if probe.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.02)
    pytest.fail(f"dovecot did not answer on port {port} within 10 s")


@pytest.fixture(scope="module")
def dovecot_port() -> Iterator[int]:
    """A private Dovecot run unprivileged on a free loopback port; stopped and removed afterwards.

    Module-scoped because stopping takes about 1 s (the master waits for its log process), while
    starting takes about 50 ms. It lives in its own temporary folder rather than tmp_path: pytest's
    folders sit under a 0700 directory that the unprivileged user cannot enter.
    """
    if not DOVECOT.exists():
        reason = "Dovecot is not installed (apt-get install dovecot-imapd)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    # Dovecot refuses to run its login process as root.
    as_root = os.geteuid() == 0
    account = pwd.getpwnam("nobody") if as_root else pwd.getpwuid(os.getuid())
    group = grp.getgrgid(account.pw_gid).gr_name
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="abusedesk-dovecot-") as folder:
        root = Path(folder)
        for sub in ("run", "state", "home"):
            (root / sub).mkdir()
        config = CONFIG.format(root=root, user=account.pw_name, group=group, port=port, password=PASSWORD)
        (root / "dovecot.conf").write_text(config)
        if as_root:
            root.chmod(0o755)
            for path in [root, *root.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)
        process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(root / "dovecot.conf")],
            user=account.pw_uid if as_root else None,
            group=account.pw_gid if as_root else None,
            extra_groups=[] if as_root else None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_greeting(process, port, root / "dovecot.log")
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def dovecot(dovecot_port: int) -> Mailbox:
    """A fresh, empty mailbox on the module's Dovecot."""
    return Mailbox(dovecot_port, f"desk-{uuid.uuid4().hex[:12]}")


def _append(dovecot: Mailbox, *mails: bytes, folder: str = "INBOX", flags: str | None = None) -> None:
    with dovecot.client() as client:
        for mail in mails:
            assert client.append(folder, flags, None, mail)[0] == "OK"


def _flags_by_subject(dovecot: Mailbox, folder: str = "INBOX") -> dict[str, set[str]]:
    with dovecot.client() as client:
        client.select(folder)
        data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1]
    found = {}
    for item in data:
        if isinstance(item, tuple):
            subject = item[1].decode().split(":", 1)[1].strip()
            flags = item[0].decode().split("FLAGS (", 1)[1].split(")", 1)[0]
            found[subject] = set(flags.split())
    return found


def _count(dovecot: Mailbox, folder: str) -> int:
    with dovecot.client() as client:
        return int(client.select(folder)[1][0] or 0)


def _fetch_mail(dovecot: Mailbox, *args: str) -> str:
    out = io.StringIO()
    call_command("fetch_mail", "--url", dovecot.url(), "--once", *args, stdout=out)
    return out.getvalue()


@pytest.mark.network
@pytest.mark.django_db
def test_each_message_is_stored_with_its_exact_bytes(dovecot):
    _append(dovecot, *MAILS)
    output = _fetch_mail(dovecot)
    messages = InboundMessage.objects.all()
    assert "stored 3, duplicates 0, too large 0, failed 0" in output
    assert "s3cret" not in output
    assert {m.source for m in messages} == {"imap"}
    assert sorted(read_blob(m.raw.name) for m in messages) == sorted(MAILS)


@pytest.mark.network
@pytest.mark.django_db
def test_stored_messages_are_flagged_seen_and_with_our_keyword(dovecot):
    _append(dovecot, *MAILS)
    _fetch_mail(dovecot)
    assert _flags_by_subject(dovecot) == {name: {"\\Seen", KEYWORD} for name in ("one", "two", "three")}


@pytest.mark.network
@pytest.mark.django_db
def test_second_run_stores_nothing_new(dovecot):
    _append(dovecot, *MAILS)
    _fetch_mail(dovecot)
    output = _fetch_mail(dovecot)
    assert "stored 0, duplicates 0, too large 0, failed 0" in output
    assert InboundMessage.objects.count() == 3


@pytest.mark.network
@pytest.mark.django_db
def test_messages_a_human_has_read_are_still_fetched(dovecot):
    _append(dovecot, MAILS[0], flags="(\\Seen)")
    _fetch_mail(dovecot)
    assert InboundMessage.objects.count() == 1


@pytest.mark.network
@pytest.mark.django_db
def test_a_message_already_stored_elsewhere_counts_as_duplicate_and_is_flagged(dovecot):
    do_store_inbound(MAILS[0], source="smtp", enqueue=False)
    _append(dovecot, MAILS[0])
    assert "stored 0, duplicates 1" in _fetch_mail(dovecot)
    assert _flags_by_subject(dovecot) == {"one": {"\\Seen", KEYWORD}}


@pytest.mark.network
@pytest.mark.django_db
def test_failed_store_leaves_that_message_unflagged_for_the_next_poll(dovecot, monkeypatch):
    def store_except_two(raw: bytes, **kwargs: Any) -> StoreResult:
        if b"Subject: two" in raw:
            raise OSError("disk full")
        return do_store_inbound(raw, **kwargs)

    _append(dovecot, *MAILS)
    monkeypatch.setattr(imap_intake, "do_store_inbound", store_except_two)
    with pytest.raises(CommandError, match="1 message"):
        _fetch_mail(dovecot)
    assert InboundMessage.objects.count() == 2
    assert _flags_by_subject(dovecot) == {
        "one": {"\\Seen", KEYWORD},
        "two": set(),
        "three": {"\\Seen", KEYWORD},
    }
    monkeypatch.undo()
    assert "stored 1, duplicates 0" in _fetch_mail(dovecot)
    assert InboundMessage.objects.count() == 3


@pytest.mark.network
@pytest.mark.django_db
def test_message_over_the_size_limit_is_skipped_and_left_unflagged(dovecot, settings):
    settings.ABUSEDESK_MAX_RAW_BYTES = 1000
    _append(dovecot, MAILS[0], _mail("huge", "x" * 2000))
    assert "stored 1, duplicates 0, too large 1, failed 0" in _fetch_mail(dovecot)
    assert _flags_by_subject(dovecot) == {"one": {"\\Seen", KEYWORD}, "huge": set()}


@pytest.mark.network
@pytest.mark.django_db
def test_done_folder_mode_moves_stored_messages(dovecot):
    _append(dovecot, *MAILS)
    with dovecot.client() as client:
        client.create("Done")
    assert "stored 3" in _fetch_mail(dovecot, "--done-folder", "Done")
    assert (_count(dovecot, "INBOX"), _count(dovecot, "Done")) == (0, 3)
    assert InboundMessage.objects.count() == 3


@pytest.mark.network
@pytest.mark.django_db
def test_done_folder_without_move_support_copies_and_expunges(dovecot, monkeypatch):
    monkeypatch.setattr(imap_intake, "has_capability", lambda client, name: name != "MOVE")
    _append(dovecot, *MAILS)
    with dovecot.client() as client:
        client.create("Done")
    _fetch_mail(dovecot, "--done-folder", "Done")
    assert (_count(dovecot, "INBOX"), _count(dovecot, "Done")) == (0, 3)


@pytest.mark.network
@pytest.mark.django_db
def test_missing_done_folder_is_an_error_and_touches_nothing(dovecot):
    _append(dovecot, *MAILS)
    with pytest.raises(CommandError, match="Nope"):
        _fetch_mail(dovecot, "--done-folder", "Nope")
    assert not InboundMessage.objects.exists()
    assert _count(dovecot, "INBOX") == 3


@pytest.mark.network
@pytest.mark.django_db
def test_wrong_password_is_an_error_without_the_password(dovecot):
    with pytest.raises(CommandError) as error:
        call_command(
            "fetch_mail",
            "--url",
            f"imap://{dovecot.user}:wrong@127.0.0.1:{dovecot.port}/INBOX",
            "--once",
        )
    assert "wrong" not in str(error.value)


def test_mailbox_url_is_percent_decoded_with_default_port_and_folder():
    mailbox = parse_mailbox_url("imaps://desk%40example.org:p%3Ass@mail.example", default_folder="INBOX")
    assert (
        mailbox.tls,
        mailbox.host,
        mailbox.port,
        mailbox.username,
        mailbox.password,
        mailbox.folder,
    ) == (
        True,
        "mail.example",
        993,
        "desk@example.org",
        "p:ss",
        "INBOX",
    )
    assert str(mailbox) == "imaps://desk@example.org@mail.example:993/INBOX"


def test_mailbox_url_without_credentials_or_with_another_scheme_is_refused():
    with pytest.raises(ImapError):
        parse_mailbox_url("imap://mail.example/INBOX", default_folder="INBOX")
    with pytest.raises(ImapError):
        parse_mailbox_url("https://u:p@mail.example/", default_folder="INBOX")


def test_fetch_mail_without_a_url_is_an_error(settings):
    settings.ABUSEDESK_IMAP_URL = ""
    with pytest.raises(CommandError, match="ABUSEDESK_IMAP_URL"):
        call_command("fetch_mail", "--once")
