"""State changes of intake: store raw mail, process it into reports and cases.

Every write to InboundMessage, Reporter, Report, Entity, Case and Attachment made by intake goes
through a function here, so the webhook receiver, the CLI, smtpd, IMAP polling and the API share
one path.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from reports import entities as entity_rules
from reports.bulksql import insert_unless_conflicting
from reports.language import detect_language
from reports.mediahash import hash_message_media
from reports.mime import ParsedMail, parse_message
from reports.mimeparts import header_block
from reports.models import Case, InboundMessage, OutboundMessageId, Reporter
from reports.rawstore import read_stored, store_blob
from reports.threader import ParsedInbound, thread_batch
from reports.timebox import ProcessingTimeout, time_limit

logger = logging.getLogger(__name__)

MAX_ENTITIES_PER_REPORT = 1000
# With 1,000 mentions allowed per report, a batch is cut early so its IN lists stay small.
MAX_MENTIONS_PER_BATCH = 5000
# A drain that died keeps its messages this long before another may take them.
CLAIM_FOR = timedelta(minutes=5)
DEADLOCK_RETRIES = 3
BLOB_WRITERS = 8
RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
# What a quarantined mail's header block is read from: past its 256 KiB header cut the parser
# still finds From, Subject and the threading headers (50,000 Received lines are about 3 MB).
HEADER_PEEK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class StoreResult:
    message: InboundMessage
    created: bool


def _find_redelivery(sha256: str, source: str, provider_event_id: str) -> InboundMessage | None:
    same = Q(sha256=sha256)
    if provider_event_id:
        same |= Q(source=source, provider_event_id=provider_event_id)
    # One query. Each condition matches at most one row (both are unique); the older one wins.
    # Sorted here: an ORDER BY with LIMIT could tempt the planner into walking the primary key.
    return min(InboundMessage.objects.filter(same).order_by()[:2], key=lambda m: m.pk, default=None)


def _storable(value: str, limit: int) -> str:
    """An envelope or provider field as a column can hold it.

    These come from the SMTP session or the provider's payload, so a sender controls them:
    PostgreSQL refuses NUL in text, and the refusal would turn every retry of the delivery into
    another temporary failure, so the mail would never be stored.
    """
    return value.replace("\x00", "\ufffd")[:limit]


def do_store_inbound(
    raw: bytes,
    *,
    source: str,
    provider_event_id: str = "",
    envelope_sender: str = "",
    envelope_recipient: str = "",
    converted_from: str = "",
    received_at: datetime | None = None,
    enqueue: bool = True,
) -> StoreResult:
    """Store one delivery of raw mail, idempotently, and queue its processing after commit.

    This is the only work done before an intake path acknowledges a message; if it raises, the
    caller must answer with a temporary failure so the sender retries. `received_at` is for mail
    acknowledged earlier in another form (a stored webhook request); it defaults to now.
    """
    digest = hashlib.sha256(raw).hexdigest()
    # The blob first: the row must never name bytes that are not on disk. A redelivery of the same
    # bytes finds the blob there and writes nothing.
    name = store_blob("inbound", digest, raw, ".eml")
    message = InboundMessage(
        received_at=received_at or timezone.now(),
        source=_storable(source, 64),
        raw=name,
        raw_size=len(raw),
        sha256=digest,
        provider_event_id=_storable(provider_event_id, 255),
        envelope_sender=_storable(envelope_sender, 320),
        envelope_recipient=_storable(envelope_recipient, 320),
        converted_from=converted_from,
    )
    # One statement, no explicit transaction: the row commits as it is inserted, and a
    # redelivery (same bytes, or the same provider event) inserts nothing instead of failing,
    # also inside a caller's transaction. This is the whole cost of acknowledging a webhook; a
    # look-up first, then BEGIN, INSERT and COMMIT cost twice the CPU.
    if not insert_unless_conflicting(message):
        # A redelivery with other bytes under the same event id leaves its blob unreferenced;
        # deleting it could race with another path storing those very bytes now.
        # Looked up by the values as stored (NUL replaced, truncated), which is what conflicted.
        existing = _find_redelivery(digest, message.source, message.provider_event_id)
        if existing is None:
            raise IntegrityError(f"inbound message {digest} conflicted with a row that is gone")
        return StoreResult(existing, created=False)
    if enqueue:
        _wake_after_commit()
    return StoreResult(message, created=True)


@dataclass(frozen=True)
class Arrival:
    """A raw mail and what its intake path knows about it, for do_store_inbound_many (a webhook
    delivery's event id and envelope, and when the request that carried it was stored)."""

    raw: bytes
    provider_event_id: str = ""
    envelope_sender: str = ""
    envelope_recipient: str = ""
    received_at: datetime | None = None


def do_store_inbound_many(raws: Sequence[bytes | Arrival], *, source: str, enqueue: bool = True) -> list[StoreResult]:
    """Store many messages at once (files, mbox, Maildir, unpacked webhook deliveries),
    idempotently; one result per input.

    The same guarantees as do_store_inbound, with one query and one insert for the lot. If a
    concurrent writer stored one of them meanwhile, or two share a provider event id, it falls
    back to one message at a time.
    """
    arrivals = [raw if isinstance(raw, Arrival) else Arrival(raw) for raw in raws]
    digests = [hashlib.sha256(arrival.raw).hexdigest() for arrival in arrivals]
    known = _stored_with(digests)
    unseen = {digest: arrival for arrival, digest in zip(arrivals, digests, strict=True) if digest not in known}
    # Each blob waits on two fsyncs; written side by side, the file system commits them together.
    with ThreadPoolExecutor(max_workers=BLOB_WRITERS) as pool:
        names = list(pool.map(lambda item: store_blob("inbound", item[0], item[1].raw, ".eml"), unseen.items()))
    now = timezone.now()
    new = {
        digest: InboundMessage(
            received_at=arrival.received_at or now,
            source=_storable(source, 64),
            raw=name,
            raw_size=len(arrival.raw),
            sha256=digest,
            provider_event_id=_storable(arrival.provider_event_id, 255),
            envelope_sender=_storable(arrival.envelope_sender, 320),
            envelope_recipient=_storable(arrival.envelope_recipient, 320),
        )
        for (digest, arrival), name in zip(unseen.items(), names, strict=True)
    }
    try:
        with transaction.atomic():
            InboundMessage.objects.bulk_create(new.values())
            if enqueue and new:
                _wake_after_commit()
    except IntegrityError:
        return [
            do_store_inbound(
                arrival.raw,
                source=source,
                provider_event_id=arrival.provider_event_id,
                envelope_sender=arrival.envelope_sender,
                envelope_recipient=arrival.envelope_recipient,
                received_at=arrival.received_at,
                enqueue=enqueue,
            )
            for arrival in arrivals
        ]
    results = []
    first_copy = set(new)  # a file given twice is stored once, and counted once as stored
    for digest in digests:
        results.append(StoreResult(known.get(digest) or new[digest], created=digest in first_copy))
        first_copy.discard(digest)
    return results


def _stored_with(digests: Sequence[str]) -> dict[str, InboundMessage]:
    return {m.sha256: m for m in InboundMessage.objects.filter(sha256__in=set(digests))}


def _wake_after_commit() -> None:
    from reports.tasks import wake_processing

    # robust: a broker outage must not turn a stored message into an error answer; the sweeper
    # wakes a drain for pending messages.
    transaction.on_commit(wake_processing, robust=True)


@transaction.atomic
def do_mark_inbound_failed(inbound_id: int, *, error: str) -> InboundMessage:
    """Record a failed processing attempt; the message stays visible and can be reprocessed."""
    message = InboundMessage.objects.select_for_update().get(pk=inbound_id)
    message.state = InboundMessage.State.FAILED
    message.error = error[:5000]
    message.attempts = F("attempts") + 1
    message.processed_at = timezone.now()
    message.claimed_until = None
    message.save(update_fields=["state", "error", "attempts", "processed_at", "claimed_until"])
    message.refresh_from_db()
    return message


@transaction.atomic
def do_reset_inbound(inbound_id: int) -> InboundMessage:
    """Put a failed message back to pending so processing runs again."""
    message = InboundMessage.objects.select_for_update().get(pk=inbound_id)
    if message.state == InboundMessage.State.FAILED:
        message.state = InboundMessage.State.PENDING
        message.save(update_fields=["state"])
    return message


def do_claim_pending(limit: int) -> list[int]:
    """Claim up to `limit` pending messages, oldest first, that no other drain is working on."""
    now = timezone.now()
    with transaction.atomic():
        # SKIP LOCKED on PostgreSQL lets two drains claim side by side; SQLite has one writer.
        ids = list(
            InboundMessage.objects.select_for_update(skip_locked=True)
            .filter(state=InboundMessage.State.PENDING)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        InboundMessage.objects.filter(pk__in=ids).update(claimed_until=now + CLAIM_FOR)
    return ids


def do_process_inbound(inbound_id: int) -> InboundMessage:
    """Parse one stored message and thread it into a case. Idempotent: done work is not redone."""
    processed = do_process_batch([inbound_id])
    if not processed:
        raise InboundMessage.DoesNotExist(f"no inbound message with id {inbound_id}")
    return processed[0]


def do_process_batch(inbound_ids: Sequence[int], *, parse_until: float | None = None) -> list[InboundMessage]:
    """Parse stored messages one by one, then thread them in arrival order, a batch at a time.

    Returns the messages it processed, in the order of `inbound_ids` (unknown ids are left out). A
    message that cannot be parsed or threaded is marked failed with its error; it never holds up
    the others. Past `parse_until` (a time.monotonic() value) no further message is parsed: the
    rest are released, still pending, for the next drain, so a batch of slow hostile mail (each
    within its own time budget) cannot outlast the q-cluster's task timeout.
    """
    results: dict[int, InboundMessage] = {}
    failures: dict[int, str] = {}
    parsed: list[ParsedInbound] = []
    released: list[int] = []
    for message in InboundMessage.objects.filter(pk__in=inbound_ids).order_by("pk"):
        if message.state in InboundMessage.DONE_STATES:
            results[message.pk] = message
            continue
        if parse_until is not None and time.monotonic() > parse_until:
            released.append(message.pk)
            continue
        results[message.pk] = message
        try:
            parsed.append(_parse(message))
        except Exception as exc:
            logger.exception("processing inbound message %s failed", message.pk)
            failures[message.pk] = f"{type(exc).__name__}: {exc}"
    InboundMessage.objects.filter(pk__in=released, state=InboundMessage.State.PENDING).update(claimed_until=None)
    for batch in _batches(parsed):
        results |= _thread_or_isolate(batch, failures)
    for inbound_id, error in failures.items():
        results[inbound_id] = do_mark_inbound_failed(inbound_id, error=error)
    return [results[pk] for pk in inbound_ids if pk in results]


def _parse(message: InboundMessage) -> ParsedInbound:
    if message.raw_size > settings.ABUSEDESK_MAX_RAW_BYTES:
        return _quarantined(
            message,
            "max_raw_bytes",
            f"{message.raw_size} bytes, over the limit of {settings.ABUSEDESK_MAX_RAW_BYTES}; "
            "only the header block was read, the raw mail is kept",
        )
    raw = read_stored(message.raw)
    try:
        with time_limit(settings.ABUSEDESK_PROCESS_SECONDS):
            parsed = _parse_mail(raw)
            del raw
            mentions = _mentions_of(parsed)
            language = detect_language(parsed.text)
    except ProcessingTimeout:
        return _quarantined(
            message,
            "time_budget",
            f"parsing took longer than {settings.ABUSEDESK_PROCESS_SECONDS:g} s; only the header block was read, "
            "the raw mail is kept",
        )
    # After the parse and outside its budget, with a budget of its own: an image too slow to
    # decode costs its hash, not the whole report.
    hashes = hash_message_media((part.content, part.sniffed_type) for part in parsed.attachments)
    for part, media in zip(parsed.attachments, hashes, strict=True):
        part.media = media
    return ParsedInbound(message.pk, parsed, mentions, language)


def _quarantined(message: InboundMessage, limit: str, why: str) -> ParsedInbound:
    """A mail too big or too slow to parse still becomes a report, so a moderator sees it: its
    header block alone (sender, subject, threading headers), flagged as quarantined. Retrying would
    only fail again."""
    head = header_block(read_stored(message.raw, HEADER_PEEK_BYTES))
    with time_limit(settings.ABUSEDESK_PROCESS_SECONDS):
        parsed = _parse_mail(head)
    parsed.truncated.append(limit)
    parsed.defects.append(f"{limit}: {why}")
    # The body was not read, so its hash must not make two such mails with one Message-ID look
    # like one redelivery.
    parsed.content_sha256 = message.sha256
    return ParsedInbound(message.pk, parsed, _mentions_of(parsed), "")


def _parse_mail(raw: bytes) -> ParsedMail:
    return parse_message(raw, own_addresses=[settings.ABUSEDESK_ADDRESS], loop_marker=settings.ABUSEDESK_LOOP_MARKER)


def _batches(parsed: list[ParsedInbound]) -> Iterator[list[ParsedInbound]]:
    """Cut at ABUSEDESK_PROCESS_BATCH messages or MAX_MENTIONS_PER_BATCH entity mentions, so the
    batch's IN lists stay well under the databases' parameter limits."""
    batch: list[ParsedInbound] = []
    mentions = 0
    for item in parsed:
        if batch and (
            len(batch) >= settings.ABUSEDESK_PROCESS_BATCH or mentions + len(item.mentions) > MAX_MENTIONS_PER_BATCH
        ):
            yield batch
            batch, mentions = [], 0
        batch.append(item)
        mentions += len(item.mentions)
    if batch:
        yield batch


def _thread_or_isolate(batch: list[ParsedInbound], failures: dict[int, str]) -> dict[int, InboundMessage]:
    """Thread a batch; if it fails, thread its messages one by one so only the bad one fails."""
    try:
        return _thread_retrying_deadlocks(batch)
    except Exception as exc:
        if len(batch) == 1:
            logger.exception("threading inbound message %s failed", batch[0].inbound_id)
            failures[batch[0].inbound_id] = f"{type(exc).__name__}: {exc}"
            return {}
    results: dict[int, InboundMessage] = {}
    for item in batch:
        results |= _thread_or_isolate([item], failures)
    return results


def _thread_retrying_deadlocks(batch: list[ParsedInbound]) -> dict[int, InboundMessage]:
    attempt = 1
    while True:
        try:
            return thread_batch(batch)
        except OperationalError as exc:
            # A deadlock with a moderator's transaction: PostgreSQL rolled ours back; run it again.
            if getattr(exc.__cause__, "sqlstate", None) not in RETRYABLE or attempt == DEADLOCK_RETRIES:
                raise
            attempt += 1


def _mentions_of(parsed: ParsedMail) -> list[entity_rules.EntityMention]:
    found = entity_rules.extract_entities(parsed.subject, source="subject")
    found += entity_rules.extract_entities(parsed.text, source="text")
    found += entity_rules.extract_from_hrefs(parsed.hrefs)
    if parsed.arf:  # an ARF report names what it reports in Reported-URI (RFC 5965)
        found += entity_rules.extract_from_hrefs(parsed.arf.get("reported-uri", []), source="arf")
    for nested in parsed.nested_texts:
        found += entity_rules.extract_entities(nested, source="forwarded")
    return entity_rules.dedupe(found)[:MAX_ENTITIES_PER_REPORT]


@transaction.atomic
def do_register_outbound_message_id(message_id: str, *, case: Case, reporter: Reporter) -> OutboundMessageId:
    """Remember a Message-ID we sent, so a reply to it threads into `case` (DESIGN rule 2)."""
    outbound, _ = OutboundMessageId.objects.get_or_create(
        message_id=message_id.strip("<>")[:998],
        defaults={"case": case, "reporter": reporter, "created_at": timezone.now()},
    )
    return outbound
