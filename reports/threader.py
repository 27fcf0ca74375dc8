"""Threading a batch of parsed mail into reports and cases, in one transaction.

Mail is threaded in arrival order, exactly as if one message were handled at a time, but the
database sees a fixed number of set-based statements per batch instead of about twenty per
message: rows the rules need are fetched once, decisions are made in memory (each message sees
what the messages before it in the batch did), and the results are written in bulk.

Threading is serialised: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by its
single writer. Parsing, the expensive part, happens before and runs in parallel. Serialising also
means two workers can never open two cases for the same new channel at the same moment.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from reports.authn import from_verified
from reports.bulksql import add_report_counts, update_rows
from reports.entities import EntityMention
from reports.mediahash import apply_hashes
from reports.mime import ParsedAttachment, ParsedMail
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
from reports.rawstore import store_blob
from reports.signals import report_created
from reports.threads import CaseNote, decide_thread
from reports.tokens import find_tokens

logger = logging.getLogger(__name__)

UNKNOWN_SENDER = "unknown-sender@invalid"
MAX_STORED_TEXT = 1_000_000
# Attachment blobs written at once (their fsyncs overlap).
BLOB_WRITERS = 8
# Rule 2 looks at the nearest references only: a References header can list thousands.
MAX_REFS = 100
# Shorter normalised texts (without attachments) get no body fingerprint.
MIN_FINGERPRINT_CHARS = 40
# A same-body report joins an open case only if that case got the same body this recently.
SAME_BODY_WINDOW = timedelta(days=7)
# Any constant works: it names the advisory lock that serialises threading on PostgreSQL.
_THREADING_LOCK = 0x61640001
_MESSAGE_FIELDS = [
    "message_id",
    "content_sha256",
    "processed_at",
    "attempts",
    "error",
    "state",
    "message_id_collision",
    "duplicate_of",
    "claimed_until",
]


@dataclass(frozen=True)
class ParsedInbound:
    """What parsing made of one stored message, ready to thread."""

    inbound_id: int
    parsed: ParsedMail
    mentions: list[EntityMention]
    language: str


def _serialise_threading() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_THREADING_LOCK])


def _sender_of(message: InboundMessage, parsed: ParsedMail) -> tuple[str, str]:
    """The reporter is the From address (or the envelope sender), never Reply-To."""
    address = parsed.from_address or message.envelope_sender.strip().lower() or UNKNOWN_SENDER
    return address[:320], parsed.from_name[:200]


def _refs_of(parsed: ParsedMail) -> list[str]:
    refs = [parsed.in_reply_to, *reversed(parsed.references)] if parsed.in_reply_to else reversed(parsed.references)
    return [r[:998] for r in refs if r][:MAX_REFS]


def body_fingerprint(report_text: str, parsed: ParsedMail) -> str:
    """SHA-256 of the report text, case-folded with whitespace collapsed, and of the attachments'
    hashes.

    "" for a body too short to tell one report from another ("see attached" with no attachment):
    such reports never join a case on their text alone.
    """
    text = " ".join(report_text.casefold().split())
    attachments = sorted(part.sha256 for part in parsed.attachments)
    if len(text) < MIN_FINGERPRINT_CHARS and not attachments:
        return ""
    return hashlib.sha256("\n".join([text, *attachments]).encode("utf-8", "surrogatepass")).hexdigest()


def _report_text(parsed: ParsedMail) -> str:
    parts = [parsed.text]
    parts += [f"----- forwarded or attached message -----\n{nested}" for nested in parsed.nested_texts]
    return "\n\n".join(p for p in parts if p)[:MAX_STORED_TEXT]


class _Batch:
    """The in-memory state of one batch; implements reports.threads.ThreadIndex."""

    def __init__(self, work: Sequence[tuple[ParsedInbound, InboundMessage]]) -> None:
        self.now = timezone.now()
        self.work = work
        self.senders = {message.pk: _sender_of(message, item.parsed) for item, message in work}
        self.cases: dict[int, Case] = {}  # id(case) -> the one object for that case
        self.case_by_pk: dict[int, Case] = {}
        self.new_cases: list[Case] = []
        self.open_cases_of: defaultdict[int, set[int]] = defaultdict(set)  # entity id -> id(case)s
        self.activity: dict[int, tuple[datetime, int, int]] = {}  # id(case) -> rule 4 order
        self.touches = itertools.count(1)
        self.case_counts: defaultdict[int, int] = defaultdict(int)
        self.reopened: list[Case] = []
        self.links: set[tuple[int, int]] = set()  # (id(case), entity id)
        self.on_case: set[tuple[int, int]] = set()  # (id(case), reporter id) threaded in this batch
        self.reporter_counts: defaultdict[int, int] = defaultdict(int)
        self.renamed_reporters: dict[int, Reporter] = {}
        self.entity_counts: defaultdict[int, int] = defaultdict(int)
        self.refined_entities: dict[int, Entity] = {}
        self.reports: list[tuple[Report, list[EntityMention], list[Entity], ParsedMail]] = []
        self.messages: list[InboundMessage] = []
        self._load()

    # -- fetching what the rules need, once ---------------------------------------------------

    def _load(self) -> None:
        self._load_reporters()
        self._load_entities()
        batch_ids = [message.pk for _, message in self.work]
        mids = {item.parsed.message_id[:998] for item, _ in self.work if item.parsed.message_id}
        self.same_message_id: defaultdict[str, list[tuple[InboundMessage, str, str | None]]] = defaultdict(list)
        for other in (
            InboundMessage.objects.filter(message_id__in=mids)
            .exclude(pk__in=batch_ids)
            .exclude(state=InboundMessage.State.IGNORED)
            .select_related("report__reporter")
            .order_by("pk")
        ):
            reporter = getattr(getattr(other, "report", None), "reporter", None)
            self.same_message_id[other.message_id].append(
                (other, other.content_sha256, reporter.email if reporter else None)
            )
        refs = {ref for item, _ in self.work for ref in _refs_of(item.parsed)}
        self.ours = {
            o.message_id: (o.reporter_id, o.case_id)
            for o in OutboundMessageId.objects.filter(message_id__in=refs).only("message_id", "reporter", "case")
        }
        # Message-ID -> reporter id -> case of that reporter's latest threaded report with it. Keyed
        # by reporter as well, because a Message-ID is only the sender's word: a second sender
        # reusing it must not take the first one's replies away from their case (rule 1).
        self.theirs: defaultdict[str, dict[int, int | Case]] = defaultdict(dict)
        for mid, reporter_id, case_id in (
            Report.objects.filter(message_id__in=refs, case__isnull=False)
            .order_by("id")
            .values_list("message_id", "reporter_id", "case_id")
        ):
            self.theirs[mid].pop(reporter_id, None)  # re-inserted last: the latest report wins
            self.theirs[mid][reporter_id] = case_id
        self.texts = {item.inbound_id: _report_text(item.parsed) for item, _ in self.work}
        self.fingerprints = {
            item.inbound_id: body_fingerprint(self.texts[item.inbound_id], item.parsed) for item, _ in self.work
        }
        recent_same_body = Report.objects.filter(
            body_sha256__in={f for f in self.fingerprints.values() if f},
            case__status__in=Case.OPEN_STATUSES,
            received_at__gte=self.now - SAME_BODY_WINDOW,
        ).order_by("id")
        self.case_of_body: dict[str, int | Case] = dict(recent_same_body.values_list("body_sha256", "case_id"))
        links = list(
            Case.entities.through.objects.filter(
                entity_id__in=[e.pk for e in self.entities.values()], case__status__in=Case.OPEN_STATUSES
            ).values_list("entity_id", "case_id")
        )
        wanted = {case_id for _, case_id in links}
        wanted |= {case_id for _, case_id in self.ours.values()}
        wanted |= _ids(case for by_reporter in self.theirs.values() for case in by_reporter.values())
        wanted |= _ids(self.case_of_body.values())
        for case in Case.objects.filter(pk__in=wanted):
            self._adopt(case)
        for entity_id, case_id in links:
            self.open_cases_of[entity_id].add(id(self.case_by_pk[case_id]))

    def _load_reporters(self) -> None:
        emails = {address for address, _ in self.senders.values()}
        self.reporters = {r.email: r for r in Reporter.objects.filter(email__in=emails)}
        missing = emails - self.reporters.keys()
        if missing:
            # Names and languages are filled in per message by _touch_reporter.
            Reporter.objects.bulk_create(
                [Reporter(email=email, first_seen=self.now, last_seen=self.now) for email in sorted(missing)],
                ignore_conflicts=True,
            )
            self.reporters |= {r.email: r for r in Reporter.objects.filter(email__in=missing)}

    def _load_entities(self) -> None:
        first_seen_as: dict[str, EntityMention] = {}
        for item, _ in self.work:
            if not item.parsed.automatic:
                for mention in item.mentions:
                    first_seen_as.setdefault(mention.url, mention)
        self.entities: dict[str, Entity] = {}
        if first_seen_as:
            Entity.objects.bulk_create(
                [
                    Entity(url=m.url, kind=m.kind.value, lookalike=m.lookalike, first_seen=self.now, last_seen=self.now)
                    for m in first_seen_as.values()
                ],
                ignore_conflicts=True,
            )
            self.entities = {e.url: e for e in Entity.objects.filter(url__in=first_seen_as)}

    def _adopt(self, case: Case) -> Case:
        """The batch's one object for a case, so every change to it accumulates in one place."""
        if case.pk is not None and case.pk in self.case_by_pk:
            return self.case_by_pk[case.pk]
        self.cases[id(case)] = case
        if case.pk is not None:
            self.case_by_pk[case.pk] = case
        self.activity[id(case)] = (case.last_report_at, 0, case.pk or 0)
        return case

    def _case(self, case_id: int | Case) -> Case:
        if isinstance(case_id, Case):
            return case_id
        found = self.case_by_pk.get(case_id)
        return found if found is not None else self._adopt(Case.objects.get(pk=case_id))

    # -- ThreadIndex -------------------------------------------------------------------------

    def our_mail(self, ref: str) -> tuple[int, Case] | None:
        found = self.ours.get(ref)
        return None if found is None else (found[0], self._case(found[1]))

    def their_mail(self, ref: str, reporter_id: int) -> tuple[int, Case] | None:
        by_reporter = self.theirs.get(ref)
        if not by_reporter:
            return None
        if reporter_id in by_reporter:
            return reporter_id, self._case(by_reporter[reporter_id])
        other, case_id = next(reversed(by_reporter.items()))  # the latest other reporter's
        return other, self._case(case_id)

    def case_by_reference(self, reference: str) -> Case | None:
        for case in self.cases.values():
            if case.reference == reference:
                return case
        found = Case.objects.filter(reference=reference).first()
        return None if found is None else self._adopt(found)

    def is_on_case(self, case: Case, reporter_id: int) -> bool:
        if (id(case), reporter_id) in self.on_case:
            return True
        return case.pk is not None and (
            Report.objects.filter(case=case, reporter_id=reporter_id).exists()
            or OutboundMessageId.objects.filter(case=case, reporter_id=reporter_id).exists()
        )

    def latest_open_case(self, entity_ids: Sequence[int]) -> Case | None:
        keys = {key for entity_id in entity_ids for key in self.open_cases_of.get(entity_id, ())}
        candidates = [key for key in keys if self.cases[key].status in Case.OPEN_STATUSES]
        if not candidates:
            return None
        return self.cases[max(candidates, key=self.activity.__getitem__)]

    def open_case_with_body(self, fingerprint: str) -> Case | None:
        found = self.case_of_body.get(fingerprint)
        case = None if found is None else self._case(found)
        return case if case is not None and case.status in Case.OPEN_STATUSES else None

    # -- threading one message ---------------------------------------------------------------

    def _earlier_same_message(self, parsed: ParsedMail, sender: str) -> tuple[InboundMessage | None, bool]:
        """Rule 1 for a Message-ID seen before: (the original if this is a redelivery, collision?)."""
        collision = False
        for other, content_sha256, other_sender in self.same_message_id.get(parsed.message_id[:998], ()):
            if content_sha256 == parsed.content_sha256 and other_sender == sender:
                return other, False
            collision = True
        return None, collision

    def _touch_reporter(self, reporter: Reporter, name: str, language: str) -> None:
        self.reporter_counts[reporter.pk] += 1
        if name and not reporter.display_name:
            reporter.display_name = name
            self.renamed_reporters[reporter.pk] = reporter
        if language and language != reporter.language:
            reporter.language = language
            self.renamed_reporters[reporter.pk] = reporter

    def _entities_of(self, mentions: Iterable[EntityMention]) -> list[Entity]:
        found = []
        for mention in mentions:
            entity = self.entities[mention.url]
            # "@name" only says "some account"; a link tells the kind, so a later link refines it.
            if entity.kind == Entity.Kind.ACCOUNT and mention.kind.value != Entity.Kind.ACCOUNT:
                entity.kind = mention.kind.value
                self.refined_entities[entity.pk] = entity
            self.entity_counts[entity.pk] += 1
            found.append(entity)
        return found

    def _new_case(self, *, priority: int, parse_error: str) -> Case:
        case = Case(
            created_at=self.now,
            updated_at=self.now,
            last_report_at=self.now,
            priority=priority,
            parse_error=parse_error[:500],
        )
        self.new_cases.append(case)
        return self._adopt(case)

    def _attach(self, case: Case, entities: list[Entity], *, follow_up: bool, notes: list[str | CaseNote]) -> None:
        key = id(case)
        if follow_up and case.status not in Case.OPEN_STATUSES:
            # A reporter answering a closed case needs a moderator to look again.
            notes.append(f"Reopened {case.reference} (was {case.status}).")
            case.status = Case.Status.OPEN
            self.reopened.append(case)
            for entity_id in Case.entities.through.objects.filter(case_id=case.pk).values_list("entity_id", flat=True):
                self.open_cases_of[entity_id].add(key)
        for entity in entities:
            self.links.add((key, entity.pk))
            self.open_cases_of[entity.pk].add(key)
        self.case_counts[key] += 1
        case.last_report_at = case.updated_at = self.now
        self.activity[key] = (self.now, next(self.touches), case.pk or 0)

    def _case_answered_by(self, parsed: ParsedMail) -> Case | None:
        """The case of our mail that this automatic mail references (an auto-reply or a bounce that
        quotes our Message-ID, which only the recipient's side has seen). Our own mail looping
        back is not kept on a case (T8), and a case token is not enough: the token is in every
        subject we send, so a stranger could use it to write into the case."""
        if parsed.automatic == "loop":
            # Operators alert on this (SECURITY T8): something sends our mail back to us. The
            # reports with automatic_reason "loop" are the count.
            logger.warning("mail loop: our own mail came back (Message-ID %s)", parsed.message_id)
            return None
        for ref in _refs_of(parsed):
            ours = self.our_mail(ref)
            if ours is not None:
                return ours[1]
        return None

    def thread(self, item: ParsedInbound, message: InboundMessage) -> None:
        parsed = item.parsed
        sender, sender_name = self.senders[message.pk]
        message.message_id = parsed.message_id[:998]
        message.content_sha256 = parsed.content_sha256
        message.processed_at = self.now
        message.attempts += 1
        message.error = ""
        message.claimed_until = None
        self.messages.append(message)

        original, collision = self._earlier_same_message(parsed, sender)
        if original is not None:
            message.state = InboundMessage.State.IGNORED
            message.duplicate_of = original
            return
        message.message_id_collision = collision
        reporter = self.reporters[sender]
        self._touch_reporter(reporter, sender_name, item.language)
        verified = from_verified(message.source, parsed.auth_results)
        quarantine = f"parser limits hit: {', '.join(parsed.truncated)}"[:500] if parsed.truncated else ""
        notes: list[str | CaseNote] = []
        if collision:
            notes.append("Another mail with this Message-ID and different content exists; kept separately.")
        fingerprint = self.fingerprints[item.inbound_id]
        mentions, entities = item.mentions, []
        if parsed.automatic:
            # Automatic mail is kept as evidence of delivery problems, not as a report about entities.
            # It opens no case, but one that answers our mail is stored on that case, without
            # bumping, reopening or acknowledging it (SECURITY T5, T6).
            case, kind, mentions = self._case_answered_by(parsed), Report.Kind.AUTOMATIC, []
        else:
            entities = self._entities_of(mentions)
            valid, invalid = find_tokens(parsed.subject, message.envelope_recipient, *parsed.to)
            decision = decide_thread(
                self,
                reporter_id=reporter.pk,
                refs=_refs_of(parsed),
                valid_tokens=valid,
                invalid_tokens=invalid,
                entity_ids=[e.pk for e in entities],
                body_fingerprint=fingerprint,
            )
            notes += decision.notes
            kind = decision.kind
            case = decision.case or self._new_case(
                # A trusted flagger's From is only their word unless a trusted receiver verified it.
                priority=Case.Priority.HIGH if reporter.trusted and verified else Case.Priority.NORMAL,
                # A mail that hit the parser's limits is quarantined: moderators see why, and it
                # is never acknowledged automatically (SECURITY.md section 3).
                parse_error=quarantine,
            )
            self._attach(case, entities, follow_up=kind == Report.Kind.FOLLOW_UP, notes=notes)
            self.on_case.add((id(case), reporter.pk))
            if parsed.message_id:
                self.theirs[message.message_id].pop(reporter.pk, None)
                self.theirs[message.message_id][reporter.pk] = case
            if fingerprint:
                self.case_of_body[fingerprint] = case
        report = Report(
            inbound=message,
            reporter=reporter,
            case=case,
            kind=kind,
            subject=parsed.subject[:998],
            text=self.texts[item.inbound_id],
            language=item.language,
            message_id=message.message_id,
            in_reply_to=parsed.in_reply_to[:998],
            references=" ".join(parsed.references)[:20_000],
            sent_at=parsed.date,
            received_at=message.received_at,
            automatic_reason=(parsed.automatic or "")[:200],
            auth_results=parsed.auth_results,
            from_verified=verified,
            parse_error=quarantine,
            reply_to=parsed.reply_to[:320],
            arf=parsed.arf,
            notes=notes,
            defects=[*parsed.defects, *parsed.truncated][:100],
            body_sha256=fingerprint,
        )
        self.reports.append((report, mentions, entities, parsed))
        if parsed.message_id:
            self.same_message_id[message.message_id].append((message, parsed.content_sha256, sender))
        message.state = InboundMessage.State.PROCESSED

    # -- writing it all ----------------------------------------------------------------------

    def flush(self) -> None:
        now = self.now
        for case in self.new_cases:
            case.report_count = self.case_counts[id(case)]
        Case.objects.bulk_create(self.new_cases)
        for case in self.new_cases:
            case.reference = f"AD-{case.pk:06d}"
        update_rows(self.new_cases, ["reference"])
        new = {id(case) for case in self.new_cases}
        add_report_counts(
            Case,
            {self.cases[key].pk: n for key, n in self.case_counts.items() if key not in new},
            last_report_at=now,
            updated_at=now,
        )
        for case in self.reopened:
            Case.objects.filter(pk=case.pk).exclude(status__in=Case.OPEN_STATUSES).update(status=Case.Status.OPEN)
        links = Case.entities.through
        links.objects.bulk_create(
            [links(case_id=self.cases[key].pk, entity_id=entity_id) for key, entity_id in sorted(self.links)],
            ignore_conflicts=True,
        )
        add_report_counts(Reporter, self.reporter_counts, last_seen=now)
        update_rows(list(self.renamed_reporters.values()), ["display_name", "language"])
        add_report_counts(Entity, self.entity_counts, last_seen=now)
        update_rows(list(self.refined_entities.values()), ["kind"])

        for report, *_ in self.reports:
            report.notes = [str(note) for note in report.notes]
        Report.objects.bulk_create([report for report, *_ in self.reports])
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
                for report, mentions, entities, _ in self.reports
                for m, entity in zip(mentions, entities, strict=True)
            ]
        )
        parts = [(report, part) for report, _, _, parsed in self.reports for part in parsed.attachments]
        names = _store_attachments([part for _, part in parts])
        Attachment.objects.bulk_create([_attachment(report, part, names[part.sha256]) for report, part in parts])
        update_rows(self.messages, _MESSAGE_FIELDS)
        for report, *_ in self.reports:
            if report.kind != Report.Kind.AUTOMATIC:
                # Moderation listens (acknowledgements); reports never imports moderation.
                transaction.on_commit(partial(report_created.send, sender=Report, report=report), robust=True)


def _ids(cases: Iterable[int | Case]) -> set[int]:
    """The case ids among `cases`; the maps that hold them get in-batch Case objects only once
    threading starts, so before it these are all of them."""
    return {case for case in cases if isinstance(case, int)}


def _store_attachments(parts: Sequence[ParsedAttachment]) -> dict[str, str]:
    """Write each distinct attachment once, side by side: every blob waits on two fsyncs, and
    written one after the other, the 500 attachments one mail may carry took seconds on a busy
    disk; the file system commits concurrent ones together."""
    unique = {part.sha256: part.content for part in parts}
    if len(unique) <= 1:
        return {sha256: store_blob("attachments", sha256, content) for sha256, content in unique.items()}
    with ThreadPoolExecutor(max_workers=BLOB_WRITERS) as pool:
        names = pool.map(lambda item: store_blob("attachments", *item), unique.items())
        return dict(zip(unique, names, strict=True))


def _attachment(report: Report, part: ParsedAttachment, name: str) -> Attachment:
    attachment = Attachment(
        report=report,
        filename=part.filename[:255],
        declared_type=part.declared_type[:255],
        content_type=part.sniffed_type[:255],
        size=part.size,
        sha256=part.sha256,
        file=name,
        is_inline=part.is_inline,
    )
    if part.media is not None:  # else pending, for `manage.py hash_attachments`
        apply_hashes(attachment, part.media)
    return attachment


@transaction.atomic
def thread_batch(items: Sequence[ParsedInbound]) -> dict[int, InboundMessage]:
    """Thread parsed messages in the order given; messages already done are left as they are."""
    _serialise_threading()
    ids = [item.inbound_id for item in items]
    rows = {m.pk: m for m in InboundMessage.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
    threaded_before = set(Report.objects.filter(inbound_id__in=ids).values_list("inbound_id", flat=True))
    results: dict[int, InboundMessage] = {}
    work: list[tuple[ParsedInbound, InboundMessage]] = []
    mended: list[InboundMessage] = []
    for item in items:
        message = rows[item.inbound_id]
        results[message.pk] = message
        if message.state in InboundMessage.DONE_STATES:
            continue
        if message.pk in threaded_before:
            # Threaded before, then marked failed or reset by hand: never thread a message twice.
            message.state = InboundMessage.State.PROCESSED
            message.error = ""
            message.claimed_until = None
            mended.append(message)
            continue
        work.append((item, message))
    update_rows(mended, ["state", "error", "claimed_until"])
    if work:
        batch = _Batch(work)
        for item, message in work:
            batch.thread(item, message)
        batch.flush()
    return results
