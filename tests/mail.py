"""Building test mail in code, for cases the real-world files in tests/data do not cover."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage


def build_mail(
    body: str = "Please block t.me/example_channel, it posts execution videos.",
    *,
    sender: str = "Reporter <reporter@example.org>",
    to: str = "abuse@abusedesk.localhost",
    subject: str = "Abuse report",
    message_id: str | None = "<report-1@example.org>",
    headers: dict[str, str] | None = None,
) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    if message_id:
        mail["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(body)
    return mail.as_bytes()


def build_msg(
    body: str = "Please block t.me/msg_channel, it posts execution videos.",
    *,
    subject: str = "Abuse report",
    sender_name: str = "Rep Orter",
    sender_address: str = "reporter@example.org",
    transport_headers: str | None = None,
    html: str | None = None,
    attachments: dict[str, tuple[bytes, str]] | None = None,
    embedded: list[tuple[str, str]] | None = None,
) -> bytes:
    """An Outlook .msg file, written by aspose-email-foss (an implementation independent of the
    extract-msg reader the desk converts with). `embedded` holds (subject, body) of forwarded
    messages; `attachments` maps file names to (bytes, MIME type)."""
    from aspose.email_foss import msg

    message = msg.MapiMessage.create(subject, body)
    message.set_property(msg.PropertyId.SENDER_NAME, sender_name)
    message.set_property(msg.PropertyId.SENDER_EMAIL_ADDRESS, sender_address)
    message.set_property(msg.PropertyId.INTERNET_MESSAGE_ID, "<msg-1@example.org>")
    message.set_property(msg.PropertyId.MESSAGE_DELIVERY_TIME, datetime(2026, 3, 15, 10, 30, tzinfo=UTC))
    message.add_recipient("abuse@abusedesk.localhost", display_name="Abuse desk")
    if transport_headers is not None:
        message.set_property(msg.PropertyId.TRANSPORT_MESSAGE_HEADERS, transport_headers)
    if html is not None:
        message.set_property(msg.PropertyId.BODY_HTML, html.encode())
    for name, (data, mime_type) in (attachments or {}).items():
        message.add_attachment(name, data, mime_type=mime_type)
    for inner_subject, inner_body in embedded or []:
        message.add_embedded_message_attachment(msg.MapiMessage.create(inner_subject, inner_body), filename="fwd.msg")
    return bytes(message.to_bytes())
