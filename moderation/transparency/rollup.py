"""The rollup behind the dashboard and the public page: daily counts and first decisions, kept current.

Why a rollup: counting a million reports by day and category takes seconds, summing a few
thousand DailyCount rows takes milliseconds. Why recompute whole days instead of adding to
counters as things happen: a report's category is its case's, which a moderator sets later; a
merge, a move or a split hands reports to another case; a trusted flagger is marked after their
reports arrived; intake refines an entity's kind. A counter bumped at the time would keep the old
answer. Recomputing every day that any of these touched, from the source tables, gives the answer
a query over the whole history would give, at the cost of the days touched.

`refresh()` runs every 5 minutes (a django-q2 schedule, migration 0014) and after
`manage.py transparency_rollup`. It finds what changed since the previous refresh began, less a
margin, through timestamps the desk already keeps:

- cases whose `updated_at` moved: every report joining a case and every moderator action on a
  case sets it (status, category, block, decline, merge of both cases, move and split);
- decisions made since then (an unblock through the API touches no case);
- reporters marked trusted or not since then (their audit entries);
- entities named since then (`last_seen`), whose kind intake may have refined.

The days touched are those of these cases' opening, reports and decisions, and of these
reporters' and entities' reports; each is recomputed whole, in one transaction with the state row,
so readers see the old figures or the new ones, never a mix. A full rebuild (`--rebuild`, or the
first refresh) recomputes every day that has data.

Derived data, like the case and entity counters intake keeps: changing it is no moderator action
and writes no audit entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Max, Min, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from moderation.models import AuditAction, AuditEntry, DailyCount, Decision, FirstDecision, RollupState
from moderation.transparency import figures
from reports.models import Case, Entity, Report, ReportEntity

# Longer than any transaction that changes what is counted can take to commit after it stamped
# its rows (the q-cluster kills a task after 2 minutes), so nothing falls between two refreshes.
MARGIN = timedelta(minutes=10)
BATCH = 2000


@dataclass(frozen=True, slots=True)
class RefreshResult:
    days: int
    cases: int
    full: bool


def _days_of(queryset: QuerySet, field: str) -> set[date]:
    return set(
        queryset.annotate(day=TruncDate(field, tzinfo=timezone.get_default_timezone()))
        .order_by()
        .values_list("day", flat=True)
        .distinct()
    )


def _changed_cases(cutoff: datetime) -> list[int]:
    decided = Decision.objects.filter(created_at__gte=cutoff, case__isnull=False).values("case_id")
    seen = Case.entities.through.objects.filter(entity__last_seen__gte=cutoff).values("case_id")
    changed = Case.objects.filter(Q(updated_at__gte=cutoff) | Q(pk__in=decided) | Q(pk__in=seen))
    return list(changed.values_list("pk", flat=True))


def _touched_days(cutoff: datetime, cases: list[int]) -> set[date]:
    days: set[date] = set()
    for chunk in range(0, len(cases), figures.CHUNK):
        ids = cases[chunk : chunk + figures.CHUNK]
        days |= _days_of(Case.objects.filter(pk__in=ids), "created_at")
        days |= _days_of(Report.objects.filter(case_id__in=ids), "received_at")
        days |= _days_of(Decision.objects.filter(case_id__in=ids), "created_at")
    days |= _days_of(Decision.objects.filter(created_at__gte=cutoff), "created_at")
    flagged = AuditEntry.objects.filter(action=AuditAction.REPORTER_FLAGS_CHANGED, created_at__gte=cutoff)
    reporters = {entry["reporter"] for entry in flagged.values_list("data", flat=True) if "reporter" in entry}
    if reporters:
        days |= _days_of(Report.objects.filter(reporter_id__in=reporters), "received_at")
    seen = Entity.objects.filter(last_seen__gte=cutoff).values("pk")
    days |= _days_of(
        Report.objects.filter(pk__in=ReportEntity.objects.filter(entity__in=seen).values("report_id")), "received_at"
    )
    return days


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


def _replace_days(days: set[date], *, everything: bool) -> None:
    if everything:
        DailyCount.objects.all().delete()
    for first, last in spans(days):
        if not everything:
            DailyCount.objects.filter(day__gte=first, day__lte=last).delete()
        DailyCount.objects.bulk_create([row.as_model() for row in figures.daily_rows(first, last)], batch_size=BATCH)


def _replace_first_decisions(cases: list[int] | None) -> int:
    if cases is None:
        FirstDecision.objects.all().delete()
        decided = Decision.objects.filter(kind__in=figures.DECIDING, case__isnull=False).order_by()
        rows = figures.first_decisions(decided.values_list("case_id", flat=True).distinct())
    else:
        for chunk in range(0, len(cases), figures.CHUNK):
            FirstDecision.objects.filter(case_id__in=cases[chunk : chunk + figures.CHUNK]).delete()
        rows = figures.first_decisions(cases)
    FirstDecision.objects.bulk_create(rows, batch_size=BATCH)
    return len(rows)


def refresh(*, rebuild: bool = False) -> RefreshResult:
    """Bring the rollup up to date: the days and cases changed since the last refresh, or all."""
    RollupState.objects.get_or_create(pk=1)
    with transaction.atomic():
        # Serialises refreshes: a second one waits, then finds little left to do.
        state = RollupState.objects.select_for_update().get(pk=1)
        started = timezone.now()
        full = rebuild or state.refreshed_at is None
        if full:
            days, cases = _all_days(), None
        else:
            assert state.refreshed_at is not None
            cutoff = state.refreshed_at - MARGIN
            cases = _changed_cases(cutoff)
            days = _touched_days(cutoff, cases)
        _replace_days(days, everything=full)
        decided = _replace_first_decisions(cases)
        state.refreshed_at = started
        state.days_recomputed = len(days)
        state.cases_recomputed = decided if cases is None else len(cases)
        state.save(update_fields=["refreshed_at", "days_recomputed", "cases_recomputed"])
    return RefreshResult(days=len(days), cases=state.cases_recomputed, full=full)


def refreshed_at() -> datetime | None:
    """When the figures were last brought up to date; None before the first refresh."""
    return RollupState.objects.filter(pk=1).values_list("refreshed_at", flat=True).first()
