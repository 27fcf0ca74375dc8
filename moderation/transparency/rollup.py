"""The rollup behind the dashboard and the public page: daily counts and first decisions, kept current.

Why a rollup: counting a million reports by day and category takes seconds, summing a few
thousand DailyCount rows takes milliseconds; and the counts outlive the rows they count, should
retention ever delete old reports. Why recompute whole days instead of adding to counters as
things happen: a report's category is its case's, which a moderator sets later; a merge, a move
or a split hands reports to another case; a trusted flagger is marked after their reports came;
intake refines an entity first named as "@name" once a link shows its kind. A counter bumped at
the time would keep the old answer; recomputing each day any of these touched, from the source
tables, gives the answer a query over the whole history would give.

`refresh()` runs every 5 minutes (a django-q2 schedule, migration 0015) and from
`manage.py transparency_rollup`. It looks at what changed since the previous refresh began, less
a margin, through what the desk records anyway, and recomputes each of three groups of figures
(figures.GROUPS) only for the days whose figures of that group can have changed:

- reports, on the days of
  - reports processed since then (found through the cases intake touched: it moves a case's
    `updated_at` whenever a report joins it), whatever day they arrived;
  - every report of a case a moderator re-attributed, which the audit log says: its category set
    (or set by a block), a merge or a move into it, a split out of it (the new case takes the
    category along, and its own category change is audited in turn);
  - every report of a reporter marked trusted or not (the audit log again);
  - every report naming an entity whose kind intake refined since then;
- cases, on the days those cases opened (a new report can bring a new entity or, processed late,
  an earlier first report), and those of cases holding a refined entity;
- decisions, on the days of decisions made since then, and of all decisions of those cases.

A day's group is replaced in one transaction with the state row, so readers see the old figures
or the new ones, never a mix. A full rebuild (`--rebuild`, and the first refresh) recomputes
every group of every day that has data; tests check that refreshes after each kind of change end
exactly where a rebuild starts.

Derived data, like the case and entity counters intake keeps: changing it is no moderator action
and writes no audit entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import cast

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, Min, OuterRef, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from moderation.models import AuditAction, AuditEntry, DailyCount, Decision, FirstDecision, RollupState
from moderation.transparency import figures, queries
from moderation.transparency.forms import PRESET_DAYS, last_days
from reports.models import Case, Entity, Report, ReportEntity

# Longer than any transaction that changes what is counted can take to commit after it stamped
# its rows, so nothing falls between two refreshes: intake's batches are the longest, and the
# q-cluster kills a task after its timeout.
MARGIN = timedelta(seconds=cast(int, settings.Q_CLUSTER["timeout"]) + 60)
BATCH = 2000
# Actions after which a case's earlier reports count under another category or case.
REATTRIBUTING = (
    AuditAction.CASE_CATEGORY_CHANGED,
    AuditAction.ENTITY_BLOCKED,
    AuditAction.CASE_MERGED,
    AuditAction.REPORT_MOVED,
    AuditAction.ENTITY_SPLIT,
)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    days: int
    cases: int
    full: bool
    # Days recomputed per group of figures (reports, cases, decisions).
    by_group: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Changes:
    """The days of each group of figures, and the cases whose first decision, to recompute."""

    days: dict[str, set[date]] = field(default_factory=lambda: {group: set() for group in figures.GROUPS})
    cases: set[int] = field(default_factory=set)

    @property
    def all_days(self) -> set[date]:
        return set().union(*self.days.values())


def _days_of(queryset: QuerySet, field_name: str) -> set[date]:
    return set(
        queryset.annotate(day=TruncDate(field_name, tzinfo=timezone.get_default_timezone()))
        .order_by()
        .values_list("day", flat=True)
        .distinct()
    )


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), figures.CHUNK):
        yield ordered[start : start + figures.CHUNK]


def _refined_entities(cutoff: datetime) -> QuerySet[Entity]:
    """Entities named since `cutoff` whose earlier mentions were all "@name": intake knew them only
    as an account (or a bot by its name) and may have learnt their kind from a link just now."""
    earlier = ReportEntity.objects.filter(entity_id=OuterRef("pk"), report__received_at__lt=cutoff)
    return (
        Entity.objects.filter(last_seen__gte=cutoff)
        .exclude(kind=Entity.Kind.ACCOUNT)
        .filter(Exists(earlier))
        .exclude(Exists(earlier.exclude(seen_as__startswith="@")))
    )


def changes_since(cutoff: datetime) -> Changes:
    """What to recompute for everything that changed at or after `cutoff` (see the module docstring)."""
    changes = Changes()
    touched = set(Case.objects.filter(updated_at__gte=cutoff).values_list("pk", flat=True))
    reattributed = set(
        AuditEntry.objects.filter(action__in=REATTRIBUTING, created_at__gte=cutoff, case__isnull=False).values_list(
            "case_id", flat=True
        )
    )
    decided = set(Decision.objects.filter(created_at__gte=cutoff, case__isnull=False).values_list("case_id", flat=True))
    refined = _refined_entities(cutoff)
    with_refined = set(Case.entities.through.objects.filter(entity__in=refined).values_list("case_id", flat=True))

    reports, cases, decisions = (changes.days[group] for group in ("reports", "cases", "decisions"))
    for ids in _chunks(touched):
        reports |= _days_of(Report.objects.filter(case_id__in=ids, inbound__processed_at__gte=cutoff), "received_at")
    for ids in _chunks(reattributed):
        reports |= _days_of(Report.objects.filter(case_id__in=ids), "received_at")
    flagged = AuditEntry.objects.filter(action=AuditAction.REPORTER_FLAGS_CHANGED, created_at__gte=cutoff)
    reporters = {data["reporter"] for data in flagged.values_list("data", flat=True) if "reporter" in data}
    if reporters:
        reports |= _days_of(Report.objects.filter(reporter_id__in=reporters), "received_at")
    reports |= _days_of(
        Report.objects.filter(pk__in=ReportEntity.objects.filter(entity__in=refined).values("report_id")),
        "received_at",
    )
    for ids in _chunks(touched | reattributed | with_refined):
        cases |= _days_of(Case.objects.filter(pk__in=ids), "created_at")
    decisions |= _days_of(Decision.objects.filter(created_at__gte=cutoff), "created_at")
    for ids in _chunks(touched | reattributed):
        decisions |= _days_of(Decision.objects.filter(case_id__in=ids), "created_at")
    changes.cases = touched | reattributed | decided
    return changes


def _all_days() -> set[date]:
    bounds = [
        Report.objects.aggregate(first=Min("received_at"), last=Max("received_at")),
        Case.objects.aggregate(first=Min("created_at"), last=Max("created_at")),
        Decision.objects.aggregate(first=Min("created_at"), last=Max("created_at")),
    ]
    firsts = [b["first"] for b in bounds if b["first"]]
    lasts = [b["last"] for b in bounds if b["last"]]
    if not firsts:
        return set()
    tz = timezone.get_default_timezone()
    first, last = min(firsts).astimezone(tz).date(), max(lasts).astimezone(tz).date()
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


def spans(days: Iterable[date]) -> list[tuple[date, date]]:
    """Runs of consecutive days as (first, last) pairs, so a week costs one query per figure, not seven."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _replace_days(days: dict[str, set[date]], *, everything: bool) -> None:
    if everything:
        DailyCount.objects.all().delete()
    for group, group_days in days.items():
        metrics = figures.GROUPS[group][1]
        for first, last in spans(group_days):
            if not everything:
                DailyCount.objects.filter(metric__in=metrics, day__gte=first, day__lte=last).delete()
            rows = figures.daily_rows(first, last, groups=[group])
            DailyCount.objects.bulk_create([row.as_model() for row in rows], batch_size=BATCH)


def _replace_first_decisions(cases: set[int] | None) -> int:
    if cases is None:
        FirstDecision.objects.all().delete()
        decided = Decision.objects.filter(kind__in=figures.DECIDING, case__isnull=False).order_by()
        rows = figures.first_decisions(decided.values_list("case_id", flat=True).distinct())
    else:
        for ids in _chunks(cases):
            FirstDecision.objects.filter(case_id__in=ids).delete()
        rows = figures.first_decisions(cases)
    FirstDecision.objects.bulk_create(rows, batch_size=BATCH)
    return len(rows)


def refresh(*, rebuild: bool = False) -> RefreshResult:
    """Bring the rollup up to date: the figures changed since the last refresh, or all of them."""
    RollupState.objects.get_or_create(pk=1)
    with transaction.atomic():
        # Serialises refreshes: a second one waits, then finds little left to do.
        state = RollupState.objects.select_for_update().get(pk=1)
        started = timezone.now()
        full = rebuild or state.refreshed_at is None
        if full:
            every_day = _all_days()
            changes = Changes(days={group: set(every_day) for group in figures.GROUPS})
            cases = _replace_first_decisions(None)
        else:
            assert state.refreshed_at is not None
            changes = changes_since(state.refreshed_at - MARGIN)
            _replace_first_decisions(changes.cases)
            cases = len(changes.cases)
        _replace_days(changes.days, everything=full)
        state.refreshed_at = started
        state.days_recomputed = len(changes.all_days)
        state.cases_recomputed = cases
        state.backlog = queries.backlog_snapshot(started)
        state.times = {
            f"{first}:{last}": queries.time_to_decision(first, last).as_json()
            for first, last in (last_days(days) for days in PRESET_DAYS)
        }
        state.save(update_fields=["refreshed_at", "days_recomputed", "cases_recomputed", "backlog", "times"])
    by_group = {group: len(days) for group, days in changes.days.items()}
    return RefreshResult(days=state.days_recomputed, cases=cases, full=full, by_group=by_group)


def current() -> RollupState:
    """The state row: when the figures were last brought up to date (None before the first
    refresh) and the backlog then."""
    return RollupState.objects.filter(pk=1).first() or RollupState(pk=1)


def refreshed_at() -> datetime | None:
    return current().refreshed_at
