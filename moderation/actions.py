"""Every state change a moderator can make. Each writes exactly one audit entry in its transaction.

Views, the REST API and tasks call these and nothing else, so the browser and the API cannot
diverge. A call that changes nothing records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from moderation.audit import record
from moderation.models import AuditAction, BlocklistChange, Decision, DeclineReason, Note, PolicyCategory
from moderation.signals import blocklist_changed
from moderation.staff import roles
from reports.models import Case, Entity, Report, Reporter


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, and from where, as the audit log records it."""

    user: User | None
    ip: str | None = None
    label: str = ""


def _lock_case(case: Case) -> Case:
    return Case.objects.select_for_update().get(pk=case.pk)


def _touch(case: Case, *fields: str) -> None:
    case.updated_at = timezone.now()
    case.save(update_fields=[*fields, "updated_at"])


def _audit(
    action: AuditAction,
    actor: Actor,
    *,
    case: Case | None = None,
    entity: Entity | None = None,
    report: Report | None = None,
    data: dict[str, Any],
) -> None:
    record(
        action,
        actor=actor.user,
        actor_label=actor.label,
        ip=actor.ip,
        case=case,
        entity=entity,
        report=report,
        data=data,
    )


def _record_blocklist_change(decision: Decision, entity: Entity, kind: BlocklistChange.Kind) -> None:
    """After the audit entry (its lock orders commits); enforcement hears of it after commit."""
    change = BlocklistChange.objects.create(
        entity=entity, kind=kind, category=decision.category, decision=decision, created_at=decision.created_at
    )
    transaction.on_commit(lambda: blocklist_changed.send(sender=BlocklistChange, change=change), robust=True)


@transaction.atomic
def do_assign_case(case: Case, *, assignee: User | None, actor: Actor) -> bool:
    case = _lock_case(case)
    new = assignee.pk if assignee is not None else None
    if case.assignee_id == new:
        return False
    old = case.assignee_id
    case.assignee = assignee
    _touch(case, "assignee")
    _audit(AuditAction.CASE_ASSIGNED, actor, case=case, data={"old": old, "new": new})
    return True


@transaction.atomic
def do_change_case_status(case: Case, *, status: Case.Status, actor: Actor) -> bool:
    """Move a case between new/open/waiting; actioned and declined come from decisions only."""
    if status not in Case.OPEN_STATUSES:
        raise ValidationError("a case is actioned by a block and declined by a decision with reasons")
    case = _lock_case(case)
    if case.status == status:
        return False
    old = case.status
    case.status = status
    _touch(case, "status")
    _audit(AuditAction.CASE_STATUS_CHANGED, actor, case=case, data={"old": old, "new": status})
    return True


@transaction.atomic
def do_change_case_priority(case: Case, *, priority: int, actor: Actor) -> bool:
    if priority not in Case.Priority.values:
        raise ValidationError(f"unknown priority {priority}")
    case = _lock_case(case)
    if case.priority == priority:
        return False
    old = case.priority
    case.priority = priority
    _touch(case, "priority")
    _audit(AuditAction.CASE_PRIORITY_CHANGED, actor, case=case, data={"old": old, "new": priority})
    return True


@transaction.atomic
def do_change_case_category(case: Case, *, category: str, actor: Actor) -> bool:
    if category and category not in PolicyCategory.values:
        raise ValidationError(f"unknown category {category!r}")
    case = _lock_case(case)
    if case.category == category:
        return False
    old = case.category
    case.category = category
    _touch(case, "category")
    _audit(AuditAction.CASE_CATEGORY_CHANGED, actor, case=case, data={"old": old, "new": category})
    return True


def _require_statement(statement: str) -> str:
    statement = statement.strip()
    if not statement:
        raise ValidationError("a statement of reasons is required")
    return statement


@transaction.atomic
def do_block_entity(
    entity: Entity, *, category: str, statement: str, actor: Actor, case: Case | None = None
) -> Decision | None:
    """Block an entity with a category and a statement of reasons; the case becomes actioned."""
    if category not in PolicyCategory.values:
        raise ValidationError(f"unknown category {category!r}")
    statement = _require_statement(statement)
    entity = Entity.objects.select_for_update().get(pk=entity.pk)
    if entity.kind == Entity.Kind.PRIVATE_CHAT:
        raise ValidationError("private chats are out of scope: decline the case instead")
    if entity.status == Entity.Status.BLOCKED:
        return None
    old_case_status = new_case_status = None
    if case is not None:
        case = _lock_case(case)
        old_case_status = case.status
        case.status = Case.Status.ACTIONED
        case.category = category
        _touch(case, "status", "category")
        new_case_status = case.status
    entity.status = Entity.Status.BLOCKED
    entity.save(update_fields=["status"])
    decision = Decision.objects.create(
        kind=Decision.Kind.BLOCK,
        case=case,
        entity=entity,
        category=category,
        statement=statement,
        actor=actor.user,
        created_at=timezone.now(),
    )
    _audit(
        AuditAction.ENTITY_BLOCKED,
        actor,
        case=case,
        entity=entity,
        data={
            "old": {"status": Entity.Status.ACTIVE, "case_status": old_case_status},
            "new": {"status": Entity.Status.BLOCKED, "case_status": new_case_status},
            "category": category,
            "statement": statement,
            "decision": str(decision.public_id),
        },
    )
    _record_blocklist_change(decision, entity, BlocklistChange.Kind.BLOCK)
    return decision


def check_unblock_entity(entity: Entity, *, actor: Actor) -> None:
    """Only a lead or the moderator who blocked it may unblock an entity."""
    if roles.is_lead(actor.user) if actor.user else False:
        return
    last_block = Decision.objects.filter(entity=entity, kind=Decision.Kind.BLOCK).order_by("-created_at", "-id").first()
    if actor.user is None or last_block is None or last_block.actor_id != actor.user.pk:
        raise PermissionDenied("only a lead or the moderator who blocked it may unblock this entity")


@transaction.atomic
def do_unblock_entity(
    entity: Entity, *, statement: str, actor: Actor, case: Case | None = None, authorized: bool = False
) -> Decision | None:
    """Lift a block. `authorized=True` skips the lead-or-blocker rule: the caller has checked a
    permission of its own (an API key with scope `decide`, which has no user to hold a role)."""
    statement = _require_statement(statement)
    entity = Entity.objects.select_for_update().get(pk=entity.pk)
    if entity.status != Entity.Status.BLOCKED:
        return None
    if not authorized:
        check_unblock_entity(entity, actor=actor)
    entity.status = Entity.Status.ACTIVE
    entity.save(update_fields=["status"])
    decision = Decision.objects.create(
        kind=Decision.Kind.UNBLOCK,
        case=case,
        entity=entity,
        statement=statement,
        actor=actor.user,
        created_at=timezone.now(),
    )
    _audit(
        AuditAction.ENTITY_UNBLOCKED,
        actor,
        case=case,
        entity=entity,
        data={
            "old": {"status": Entity.Status.BLOCKED},
            "new": {"status": Entity.Status.ACTIVE},
            "statement": statement,
            "decision": str(decision.public_id),
        },
    )
    _record_blocklist_change(decision, entity, BlocklistChange.Kind.UNBLOCK)
    return decision


@transaction.atomic
def do_decline_case(case: Case, *, reason: str, statement: str, actor: Actor) -> Decision | None:
    """Decline with a reason; the desk never declines silently."""
    if reason not in DeclineReason.values:
        raise ValidationError(f"unknown decline reason {reason!r}")
    statement = _require_statement(statement)
    case = _lock_case(case)
    if case.status == Case.Status.DECLINED:
        return None
    old = case.status
    case.status = Case.Status.DECLINED
    _touch(case, "status")
    decision = Decision.objects.create(
        kind=Decision.Kind.DECLINE,
        case=case,
        decline_reason=reason,
        statement=statement,
        actor=actor.user,
        created_at=timezone.now(),
    )
    _audit(
        AuditAction.CASE_DECLINED,
        actor,
        case=case,
        data={
            "old": old,
            "new": Case.Status.DECLINED,
            "reason": reason,
            "statement": statement,
            "decision": str(decision.public_id),
        },
    )
    return decision


@transaction.atomic
def do_add_note(case: Case, *, text: str, actor: Actor) -> Note:
    text = text.strip()
    if not text:
        raise ValidationError("a note needs text")
    if actor.user is None:
        raise ValidationError("notes need an author")
    case = _lock_case(case)
    note = Note.objects.create(case=case, author=actor.user, text=text[:20_000], created_at=timezone.now())
    _touch(case)
    _audit(AuditAction.CASE_NOTE_ADDED, actor, case=case, data={"old": None, "new": {"note": note.pk}})
    return note


def _refresh_case_counters(case: Case) -> None:
    stats = Report.objects.filter(case=case).aggregate(n=Count("id"))
    last = Report.objects.filter(case=case).order_by("-received_at").values_list("received_at", flat=True).first()
    case.report_count = stats["n"]
    case.last_report_at = last or case.last_report_at
    _touch(case, "report_count", "last_report_at")


@transaction.atomic
def do_move_report(report: Report, *, to_case: Case, actor: Actor) -> bool:
    """Move one report (and the entities it names) to another case."""
    report = Report.objects.select_for_update().get(pk=report.pk)
    current = report.case
    if current is None or current.pk == to_case.pk:
        return False
    # Lock both cases in primary-key order so two opposite moves cannot deadlock.
    locked = {c.pk: _lock_case(c) for c in sorted([current, to_case], key=lambda c: c.pk)}
    source, target = locked[current.pk], locked[to_case.pk]
    report.case = target
    report.save(update_fields=["case"])
    target.entities.add(*report.entities.all())
    _refresh_case_counters(source)
    _refresh_case_counters(target)
    _audit(
        AuditAction.REPORT_MOVED,
        actor,
        case=target,
        report=report,
        data={"old": source.reference, "new": target.reference},
    )
    return True


@transaction.atomic
def do_merge_cases(case: Case, *, into: Case, actor: Actor) -> bool:
    """Merge `case` into `into`: its reports and entities move; it is closed as a duplicate."""
    if case.pk == into.pk:
        raise ValidationError("a case cannot be merged into itself")
    source, target = (_lock_case(c) for c in sorted([case, into], key=lambda c: c.pk))
    if source.pk != case.pk:
        source, target = target, source
    if source.merged_into_id == target.pk:
        return False
    if target.merged_into_id is not None:
        raise ValidationError(f"{target.reference} was itself merged; merge into {target.merged_into} instead")
    moved = list(Report.objects.filter(case=source).values_list("pk", flat=True))
    Report.objects.filter(pk__in=moved).update(case=target)
    target.entities.add(*source.entities.all())
    old_status = source.status
    source.status = Case.Status.DECLINED
    source.merged_into = target
    _touch(source, "status", "merged_into")
    _refresh_case_counters(source)
    _refresh_case_counters(target)
    _audit(
        AuditAction.CASE_MERGED,
        actor,
        case=target,
        data={
            "old": {"case": source.reference, "status": old_status},
            "new": {"merged_into": target.reference, "reports": moved},
        },
    )
    return True


@transaction.atomic
def do_split_entity(case: Case, *, entity: Entity, actor: Actor) -> Case:
    """Give one entity of a case its own new case, with the reports that name only it."""
    case = _lock_case(case)
    if not case.entities.filter(pk=entity.pk).exists():
        raise ValidationError(f"{entity} is not part of {case}")
    if case.entities.count() < 2:
        raise ValidationError("the case has only this entity")
    now = timezone.now()
    new_case = Case.objects.create(
        created_at=now,
        updated_at=now,
        last_report_at=case.last_report_at,
        priority=case.priority,
        category=case.category,
    )
    new_case.reference = f"AD-{new_case.pk:06d}"
    new_case.save(update_fields=["reference"])
    new_case.entities.add(entity)
    case.entities.remove(entity)
    # Annotate before filtering on entities: filtering first would make Count see only `entity`.
    only_this = (
        Report.objects.filter(case=case)
        .annotate(n=Count("entities"))
        .filter(n=1, entities=entity)
        .values_list("pk", flat=True)
    )
    moved = list(only_this)
    Report.objects.filter(pk__in=moved).update(case=new_case)
    _refresh_case_counters(case)
    _refresh_case_counters(new_case)
    _audit(
        AuditAction.ENTITY_SPLIT,
        actor,
        case=case,
        entity=entity,
        data={"old": case.reference, "new": new_case.reference, "reports": moved},
    )
    return new_case


@transaction.atomic
def do_set_reporter_flags(reporter: Reporter, *, trusted: bool, muted: bool, actor: Actor) -> bool:
    """Mark a reporter as a trusted flagger (their verified reports open high-priority cases) or as
    muted (never acknowledged); False when nothing changed."""
    reporter = Reporter.objects.select_for_update().get(pk=reporter.pk)
    old = {"trusted": reporter.trusted, "muted": reporter.muted}
    new = {"trusted": trusted, "muted": muted}
    if old == new:
        return False
    reporter.trusted, reporter.muted = trusted, muted
    reporter.save(update_fields=["trusted", "muted"])
    _audit(
        AuditAction.REPORTER_FLAGS_CHANGED,
        actor,
        data={"reporter": reporter.pk, "email": reporter.email, "old": old, "new": new},
    )
    return True
