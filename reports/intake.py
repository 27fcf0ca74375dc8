"""Webhook intake, the worker's half: unpack the provider requests the webhook views stored.

reports.webhooks authenticates a provider's request from its headers, checks it and stores it as
received (a InboundWebhook, one INSERT) before answering; everything django-anymail does to turn
the request into mail happens here, in the drain (reports.tasks.process_pending), a batch at a
time: anymail's view parses the stored request, and each inbound event's mail is stored as an
InboundMessage by reports.actions.do_store_inbound, idempotent on its bytes and on the provider's
event id, with the delivery's time of arrival.

Most providers deliver the raw MIME (Postmark's RawEmail, SES, SparkPost, Postal, Mandrill,
MailerSend, Mailgun's body-mime, SendGrid's raw route, Resend and Mailtrap downloads). Those exact
bytes are what gets stored, not a re-serialisation: the evidence stays byte-for-byte what the
provider received (DKIM signatures still verify). For that, the webhook modules that parse raw
MIME get a message class that parses only the header block and keeps the bytes
(`_RawKeepingMessage`); providers that send parsed fields are re-serialised by `message_bytes`.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import importlib
import io
import itertools
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from email import policy
from email.generator import BytesGenerator, Generator
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32
from typing import Any, cast

from anymail.inbound import AnymailInboundMessage
from anymail.signals import AnymailInboundEvent
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.handlers.wsgi import WSGIRequest
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from reports.actions import Arrival, do_store_inbound_many
from reports.bulksql import insert_unless_conflicting, update_rows
from reports.formdata import parse_form
from reports.mimeparts import header_block
from reports.models import InboundWebhook
from reports.rawstore import read_blob, store_blob
from reports.timebox import time_limit

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


class _PlainHeaders(Compat32):
    """Header fields as the strings they are, unparsed.

    anymail's views read a field or two from a raw mail (Mailgun's spam flags) before the unpack
    stores its bytes; policy.default's structured headers cost a third of the unpack. An 8-bit
    byte comes back as U+FFFD, never as a Header object a view could not call str methods on.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value if value.isascii() else value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


_PLAIN_HEADERS = _PlainHeaders()


class _RawKeepingMessage(AnymailInboundMessage):
    """What anymail's raw-MIME webhooks build: the header block parsed, the bytes kept as given.

    anymail only reads and adds header fields after parsing, so that is all we parse, as plain
    strings; the unpack stores `raw_mime`. Messages anymail constructs from parsed fields stay
    full ones.
    """

    raw_mime: bytes | None = None

    @classmethod
    def parse_raw_mime(cls, s: str | bytes) -> AnymailInboundMessage:
        return cls.parse_raw_mime_bytes(s if isinstance(s, bytes) else _as_received(s))

    @classmethod
    def parse_raw_mime_bytes(cls, b: bytes) -> AnymailInboundMessage:
        parser = BytesParser(cls, policy=_PLAIN_HEADERS)
        message = cast(_RawKeepingMessage, parser.parsebytes(header_block(b), headersonly=True))
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


class _Undecoded(bytes):
    """A base64-decoded raw mail whose UTF-8 decode keeps every byte.

    anymail's SparkPost and Postal views decode the raw mail as UTF-8 before parsing it, which
    raises on 8-bit mail in koi8-r, cp1251 or Latin-1. Decoded with surrogateescape instead, the
    bytes reach `_RawKeepingMessage`, which encodes them back exactly (`_as_received`).
    """

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes.decode(self, encoding, "surrogateescape")


def _b64decode_keeping_bytes(data: str | bytes, *args: Any, **kwargs: Any) -> bytes:
    return _Undecoded(base64.b64decode(data, *args, **kwargs))


# anymail.webhooks modules that base64-decode a raw mail and then decode it as UTF-8.
BASE64_DECODING_PROVIDERS = ("postal", "sparkpost")


def keep_raw_mime() -> None:
    """Give anymail's raw-MIME webhook modules the header-only message class, and those that
    decode base64 raw mail as UTF-8 a decoder that keeps its bytes (idempotent)."""
    for name in RAW_MIME_PROVIDERS:
        module = importlib.import_module(f"anymail.webhooks.{name}")
        if getattr(module, "AnymailInboundMessage", None) is AnymailInboundMessage:
            module.AnymailInboundMessage = _RawKeepingMessage  # type: ignore[attr-defined]
    for name in BASE64_DECODING_PROVIDERS:
        module = importlib.import_module(f"anymail.webhooks.{name}")
        if getattr(module, "b64decode", None) is base64.b64decode:
            module.b64decode = _b64decode_keeping_bytes  # type: ignore[attr-defined]


def _as_received(text: str) -> bytes:
    """The bytes of a raw mail that anymail hands over as a str.

    A form field's raw mail comes from reports.formdata decoded with surrogateescape, which this
    undoes exactly (koi8-r, cp1251 and Latin-1 bytes included). A JSON string is text, encoded as
    UTF-8 like anymail does (CPython issue 18271); only a lone surrogate escaped in the JSON
    (`\\ud800`) fits neither, and is kept by surrogatepass rather than failing the mail.
    """
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


# Bodies up to this size are stored in the delivery's row, larger ones as a file (with two fsyncs,
# like raw mail). PostgreSQL's client-side binding spells a bytea in hex, eight times its size in
# the web worker's memory while the INSERT is built; 1 MB covers nearly every report.
INLINE_BODY_BYTES = 1024 * 1024
# What one unpack holds of request bodies at once (at least one delivery, whatever its size).
UNPACK_BODY_BYTES = 16 * 1024 * 1024
# Form fields that carry a whole raw mail, by provider: kept as bytes (reports.formdata).
RAW_MAIL_FIELDS = {"webhook:mailgun": frozenset({"body-mime"}), "webhook:sendgrid": frozenset({"email"})}
# What a delivery keeps of the request's WSGI environ besides the HTTP_* headers.
KEPT_META = ("CONTENT_TYPE", "PATH_INFO", "QUERY_STRING")
# Never stored: the webhook's basic auth and anything else that authenticates a caller.
CREDENTIAL_HEADERS = frozenset({"HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION", "HTTP_COOKIE"})


def do_store_inbound_webhook(body: bytes, *, source: str, route: str, meta: Mapping[str, Any]) -> bool:
    """Store an authenticated webhook request (its body and WSGI `meta`) as received, and wake the
    drain after commit.

    The whole of what a webhook does before it answers 200: one INSERT, no parsing, and no file
    unless the body is over INLINE_BODY_BYTES. The credentials in `meta` are left out. False when
    the same provider already posted the same body (a retry), which stores nothing. If it raises,
    the view answers 500 and the provider retries.
    """
    body_file = ""
    if len(body) > INLINE_BODY_BYTES:
        # Named per request, not by content: a retry that turns out to be stored already can
        # delete its own copy without touching the first request's.
        body_file = store_blob("webhooks", secrets.token_hex(32), body, ".body")
    delivery = InboundWebhook(
        received_at=timezone.now(),
        source=source,
        route=route,
        meta={
            key: value
            for key, value in meta.items()
            if (key.startswith("HTTP_") and key not in CREDENTIAL_HEADERS) or key in KEPT_META
        },
        body=b"" if body_file else body,
        body_file=body_file,
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
    )
    if not insert_unless_conflicting(delivery):
        if body_file:
            default_storage.delete(body_file)
        return False
    from reports.tasks import wake_processing

    # robust: a broker outage must not turn a stored delivery into an error answer; the sweeper
    # wakes a drain for pending deliveries.
    transaction.on_commit(wake_processing, robust=True)
    return True


def do_unpack_webhook_deliveries(limit: int) -> int:
    """Turn up to `limit` pending deliveries, oldest first, into the InboundMessages they carry.

    Returns how many deliveries it took: fewer than `limit` also when their bodies would hold more
    than UNPACK_BODY_BYTES in memory at once. One that anymail cannot parse (or that took longer than
    ABUSEDESK_PROCESS_SECONDS) is marked failed with the error and keeps its body; the sweep
    retries it with back-off (a provider API that was down). One that carries no mail (a test
    event, an SNS subscription confirmation) is ignored. A storage error rolls the batch back,
    leaving every delivery pending for the next drain.
    """
    keep_raw_mime()
    # On PostgreSQL the deliveries taken stay locked for the whole unpack: row locks, not a lease,
    # so a drain that dies releases them with its connection, and a concurrent drain takes the
    # next ones (SKIP LOCKED). SQLite has no row locks and one writer for the whole database:
    # there anymail parses before the write transaction, so webhook requests do not wait for it,
    # and the transaction keeps only the deliveries no other drain stored meanwhile.
    locking = connection.features.has_select_for_update_skip_locked
    with transaction.atomic() if locking else contextlib.nullcontext():
        deliveries = _take(limit)
        if not deliveries:
            return 0
        carried, failed = _unpacked(deliveries)
        with transaction.atomic():
            if not locking:
                still = set(
                    InboundWebhook.objects.filter(
                        pk__in=[d.pk for d in deliveries], state=InboundWebhook.State.PENDING
                    ).values_list("pk", flat=True)
                )
                carried = [(d, arrivals) for d, arrivals in carried if d.pk in still]
                failed = [d for d in failed if d.pk in still]
            _store(carried)
            _mark(carried, failed)
    return len(deliveries)


def _take(limit: int) -> list[InboundWebhook]:
    """The oldest pending deliveries, up to `limit` and UNPACK_BODY_BYTES (at least one)."""
    pending = (
        InboundWebhook.objects.select_for_update(skip_locked=True)
        .filter(state=InboundWebhook.State.PENDING)
        .order_by("pk")
        .values_list("pk", "size")[:limit]
    )
    taken: list[int] = []
    held = 0
    for delivery_id, size in pending:
        if taken and held + size > UNPACK_BODY_BYTES:
            break
        taken.append(delivery_id)
        held += size
    return list(InboundWebhook.objects.filter(pk__in=taken).order_by("pk")) if taken else []


def _unpacked(
    deliveries: list[InboundWebhook],
) -> tuple[list[tuple[InboundWebhook, list[Arrival]]], list[InboundWebhook]]:
    """Each delivery with the mails anymail finds in it, and those it could not parse (with their
    `error` set)."""
    carried: list[tuple[InboundWebhook, list[Arrival]]] = []
    failed: list[InboundWebhook] = []
    for delivery in deliveries:
        try:
            with time_limit(settings.ABUSEDESK_PROCESS_SECONDS):
                carried.append((delivery, _arrivals_in(delivery)))
        except Exception as exc:
            logger.warning("webhook delivery %s could not be unpacked", delivery.pk, exc_info=True)
            delivery.error = f"{type(exc).__name__}: {exc}"[:5000]
            failed.append(delivery)
    return carried, failed


def _mark(carried: list[tuple[InboundWebhook, list[Arrival]]], failed: list[InboundWebhook]) -> None:
    now = timezone.now()
    done = InboundWebhook.objects.all()
    # The mail is stored now; the request's body would only double it.
    for state, ids in (
        (InboundWebhook.State.UNPACKED, [d.pk for d, arrivals in carried if arrivals]),
        (InboundWebhook.State.IGNORED, [d.pk for d, arrivals in carried if not arrivals]),
    ):
        done.filter(pk__in=ids).update(
            state=state, error="", body=b"", body_file="", attempts=F("attempts") + 1, processed_at=now
        )
    for delivery, _arrivals in carried:
        if delivery.body_file:
            # After the commit: rolled back, the delivery still needs its body.
            transaction.on_commit(functools.partial(default_storage.delete, delivery.body_file))
    update_rows([d for d, arrivals in carried if arrivals], ["inbound_ids"])
    for delivery in failed:
        done.filter(pk=delivery.pk).update(
            state=InboundWebhook.State.FAILED, error=delivery.error, attempts=F("attempts") + 1, processed_at=now
        )


def _store(carried: list[tuple[InboundWebhook, list[Arrival]]]) -> None:
    """Store the mails of these deliveries in their order, a run of one provider's at a time,
    and note on each delivery the InboundMessages it carried."""
    for source, group in itertools.groupby(carried, key=lambda item: item[0].source):
        run = list(group)
        results = iter(
            do_store_inbound_many([a for _, arrivals in run for a in arrivals], source=source, enqueue=False)
        )
        for delivery, arrivals in run:
            delivery.inbound_ids = [next(results).message.pk for _ in arrivals]


def do_retry_failed_deliveries(*, now: datetime) -> int:
    """Put failed deliveries back to pending once their back-off has passed (2**attempts minutes),
    up to ABUSEDESK_PROCESS_MAX_ATTEMPTS attempts; returns how many."""
    retried = 0
    failed = InboundWebhook.objects.filter(
        state=InboundWebhook.State.FAILED, attempts__lt=settings.ABUSEDESK_PROCESS_MAX_ATTEMPTS
    ).values_list("pk", "attempts", "processed_at")[:1000]
    for delivery_id, attempts, processed_at in failed:
        if processed_at is None or processed_at < now - timedelta(minutes=2**attempts):
            retried += InboundWebhook.objects.filter(pk=delivery_id, state=InboundWebhook.State.FAILED).update(
                state=InboundWebhook.State.PENDING
            )
    return retried


def _arrivals_in(delivery: InboundWebhook) -> list[Arrival]:
    """The mails of a delivery's inbound events, as anymail's view for its route parses them."""
    view_class, initkwargs = inbound_views()[delivery.route]
    events = view_class(**initkwargs).parse_events(request_as_received(delivery))
    arrivals = []
    for event in events:
        # anymail yields None for payloads it skips (Mailtrap's "Test your integration"), and
        # Mandrill's combined endpoint can carry tracking events.
        if not isinstance(event, AnymailInboundEvent) or event.message is None:
            continue
        message = event.message
        raw = getattr(message, "raw_mime", None)
        arrivals.append(
            Arrival(
                raw if raw is not None else message_bytes(message),
                provider_event_id=str(event.event_id or ""),
                envelope_sender=str(message.envelope_sender or ""),
                envelope_recipient=str(message.envelope_recipient or ""),
                received_at=delivery.received_at,
            )
        )
    return arrivals


def request_as_received(delivery: InboundWebhook) -> WSGIRequest:
    """The stored request again, for anymail's view: its headers (without credentials) and body,
    with a multipart form parsed by reports.formdata so raw mail fields keep their bytes."""
    body = read_blob(delivery.body_file) if delivery.body_file else bytes(delivery.body)
    environ = {
        **delivery.meta,
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    request = WSGIRequest(environ)
    # Set, not read: reading would hold the body to DATA_UPLOAD_MAX_MEMORY_SIZE.
    request._body = body
    if request.content_type == "multipart/form-data":
        request._post, request._files = parse_form(  # type: ignore[attr-defined]
            body,
            (request.content_params or {}).get("boundary", ""),
            raw_fields=RAW_MAIL_FIELDS.get(delivery.source, ()),
            encoding=request.encoding or settings.DEFAULT_CHARSET,
        )
    return request


@functools.cache
def inbound_views() -> dict[str, tuple[type, dict[str, Any]]]:
    """django-anymail's inbound views by URL name (importing them loads the providers' SDKs)."""
    from anymail import urls as anymail_urls

    views = {}
    for pattern in anymail_urls.urlpatterns:
        callback: Callable[..., Any] = pattern.callback
        if is_inbound_route(pattern.name or ""):
            views[pattern.name or ""] = (callback.view_class, callback.view_initkwargs)  # type: ignore[attr-defined]
    return views


def is_inbound_route(name: str) -> bool:
    """anymail's inbound URLs, and Mandrill's one URL for inbound and tracking events."""
    return name.endswith("_inbound_webhook") or name == "mandrill_webhook"
