"""State changes of intake: store raw mail, process it into reports and cases.

Every write to InboundMessage, Reporter, Report, Entity, Case and Attachment made by intake goes
through a function here, so the webhook receiver, the CLI, smtpd, IMAP polling and the API share
one path.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from reports import entities as entity_rules
from reports.language import detect_language
from reports.mime import ParsedMail, parse_message
from reports.models import (
    Attachment,
    Case,
    Entity,
    InboundMessage,
    OutboundMessageId,
    Report,
    ReportEntity,
    Reporter,
)
from reports.rawstore import read_blob, store_blob
from reports.signals import report_created
from reports.threads import decide_thread
from reports.timebox import time_limit
from reports.tokens import find_tokens

logger = logging.getLogger(__name__)

UNKNOWN_SENDER = "unknown-sender@invalid"
MAX_ENTITIES_PER_REPORT = 1000
MAX_STORED_TEXT = 1_000_000


@dataclass(frozen=True)
class StoreResult:
    message: InboundMessage
    created: bool


def _find_redelivery(sha256: str, source: str, provider_event_id: str) -> InboundMessage | None:
    found = InboundMessage.objects.filter(sha256=sha256).first()
    if found is None and provider_event_id:
        found = InboundMessage.objects.filter(source=source, provider_event_id=provider_event_id).first()
    return found


def do_store_inbound(
    raw: bytes,
    *,
    source: str,
    provider_event_id: str = "",
    envelope_sender: str = "",
    envelope_recipient: str = "",
    enqueue: bool = True,
) -> StoreResult:
    """Store one delivery of raw mail, idempotently, and queue its processing after commit.

    This is the only work done before an intake path acknowledges a message; if it raises, the
    caller must answer with a temporary failure so the sender retries.
    """
    digest = hashlib.sha256(raw).hexdigest()
    existing = _find_redelivery(digest, source, provider_event_id)
    if existing is not None:
        return StoreResult(existing, created=False)
    name = store_blob("inbound", digest, raw, ".eml")
    try:
        with transaction.atomic():
            message = InboundMessage.objects.create(
                received_at=timezone.now(),
                source=source[:64],
                raw=name,
                raw_size=len(raw),
                sha256=digest,
                provider_event_id=provider_event_id[:255],
                envelope_sender=envelope_sender[:320],
                envelope_recipient=envelope_recipient[:320],
            )
            if enqueue:
                from reports.tasks import enqueue_processing

                # robust: a broker outage must not turn a stored message into an error answer;
                # the sweeper re-queues pending messages.
                transaction.on_commit(lambda: enqueue_processing(message.pk), robust=True)
    except IntegrityError:
        # A concurrent redelivery committed first.
        existing = _find_redelivery(digest, source, provider_event_id)
        if existing is None:
            raise
        return StoreResult(existing, created=False)
    return StoreResult(message, created=True)


@transaction.atomic
def do_mark_inbound_failed(inbound_id: int, *, error: str) -> InboundMessage:
    """Record a failed processing attempt; the message stays visible and can be reprocessed."""
    message = InboundMessage.objects.select_for_update().get(pk=inbound_id)
    message.state = InboundMessage.State.FAILED
    message.error = error[:5000]
    message.attempts = F("attempts") + 1
    message.processed_at = timezone.now()
    message.save(update_fields=["state", "error", "attempts", "processed_at"])
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


def do_process_inbound(inbound_id: int) -> InboundMessage:
    """Parse one stored message and thread it into a case. Idempotent: done work is not redone."""
    message = InboundMessage.objects.get(pk=inbound_id)
    if message.state in (InboundMessage.State.PROCESSED, InboundMessage.State.IGNORED):
        return message
    if message.raw_size > settings.ABUSEDESK_MAX_RAW_BYTES:
        return do_mark_inbound_failed(
            inbound_id,
            error=f"too large to parse: {message.raw_size} bytes (limit {settings.ABUSEDESK_MAX_RAW_BYTES}); the raw mail is kept",
        )
    try:
        raw = read_blob(message.raw.name)
        with time_limit(settings.ABUSEDESK_PROCESS_SECONDS):
            parsed = parse_message(
                raw,
                own_addresses=[settings.ABUSEDESK_ADDRESS],
                loop_marker=settings.ABUSEDESK_LOOP_MARKER,
            )
            del raw
            mentions = _mentions_of(parsed)
            language = detect_language(parsed.text)
        return _thread_parsed(inbound_id, parsed, mentions, language)
    except Exception as exc:
        logger.exception("processing inbound message %s failed", inbound_id)
        return do_mark_inbound_failed(inbound_id, error=f"{type(exc).__name__}: {exc}")


def _mentions_of(parsed: ParsedMail) -> list[entity_rules.EntityMention]:
    found = entity_rules.extract_entities(parsed.subject, source="subject")
    found += entity_rules.extract_entities(parsed.text, source="text")
    found += entity_rules.extract_from_hrefs(parsed.hrefs)
    for nested in parsed.nested_texts:
        found += entity_rules.extract_entities(nested, source="forwarded")
    return entity_rules.dedupe(found)[:MAX_ENTITIES_PER_REPORT]


def _report_text(parsed: ParsedMail) -> str:
    parts = [parsed.text]
    parts += [f"----- forwarded or attached message -----\n{nested}" for nested in parsed.nested_texts]
    return "\n\n".join(p for p in parts if p)[:MAX_STORED_TEXT]


def _sender_of(message: InboundMessage, parsed: ParsedMail) -> tuple[str, str]:
    """The reporter is the From address (or the envelope sender), never Reply-To."""
    address = parsed.from_address or message.envelope_sender.strip().lower() or UNKNOWN_SENDER
    return address[:320], parsed.from_name[:200]


def _earlier_same_message(
    message: InboundMessage, parsed: ParsedMail, sender: str
) -> tuple[InboundMessage | None, bool]:
    """Rule 1 for a Message-ID seen before: (the original if this is a redelivery, collision?)."""
    if not parsed.message_id:
        return None, False
    others = (
        InboundMessage.objects.filter(message_id=parsed.message_id[:998])
        .exclude(pk=message.pk)
        .exclude(state=InboundMessage.State.IGNORED)
        .select_related("report__reporter")
        .order_by("pk")
    )
    collision = False
    for other in others:
        other_sender = getattr(getattr(other, "report", None), "reporter", None)
        if other.content_sha256 == parsed.content_sha256 and other_sender is not None and other_sender.email == sender:
            return other, False
        collision = True
    return None, collision


def _upsert_reporter(address: str, name: str, language: str, now: datetime) -> Reporter:
    """The sender's Reporter row with its counters bumped; its in-memory counters are not refreshed."""
    reporter, _ = Reporter.objects.get_or_create(
        email=address, defaults={"display_name": name, "language": language, "first_seen": now, "last_seen": now}
    )
    fields: dict[str, object] = {"report_count": F("report_count") + 1, "last_seen": now}
    if name and not reporter.display_name:
        fields["display_name"] = reporter.display_name = name
    if language:
        fields["language"] = reporter.language = language
    Reporter.objects.filter(pk=reporter.pk).update(**fields)
    return reporter


def _upsert_entities(mentions: Sequence[entity_rules.EntityMention], now: datetime) -> list[Entity]:
    """Create missing entities and lock all of them, in id order so concurrent workers never deadlock."""
    if not mentions:
        return []
    Entity.objects.bulk_create(
        [Entity(url=m.url, kind=m.kind.value, lookalike=m.lookalike, first_seen=now, last_seen=now) for m in mentions],
        ignore_conflicts=True,
    )
    by_url = {
        e.url: e for e in Entity.objects.select_for_update().filter(url__in=[m.url for m in mentions]).order_by("pk")
    }
    for mention in mentions:
        entity = by_url[mention.url]
        # "@name" only says "some account"; a link tells the kind, so a later link refines it.
        if entity.kind == Entity.Kind.ACCOUNT and mention.kind.value != Entity.Kind.ACCOUNT:
            entity.kind = mention.kind.value
            entity.save(update_fields=["kind"])
    Entity.objects.filter(pk__in=[e.pk for e in by_url.values()]).update(
        report_count=F("report_count") + 1, last_seen=now
    )
    return [by_url[m.url] for m in mentions]


def _new_case(now: datetime, *, priority: int, parse_error: str = "") -> Case:
    case = Case.objects.create(
        created_at=now, updated_at=now, last_report_at=now, priority=priority, parse_error=parse_error[:500]
    )
    case.reference = f"AD-{case.pk:06d}"
    case.save(update_fields=["reference"])
    return case


@transaction.atomic
def _thread_parsed(
    inbound_id: int, parsed: ParsedMail, mentions: list[entity_rules.EntityMention], language: str
) -> InboundMessage:
    message = InboundMessage.objects.select_for_update().get(pk=inbound_id)
    if message.state in (InboundMessage.State.PROCESSED, InboundMessage.State.IGNORED):
        return message
    if Report.objects.filter(inbound=message).exists():
        # Threaded before, then marked failed or reset by hand: never thread a message twice.
        message.state = InboundMessage.State.PROCESSED
        message.error = ""
        message.save(update_fields=["state", "error"])
        return message
    now = timezone.now()
    sender, sender_name = _sender_of(message, parsed)
    message.message_id = parsed.message_id[:998]
    message.content_sha256 = parsed.content_sha256
    message.processed_at = now
    message.attempts = F("attempts") + 1
    message.error = ""

    original, collision = _earlier_same_message(message, parsed, sender)
    if original is not None:
        message.state = InboundMessage.State.IGNORED
        message.duplicate_of = original
        message.save(
            update_fields=["message_id", "content_sha256", "processed_at", "attempts", "error", "state", "duplicate_of"]
        )
        return message
    message.message_id_collision = collision

    reporter = _upsert_reporter(sender, sender_name, language, now)
    notes: list[str] = []
    if collision:
        notes.append("Another mail with this Message-ID and different content exists; kept separately.")
    entities: list[Entity] = []
    if parsed.automatic:
        # Automatic mail is kept as evidence of delivery problems, not as a report about entities.
        case, kind, mentions = None, Report.Kind.AUTOMATIC, []
    else:
        entities = _upsert_entities(mentions, now)
        valid, invalid = find_tokens(parsed.subject, message.envelope_recipient, *parsed.to)
        refs = (
            [parsed.in_reply_to, *reversed(parsed.references)]
            if parsed.in_reply_to
            else list(reversed(parsed.references))
        )
        decision = decide_thread(
            reporter=reporter,
            refs=[r for r in refs if r],
            valid_tokens=valid,
            invalid_tokens=invalid,
            entities=entities,
        )
        notes += decision.notes
        kind = decision.kind
        case = decision.case or _new_case(
            now,
            priority=Case.Priority.HIGH if reporter.trusted else Case.Priority.NORMAL,
            # A mail that hit the parser's limits is quarantined: moderators see why, and it
            # is never acknowledged automatically (SECURITY.md section 3).
            parse_error=f"parser limits hit: {', '.join(parsed.truncated)}" if parsed.truncated else "",
        )
        _attach_to_case(case, entities, now, follow_up=kind == Report.Kind.FOLLOW_UP, notes=notes)

    report = Report.objects.create(
        inbound=message,
        reporter=reporter,
        case=case,
        kind=kind,
        subject=parsed.subject[:998],
        text=_report_text(parsed),
        language=language,
        message_id=parsed.message_id[:998],
        in_reply_to=parsed.in_reply_to[:998],
        references=" ".join(parsed.references)[:20_000],
        sent_at=parsed.date,
        received_at=message.received_at,
        automatic_reason=(parsed.automatic or "")[:200],
        auth_results=parsed.auth_results,
        arf=parsed.arf,
        notes=notes,
        defects=[*parsed.defects, *parsed.truncated][:100],
    )
    ReportEntity.objects.bulk_create(
        [
            ReportEntity(
                report=report,
                entity=entity,
                seen_as=m.seen_as[:300],
                source=m.source[:16],
                defanged=m.defanged,
                lookalike=m.lookalike,
            )
            for m, entity in zip(mentions, entities, strict=True)
        ]
    )
    _store_attachments(report, parsed)
    if kind != Report.Kind.AUTOMATIC:
        # Moderation listens (acknowledgements); reports never imports moderation.
        transaction.on_commit(lambda: report_created.send(sender=Report, report=report), robust=True)
    message.state = InboundMessage.State.PROCESSED
    message.save(
        update_fields=[
            "message_id",
            "content_sha256",
            "processed_at",
            "attempts",
            "error",
            "state",
            "message_id_collision",
        ]
    )
    return message


def _attach_to_case(case: Case, entities: list[Entity], now: datetime, *, follow_up: bool, notes: list[str]) -> None:
    # Set-based writes instead of a row lock: a report storm about one channel hits this case
    # from every worker at once, and each statement below is atomic on its own.
    if entities:
        links = Case.entities.through
        links.objects.bulk_create([links(case_id=case.pk, entity_id=e.pk) for e in entities], ignore_conflicts=True)
    if follow_up:
        closed = Case.objects.filter(pk=case.pk).exclude(status__in=Case.OPEN_STATUSES)
        was = closed.values_list("status", flat=True).first()
        # A reporter answering a closed case needs a moderator to look again.
        if was is not None and closed.update(status=Case.Status.OPEN):
            notes.append(f"Reopened {case.reference} (was {was}).")
    Case.objects.filter(pk=case.pk).update(report_count=F("report_count") + 1, last_report_at=now, updated_at=now)


def _store_attachments(report: Report, parsed: ParsedMail) -> None:
    rows = []
    for part in parsed.attachments:
        name = store_blob("attachments", part.sha256, part.content)
        rows.append(
            Attachment(
                report=report,
                filename=part.filename[:255],
                declared_type=part.declared_type[:255],
                content_type=part.sniffed_type[:255],
                size=part.size,
                sha256=part.sha256,
                file=name,
                is_inline=part.is_inline,
            )
        )
    Attachment.objects.bulk_create(rows)


@transaction.atomic
def do_register_outbound_message_id(message_id: str, *, case: Case, reporter: Reporter) -> OutboundMessageId:
    """Remember a Message-ID we sent, so a reply to it threads into `case` (DESIGN rule 2)."""
    outbound, _ = OutboundMessageId.objects.get_or_create(
        message_id=message_id.strip("<>")[:998],
        defaults={"case": case, "reporter": reporter, "created_at": timezone.now()},
    )
    return outbound
