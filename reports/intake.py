"""The django-anymail inbound receiver: store the raw mail, queue it, nothing else.

An exception here becomes a 5xx answer, so a provider whose message we could not store retries it.

Most providers deliver the raw MIME (Postmark's RawEmail, SES, SparkPost, Postal, Mandrill,
MailerSend, Mailgun's body-mime, SendGrid's raw route, Resend and Mailtrap downloads). anymail
parses it into a full message tree before its signal reaches us; we store those exact bytes
instead: the evidence stays byte-for-byte what the provider received (DKIM signatures still
verify), and a 25 MB mail is held once in memory instead of as a tree plus a re-serialised copy.
For that, the webhook modules that parse raw MIME get a message class that parses only the header
block and keeps the bytes (`_RawKeepingMessage`); providers that send parsed fields are still
re-serialised by `message_bytes`.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import logging
import re
from collections.abc import Iterable
from email import policy
from email.generator import BytesGenerator, Generator
from email.message import Message
from email.parser import BytesParser
from typing import Any

from anymail.inbound import AnymailInboundMessage
from anymail.signals import AnymailInboundEvent, inbound
from django.dispatch import receiver

from reports.actions import do_store_inbound
from reports.mimeparts import header_block

logger = logging.getLogger(__name__)


class _ContentBoundary:
    """Name a missing multipart boundary after the parts it separates instead of at random.

    anymail builds a new multipart message from the fields of Mailjet, Brevo, Postmark, SendGrid
    and Mailgun payloads without boundaries; the stdlib generator would invent random ones, so a
    redelivery of the same payload would serialise to other bytes and slip past the hash
    deduplication of providers that send no event id. `_make_boundary` is the generator's hook
    for exactly this choice (CPython 3.2+); tests/reports/test_webhooks.py guards it.
    """

    @classmethod
    def _make_boundary(cls, text: bytes | str | None = None) -> str:
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text or b""
        boundary = "=_abusedesk_" + hashlib.sha256(data).hexdigest()[:32]
        if text is None:
            return boundary
        candidate, counter = boundary, 0
        while cls._compile_re("^--" + re.escape(candidate) + "(--)?$", re.MULTILINE).search(text):  # type: ignore[attr-defined]
            candidate, counter = f"{boundary}.{counter}", counter + 1
        return candidate


class _StableBytesGenerator(_ContentBoundary, BytesGenerator):
    pass


class _StableGenerator(_ContentBoundary, Generator):
    pass


def message_bytes(message: Message) -> bytes:
    """Serialise a parsed message back to bytes without re-folding or re-encoding its headers.

    The same message always gives the same bytes, so redeliveries deduplicate on their hash.
    """
    buffer = io.BytesIO()
    try:
        _StableBytesGenerator(buffer, mangle_from_=False, policy=policy.compat32).flatten(message)
    except Exception:
        # A message too broken to re-serialise still has text; keep what we can rather than lose it.
        logger.warning("inbound message could not be re-serialised; storing its string form")
        text = io.StringIO()
        _StableGenerator(text, mangle_from_=False, policy=policy.compat32).flatten(message)
        return text.getvalue().encode("utf-8", "surrogateescape")
    return buffer.getvalue()


# anymail.webhooks modules that turn raw MIME into a message with AnymailInboundMessage.parse_raw_mime*.
RAW_MIME_PROVIDERS = (
    "amazon_ses",
    "mailersend",
    "mailgun",
    "mailtrap",
    "mandrill",
    "postal",
    "postmark",
    "resend",
    "sendgrid",
    "sparkpost",
)


class _RawKeepingMessage(AnymailInboundMessage):
    """What anymail's raw-MIME webhooks build: the header block parsed, the bytes kept as given.

    anymail only reads and adds header fields after parsing, so that is all we parse; our
    receiver stores `raw_mime`. Messages anymail constructs from parsed fields stay full ones.
    """

    raw_mime: bytes | None = None

    @classmethod
    def parse_raw_mime(cls, s: str | bytes) -> AnymailInboundMessage:
        # anymail encodes a str as UTF-8 before parsing too (CPython issue 18271).
        return cls.parse_raw_mime_bytes(s.encode("utf-8") if isinstance(s, str) else s)

    @classmethod
    def parse_raw_mime_bytes(cls, b: bytes) -> AnymailInboundMessage:
        message = BytesParser(cls, policy=policy.default).parsebytes(header_block(b), headersonly=True)
        assert isinstance(message, cls)  # BytesParser builds the class it is given
        message.set_payload("")  # never read: the bytes below are what gets stored
        message.raw_mime = b
        return message

    @classmethod
    def parse_raw_mime_chunks(cls, chunks: Iterable[bytes]) -> AnymailInboundMessage:
        return cls.parse_raw_mime_bytes(b"".join(chunk for chunk in chunks if chunk))

    # Parsed-field payloads, and message/rfc822 attachments in them, get anymail's full parse.
    @classmethod
    def construct(cls, *args: Any, **kwargs: Any) -> AnymailInboundMessage:
        return AnymailInboundMessage.construct(*args, **kwargs)

    @classmethod
    def construct_attachment(cls, *args: Any, **kwargs: Any) -> AnymailInboundMessage:
        return AnymailInboundMessage.construct_attachment(*args, **kwargs)

    @classmethod
    def construct_attachment_from_uploaded_file(cls, *args: Any, **kwargs: Any) -> AnymailInboundMessage:
        return AnymailInboundMessage.construct_attachment_from_uploaded_file(*args, **kwargs)


def keep_raw_mime() -> None:
    """Give anymail's raw-MIME webhook modules the header-only message class (idempotent)."""
    for name in RAW_MIME_PROVIDERS:
        module = importlib.import_module(f"anymail.webhooks.{name}")
        if getattr(module, "AnymailInboundMessage", None) is AnymailInboundMessage:
            module.AnymailInboundMessage = _RawKeepingMessage  # type: ignore[attr-defined]


@receiver(inbound, dispatch_uid="abusedesk-store-inbound")
def store_inbound_webhook(sender: Any, event: AnymailInboundEvent | None, esp_name: str, **kwargs: Any) -> None:
    # anymail signals event=None for payloads it skips, such as Mailtrap's "Test your integration".
    message = event.message if event is not None else None
    if event is None or message is None:
        logger.warning("inbound %s event %s carried no message", esp_name, getattr(event, "event_id", None))
        return
    raw = getattr(message, "raw_mime", None)
    do_store_inbound(
        raw if raw is not None else message_bytes(message),
        source=f"webhook:{esp_name.lower().replace(' ', '_')}",
        provider_event_id=str(event.event_id or ""),
        envelope_sender=str(message.envelope_sender or ""),
        envelope_recipient=str(message.envelope_recipient or ""),
    )
