"""The django-anymail inbound receiver: store the raw mail, queue it, nothing else.

An exception here becomes a 5xx answer, so a provider whose message we could not store retries it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from email import policy
from email.generator import BytesGenerator, Generator
from email.message import Message
from typing import Any

from anymail.signals import AnymailInboundEvent, inbound
from django.dispatch import receiver

from reports.actions import do_store_inbound

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


@receiver(inbound, dispatch_uid="abusedesk-store-inbound")
def store_inbound_webhook(sender: Any, event: AnymailInboundEvent | None, esp_name: str, **kwargs: Any) -> None:
    # anymail signals event=None for payloads it skips, such as Mailtrap's "Test your integration".
    message = event.message if event is not None else None
    if event is None or message is None:
        logger.warning("inbound %s event %s carried no message", esp_name, getattr(event, "event_id", None))
        return
    do_store_inbound(
        message_bytes(message),
        source=f"webhook:{esp_name.lower().replace(' ', '_')}",
        provider_event_id=str(event.event_id or ""),
        envelope_sender=str(message.envelope_sender or ""),
        envelope_recipient=str(message.envelope_recipient or ""),
    )
