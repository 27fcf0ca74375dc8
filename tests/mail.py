"""Building test mail in code, for cases the real-world files in tests/data do not cover."""

from __future__ import annotations

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
