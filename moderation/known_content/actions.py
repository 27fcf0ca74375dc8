"""State changes of known content: banks, imports, a case's media banked, matches recorded.

Each writes exactly one audit entry in its transaction, and records nothing when nothing changed.
A change to a bank's hashes bumps its revision (so every worker's PDQ index rebuilds) and, after
commit, re-matches the open cases' attachments against that bank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify

from moderation.actions import Actor, do_change_case_priority
from moderation.audit import record
from moderation.known_content import MIN_QUALITY
from moderation.known_content.lists import ListedHash, ReadList
from moderation.models import AuditAction, BankedHash, HashBank, HashKind, KnownContentMatch
from reports.models import Attachment, Case, Entity, Report

SYSTEM = Actor(user=None, label="system")
_INSERT_BATCH = 5000
_REPORTED_PROBLEMS = 100


@dataclass(frozen=True, slots=True)
class Found:
    """One attachment found in a bank (moderation.known_content.matching)."""

    attachment_id: int
    banked_hash_id: int
    kind: str
    distance: int = 0


@dataclass
class ImportResult:
    bank: HashBank
    added: int = 0
    already: int = 0
    rejected: int = 0
    bank_created: bool = False
    problems: list[tuple[int, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _audit(action: AuditAction, actor: Actor, **kwargs: object) -> None:
    record(action, actor=actor.user, actor_label=actor.label, ip=actor.ip, **kwargs)  # type: ignore[arg-type]


def _rematch_after_commit(bank: HashBank) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task("moderation.tasks.rematch_known_content", bank.pk, task_name=f"rematch-bank-{bank.pk}"),
        robust=True,
    )


def _bump(bank: HashBank) -> None:
    HashBank.objects.filter(pk=bank.pk).update(revision=F("revision") + 1, updated_at=timezone.now())


@transaction.atomic
def do_save_hash_bank(bank: HashBank, *, actor: Actor) -> bool:
    """Create a bank or change its name, description or active flag (admin); False when unchanged."""
    now = timezone.now()
    old = None
    if bank.pk is not None:
        before = HashBank.objects.select_for_update().get(pk=bank.pk)
        old = {"name": before.name, "description": before.description, "active": before.active}
    new = {"name": bank.name, "description": bank.description, "active": bank.active}
    if old == new:
        return False
    bank.updated_at = now
    if bank.pk is None:
        bank.created_at = now
        bank.save()
    else:
        # Switching a bank on or off changes what matches, like a change of its hashes.
        bank.revision = before.revision + (before.active != bank.active)
        bank.save(update_fields=["name", "description", "active", "revision", "updated_at"])
    _audit(AuditAction.HASH_BANK_SAVED, actor, data={"bank": bank.pk, "old": old, "new": new})
    if bank.active and old is not None and not old["active"]:
        _rematch_after_commit(bank)
    return True


def _bank_named(name: str) -> tuple[HashBank, bool]:
    slug = slugify(name)[:64]
    if not slug:
        raise ValidationError("a bank needs a name of letters, digits or hyphens")
    now = timezone.now()
    bank, created = HashBank.objects.get_or_create(name=slug, defaults={"created_at": now, "updated_at": now})
    return HashBank.objects.select_for_update().get(pk=bank.pk), created


@transaction.atomic
def do_import_hashes(bank_name: str, listed: ReadList, *, filename: str, actor: Actor) -> ImportResult:
    """Add a read hash list to the bank of that name (created if missing): one audit entry with the
    counts and the first rejected rows; hashes already in the bank are left as they are, so
    importing the same list again changes nothing and records nothing."""
    bank, created = _bank_named(bank_name)
    result = ImportResult(bank=bank, bank_created=created, rejected=listed.rejected, problems=list(listed.problems))
    seen: set[tuple[str, str]] = set()
    unique: list[ListedHash] = []
    for row in listed.hashes:
        if (row.kind, row.value) not in seen:
            seen.add((row.kind, row.value))
            unique.append(row)
    result.already = len(listed.hashes) - len(unique)  # repeated within the list itself
    now = timezone.now()
    for start in range(0, len(unique), _INSERT_BATCH):
        batch = unique[start : start + _INSERT_BATCH]
        present = set(
            BankedHash.objects.filter(bank=bank, value__in={row.value for row in batch}).values_list("kind", "value")
        )
        new = [row for row in batch if (row.kind, row.value) not in present]
        result.already += len(batch) - len(new)
        BankedHash.objects.bulk_create(
            [
                BankedHash(
                    bank=bank,
                    kind=row.kind,
                    value=row.value,
                    label=row.label,
                    source=row.source,
                    listed_on=row.listed_on,
                    quality=row.quality,
                    added_at=now,
                )
                for row in new
            ]
        )
        result.added += len(new)
        for row in new:
            result.counts[row.kind] = result.counts.get(row.kind, 0) + 1
    if not result.added and not created:
        return result
    _bump(bank)
    _audit(
        AuditAction.HASHES_IMPORTED,
        actor,
        data={
            "bank": bank.name,
            "file": filename[:200],
            "bank_created": created,
            "old": None,
            "new": {"added": result.added, "by_kind": result.counts},
            "already_in_bank": result.already,
            "rejected": result.rejected,
            "rejected_rows": [{"line": line, "why": why} for line, why in result.problems[:_REPORTED_PROBLEMS]],
        },
    )
    if result.added:
        _rematch_after_commit(bank)
    return result


def case_is_blocked(case: Case) -> bool:
    """A case whose media may be banked: actioned, or naming an entity that is blocked."""
    return case.status == Case.Status.ACTIONED or case.entities.filter(status=Entity.Status.BLOCKED).exists()


def bankable_media(case: Case) -> list[Attachment]:
    """The images and videos of a case's reports, oldest first."""
    images = Q(content_type__startswith="image/") & ~Q(content_type="image/svg+xml")
    media = Attachment.objects.filter(images | Q(content_type__startswith="video/"), report__case=case)
    return list(media.order_by("pk"))


@transaction.atomic
def do_add_case_media_to_bank(case: Case, *, bank: HashBank, label: str, actor: Actor) -> int:
    """Add the MD5, SHA-256 and (quality 50 or more) PDQ of a blocked case's images and videos to a
    bank; returns how many hashes were new (0 records nothing)."""
    label = " ".join(label.split())[:200]
    if not label:
        raise ValidationError("a label is required: it is what a match against this media will say")
    case = Case.objects.select_for_update().get(pk=case.pk)
    if not case_is_blocked(case):
        raise ValidationError("only a blocked case's media can be added to a bank")
    bank = HashBank.objects.select_for_update().get(pk=bank.pk)
    if not bank.active:
        raise ValidationError(f"the bank {bank.name} is inactive")
    wanted: dict[tuple[str, str], tuple[Attachment, int | None]] = {}
    for attachment in bankable_media(case):
        if attachment.md5:
            wanted.setdefault((HashKind.MD5, attachment.md5), (attachment, None))
        wanted.setdefault((HashKind.SHA256, attachment.sha256), (attachment, None))
        if attachment.pdq and (attachment.pdq_quality or 0) >= MIN_QUALITY:
            wanted.setdefault((HashKind.PDQ, attachment.pdq), (attachment, attachment.pdq_quality))
    present = set(
        BankedHash.objects.filter(bank=bank, value__in={value for _, value in wanted}).values_list("kind", "value")
    )
    now = timezone.now()
    new = [
        BankedHash(
            bank=bank,
            kind=kind,
            value=value,
            label=label,
            source=case.reference or "",
            listed_on=now.date(),
            quality=quality,
            attachment=attachment,
            added_at=now,
        )
        for (kind, value), (attachment, quality) in wanted.items()
        if (kind, value) not in present
    ]
    if not new:
        return 0
    BankedHash.objects.bulk_create(new)
    _bump(bank)
    _audit(
        AuditAction.CASE_MEDIA_BANKED,
        actor,
        case=case,
        data={
            "bank": bank.name,
            "label": label,
            "old": None,
            "new": [
                {"attachment": str(wanted[(h.kind, h.value)][0].public_id), "kind": h.kind, "value": h.value}
                for h in new
            ],
        },
    )
    _rematch_after_commit(bank)
    return len(new)


@transaction.atomic
def do_record_known_content_matches(report: Report, found: Sequence[Found]) -> list[KnownContentMatch]:
    """Record what a report's attachments matched, as automated detection: one audit entry by the
    system, then the case's priority raised to high unless it is higher. Nothing is blocked: a
    moderator decides. Matches already recorded are skipped; none new records nothing."""
    if report.case_id is None or not found:
        return []
    case = Case.objects.select_for_update().get(pk=report.case_id)
    existing = set(
        KnownContentMatch.objects.filter(attachment_id__in={f.attachment_id for f in found}).values_list(
            "attachment_id", "banked_hash_id"
        )
    )
    hashes = BankedHash.objects.select_related("bank").in_bulk({f.banked_hash_id for f in found})
    attachments = Attachment.objects.in_bulk({f.attachment_id for f in found})
    now = timezone.now()
    new = []
    for f in dict.fromkeys(found):
        if (f.attachment_id, f.banked_hash_id) in existing:
            continue
        banked = hashes[f.banked_hash_id]
        new.append(
            KnownContentMatch(
                attachment_id=f.attachment_id,
                banked_hash=banked,
                kind=f.kind,
                distance=f.distance,
                bank_name=banked.bank.name,
                label=banked.label,
                matched_at=now,
            )
        )
        existing.add((f.attachment_id, f.banked_hash_id))
    if not new:
        return []
    KnownContentMatch.objects.bulk_create(new)
    _audit(
        AuditAction.KNOWN_CONTENT_MATCHED,
        SYSTEM,
        case=case,
        report=report,
        data={
            "old": None,
            "new": [
                {
                    "attachment": str(attachments[m.attachment_id].public_id),
                    "filename": attachments[m.attachment_id].filename,
                    "bank": m.bank_name,
                    "label": m.label,
                    "kind": m.kind,
                    "hash": m.banked_hash.value,
                    "distance": m.distance,
                }
                for m in new
            ],
            "automated_detection": True,
        },
    )
    if case.priority < Case.Priority.HIGH:
        do_change_case_priority(case, priority=Case.Priority.HIGH, actor=SYSTEM)
    return new
