"""Outlook .msg files: converted to MIME with the original attached, through ingest_mail too."""

from __future__ import annotations

import hashlib
import io
import sys

import pytest
from django.core.management import call_command

from reports.mime import parse_message
from reports.models import Entity, InboundMessage, Report
from reports.outlook import CONVERTED_FROM, OLE_MAGIC, NotAnOutlookMessage, convert_msg
from reports.rawstore import read_blob
from tests.mail import build_msg

TRANSPORT = (
    "Received: from mx.example.org by mail.example.org\r\n"
    "From: Rep Orter <reporter@example.org>\r\n"
    "To: abuse@abusedesk.localhost\r\n"
    "Subject: Report: t.me/subject_channel\r\n"
    "Message-ID: <transport-1@example.org>\r\n"
    "Date: Sun, 15 Mar 2026 10:30:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/alternative;\r\n boundary="original-boundary"\r\n'
    "\r\n"
)


def _original_attachment(raw: bytes):
    parsed = parse_message(raw)
    return parsed, parsed.attachments[-1]


def test_a_msg_becomes_mime_with_its_transport_headers_bodies_attachments_and_the_original():
    original = build_msg(
        "Please block t.me/msg_channel — Привет",
        transport_headers=TRANSPORT,
        html="<p>see <a href='https://t.me/html_channel'>here</a></p>",
        attachments={"evidence.png": (b"\x89PNG\r\n\x1a\nfake", "image/png")},
    )
    raw = convert_msg(original, filename="report.msg")
    parsed, kept = _original_attachment(raw)
    assert (parsed.from_address, parsed.from_name) == ("reporter@example.org", "Rep Orter")
    assert (parsed.subject, parsed.message_id) == ("Report: t.me/subject_channel", "transport-1@example.org")
    assert parsed.date is not None and parsed.date.isoformat() == "2026-03-15T10:30:00+00:00"
    assert parsed.text == "Please block t.me/msg_channel — Привет"
    assert parsed.hrefs == ["https://t.me/html_channel"]
    assert [(a.filename, a.declared_type) for a in parsed.attachments] == [
        ("evidence.png", "image/png"),
        ("report.msg", "application/vnd.ms-outlook"),
    ]
    assert (kept.content, kept.sha256) == (original, hashlib.sha256(original).hexdigest())
    assert b"original-boundary" not in raw  # the original's MIME fields are not carried over
    assert parsed.defects == []


def test_without_transport_headers_the_message_properties_make_the_header():
    raw = convert_msg(build_msg(subject="Channel t.me/props_channel", sender_name="Amira"))
    parsed = parse_message(raw)
    assert (parsed.from_address, parsed.from_name) == ("reporter@example.org", "Amira")
    assert (parsed.subject, parsed.message_id) == ("Channel t.me/props_channel", "msg-1@example.org")
    assert parsed.to == ["abuse@abusedesk.localhost"]
    assert parsed.date is not None and parsed.date.isoformat() == "2026-03-15T10:30:00+00:00"


def test_a_non_ascii_sender_name_survives_the_synthesised_header():
    parsed = parse_message(convert_msg(build_msg(sender_name="Амира Хасан")))
    assert (parsed.from_address, parsed.from_name) == ("reporter@example.org", "Амира Хасан")


def test_a_forwarded_message_inside_becomes_nested_evidence():
    raw = convert_msg(build_msg("see the forward", embedded=[("Join t.me/inner_channel", "t.me/inner_channel now")]))
    parsed = parse_message(raw)
    assert parsed.nested_texts == ["Subject: Join t.me/inner_channel\n\nt.me/inner_channel now"]
    assert [a.declared_type for a in parsed.attachments] == ["message/rfc822", "application/vnd.ms-outlook"]


def test_the_conversion_is_deterministic_so_a_second_import_is_a_duplicate():
    original = build_msg(transport_headers=TRANSPORT)
    assert convert_msg(original) == convert_msg(original)
    assert convert_msg(original) != convert_msg(build_msg("another body", transport_headers=TRANSPORT))


@pytest.mark.parametrize(
    "data",
    [OLE_MAGIC + b"\x00" * 600, OLE_MAGIC + bytes(range(256)) * 8],
    ids=["empty-container", "garbage"],
)
def test_an_ole_file_that_is_not_an_outlook_message_is_refused_clearly(data):
    with pytest.raises(NotAnOutlookMessage, match="not a readable Outlook file"):
        convert_msg(data)


@pytest.mark.django_db
def test_ingest_mail_converts_a_msg_file_records_it_and_stores_it_once(tmp_path, capsys):
    path = tmp_path / "from-a-colleague.msg"
    original = build_msg(transport_headers=TRANSPORT)
    path.write_bytes(original)
    call_command("ingest_mail", "--sync", str(path))
    message = InboundMessage.objects.get()
    assert message.converted_from == CONVERTED_FROM
    assert message.state == InboundMessage.State.PROCESSED
    assert read_blob(message.raw.name) == convert_msg(original, filename="from-a-colleague.msg")
    report = Report.objects.get()
    assert set(Entity.objects.values_list("url", flat=True)) == {
        "https://t.me/subject_channel",
        "https://t.me/msg_channel",
    }
    assert [(a.filename, a.sha256) for a in report.attachments.all()] == [
        ("from-a-colleague.msg", hashlib.sha256(original).hexdigest())
    ]
    assert "converted from .msg 1" in capsys.readouterr().out

    call_command("ingest_mail", str(path))
    assert InboundMessage.objects.count() == 1
    assert "duplicates 1" in capsys.readouterr().out


@pytest.mark.django_db
def test_ingest_mail_skips_an_unreadable_msg_with_a_clear_message(tmp_path, capsys):
    path = tmp_path / "broken.msg"
    path.write_bytes(OLE_MAGIC + b"\x00" * 600)
    call_command("ingest_mail", str(path))
    captured = capsys.readouterr()
    assert f"{path}: Outlook file not converted, skipped: not a readable Outlook file" in captured.err
    assert "unreadable .msg 1" in captured.out
    assert not InboundMessage.objects.exists()


@pytest.mark.django_db
def test_a_msg_on_stdin_is_converted_too(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(build_msg())))
    with pytest.raises(SystemExit) as exit_info:
        call_command("ingest_mail")
    assert exit_info.value.code == 0
    assert InboundMessage.objects.get().converted_from == CONVERTED_FROM
