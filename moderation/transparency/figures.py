"""The transparency figures computed from the desk's own tables: the one definition of each.

The rollup (rollup.py) stores them per day for the dashboard and the public page; the Art. 15/24
report (report.py) computes them afresh for its period. Both call these functions, so the two
cannot count differently.

- A day is a calendar day in settings.TIME_ZONE.
- **Reports** are notices: Report rows of kind `report`, by the day they were received.
  Follow-ups (a reporter's reply in a thread) and automatic mail are not notices. A report's
  category is its case's category as it is now ("" while uncategorised); its source is
  `trusted_flagger` when its reporter is a trusted flagger now and a receiver the desk trusts
  verified its From (the desk records no flag per report), else `other`.
- **Cases** by the day they were opened, except those merged into another case (the same case,
  counted once, as the one they were merged into). A case's language is its first report's.
- **Blocks, unblocks, declines**: Decision rows by their day. A block's category is the one it was
  made under; a decline's is its case's. Its language is its case's; a block through the API
  without a case has none.
- **Time to decision**: from a case's first report (after merges and moves, the earliest report
  now in it, automatic mail aside) to its first block or decline; a decision reversed later
  keeps the time it took. Blocks of entities outside any case are not in it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Case as Switch
from django.db.models import Count, Exists, Min, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from moderation.models import DailyCount, Decision, FirstDecision
from reports.models import Case, Report, Reporter

TRUSTED_FLAGGER, OTHER_SOURCE = "trusted_flagger", "other"
DECIDING = (Decision.Kind.BLOCK, Decision.Kind.DECLINE)
# Ids per IN (...) list: well under SQLite's limit on parameters, and a modest statement on PostgreSQL.
CHUNK = 5000
METRIC_OF_DECISION: dict[str, str] = {
    Decision.Kind.BLOCK: DailyCount.Metric.BLOCKS,
    Decision.Kind.UNBLOCK: DailyCount.Metric.UNBLOCKS,
    Decision.Kind.DECLINE: DailyCount.Metric.DECLINES,
}
# The attributes each metric is counted by besides its total ("+" joins two counted together).
# A report or case counts under each entity kind it names ("" when none), so its kinds do not
# sum to its total; every other attribute has one value per thing and sums exactly.
MULTI_KIND = (DailyCount.Metric.REPORTS, DailyCount.Metric.CASES)
DIMENSIONS: dict[str, tuple[str, ...]] = {
    DailyCount.Metric.REPORTS: ("category", "language", "source", "category+source", "kind"),
    DailyCount.Metric.CASES: ("category", "language", "kind"),
    DailyCount.Metric.BLOCKS: ("category", "language", "kind", "kind+category", "actor"),
    DailyCount.Metric.UNBLOCKS: ("category", "language", "kind", "kind+category", "actor"),
    DailyCount.Metric.DECLINES: ("category", "language", "reason", "actor"),
}


@dataclass(frozen=True, slots=True)
class DailyRow:
    """One DailyCount row before it is stored (or summed by the report)."""

    day: date
    metric: str
    dimension: str
    value: str
    count: int

    def as_model(self) -> DailyCount:
        return DailyCount(
            day=self.day, metric=self.metric, dimension=self.dimension, value=self.value, count=self.count
        )


def _marginals(metric: str, cells: Iterable[tuple[date, dict[str, str], int]]) -> Iterator[DailyRow]:
    """The day's total and its count per value of each dimension of `metric` (but kind, which
    comes from its own query), from counts by every attribute at once."""
    totals: Counter[tuple[date, str, str]] = Counter()
    dimensions = [dim for dim in DIMENSIONS[metric] if dim != "kind" or metric not in MULTI_KIND]
    for day, attributes, count in cells:
        totals[(day, "", "")] += count
        for dimension in dimensions:
            totals[(day, dimension, "+".join(attributes[name] for name in dimension.split("+")))] += count
    for (day, dimension, value), count in totals.items():
        yield DailyRow(day, metric, dimension, value, count)


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start of `first`, start of the day after `last`) in the desk's time zone."""
    tz = timezone.get_default_timezone()
    return datetime.combine(first, time.min, tzinfo=tz), datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz)


def _day(field: str) -> TruncDate:
    return TruncDate(field, tzinfo=timezone.get_default_timezone())


def case_language(case_ref: str = "pk") -> Subquery:
    """The language of the first report of the case that `case_ref` names (served by the
    report_case_timeline index: case, received_at, id, language)."""
    first = (
        Report.objects.filter(case_id=OuterRef(case_ref))
        .exclude(kind=Report.Kind.AUTOMATIC)
        .order_by("received_at", "id")
        .values("language")[:1]
    )
    return Subquery(first)


def notices(start: datetime, end: datetime) -> QuerySet[Report]:
    return Report.objects.filter(kind=Report.Kind.REPORT, received_at__gte=start, received_at__lt=end)


def _source() -> Switch:
    # Nested, so the reporter is looked up only for the few reports with a verified From.
    trusted = Exists(Reporter.objects.filter(pk=OuterRef("reporter_id"), trusted=True))
    return Switch(
        When(
            from_verified=True,
            then=Switch(When(trusted, then=Value(TRUSTED_FLAGGER)), default=Value(OTHER_SOURCE)),
        ),
        default=Value(OTHER_SOURCE),
    )


def _report_rows(start: datetime, end: datetime) -> Iterator[DailyRow]:
    grouped = (
        notices(start, end)
        .annotate(day=_day("received_at"), source=_source())
        .values("day", "case__category", "language", "source")
        .annotate(n=Count("id"))
    )
    yield from _marginals(
        DailyCount.Metric.REPORTS,
        (
            (
                row["day"],
                {"category": row["case__category"] or "", "language": row["language"], "source": row["source"]},
                row["n"],
            )
            for row in grouped
        ),
    )
    # The outer join through the report's entities gives a report that names none the kind NULL.
    by_kind = (
        notices(start, end)
        .annotate(day=_day("received_at"))
        .values("day", "entities__kind")
        .annotate(n=Count("id", distinct=True))
    )
    for named in by_kind:
        yield DailyRow(named["day"], DailyCount.Metric.REPORTS, "kind", named["entities__kind"] or "", named["n"])


def opened_cases(start: datetime, end: datetime) -> QuerySet[Case]:
    return Case.objects.filter(created_at__gte=start, created_at__lt=end, merged_into__isnull=True)


def _case_rows(start: datetime, end: datetime) -> Iterator[DailyRow]:
    cases = opened_cases(start, end).annotate(day=_day("created_at"))
    grouped = cases.annotate(first_language=case_language()).values("day", "category", "first_language")
    yield from _marginals(
        DailyCount.Metric.CASES,
        (
            (row["day"], {"category": row["category"], "language": row["first_language"] or ""}, row["n"])
            for row in grouped.annotate(n=Count("id"))
        ),
    )
    for named in cases.values("day", "entities__kind").annotate(n=Count("id", distinct=True)):
        yield DailyRow(named["day"], DailyCount.Metric.CASES, "kind", named["entities__kind"] or "", named["n"])


def _decision_rows(start: datetime, end: datetime) -> Iterator[DailyRow]:
    decisions = (
        Decision.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=_day("created_at"), case_language=case_language("case_id"))
        .values(
            "day", "kind", "category", "case__category", "case_language", "entity__kind", "decline_reason", "actor_id"
        )
        .annotate(n=Count("id"))
    )
    cells: dict[str, list[tuple[date, dict[str, str], int]]] = {metric: [] for metric in METRIC_OF_DECISION.values()}
    for row in decisions:
        declined = row["kind"] == Decision.Kind.DECLINE
        attributes = {
            "category": (row["case__category"] or "") if declined else row["category"],
            "language": row["case_language"] or "",
            "kind": row["entity__kind"] or "",
            "reason": row["decline_reason"],
            "actor": str(row["actor_id"] or ""),
        }
        cells[METRIC_OF_DECISION[row["kind"]]].append((row["day"], attributes, row["n"]))
    for metric, metric_cells in cells.items():
        yield from _marginals(metric, metric_cells)


# The figures in three groups that change for different reasons, so that the rollup recomputes a
# day's reports only when something about its reports changed, and so on.
GROUPS: dict[str, tuple[Callable[[datetime, datetime], Iterator[DailyRow]], tuple[str, ...]]] = {
    "reports": (_report_rows, (DailyCount.Metric.REPORTS,)),
    "cases": (_case_rows, (DailyCount.Metric.CASES,)),
    "decisions": (
        _decision_rows,
        (DailyCount.Metric.BLOCKS, DailyCount.Metric.UNBLOCKS, DailyCount.Metric.DECLINES),
    ),
}


def daily_rows(first: date, last: date, *, groups: Iterable[str] = GROUPS) -> list[DailyRow]:
    """The DailyCount rows of the days `first` to `last` (inclusive) of these groups of figures,
    from the source tables."""
    start, end = day_bounds(first, last)
    return [row for group in groups for row in GROUPS[group][0](start, end)]


def first_decisions(case_ids: Iterable[int]) -> list[FirstDecision]:
    """The FirstDecision of each of these cases that has a block or decline (unsaved)."""
    ids = sorted(set(case_ids))
    return [row for chunk in range(0, len(ids), CHUNK) for row in _first_decisions(ids[chunk : chunk + CHUNK])]


def _first_decisions(ids: list[int]) -> Iterator[FirstDecision]:
    firsts: dict[int, Any] = {}
    decisions = Decision.objects.filter(case_id__in=ids, kind__in=DECIDING).order_by("case_id", "created_at", "id")
    for decision in decisions.values("id", "case_id", "kind", "category", "case__category", "actor_id", "created_at"):
        firsts.setdefault(decision["case_id"], decision)
    if not firsts:
        return
    began = dict(
        Report.objects.filter(case_id__in=list(firsts))
        .exclude(kind=Report.Kind.AUTOMATIC)
        .values("case_id")
        .annotate(first=Min("received_at"))
        .values_list("case_id", "first")
    )
    if len(began) < len(firsts):
        # A case with no report left in it (all moved away) counts from when it was opened.
        empty = [case_id for case_id in firsts if case_id not in began]
        began.update(Case.objects.filter(pk__in=empty).values_list("pk", "created_at"))
    for case_id, decision in firsts.items():
        decided_at = decision["created_at"]
        yield FirstDecision(
            case_id=case_id,
            decision_id=decision["id"],
            kind=decision["kind"],
            category=decision["case__category"] if decision["kind"] == Decision.Kind.DECLINE else decision["category"],
            actor_id=decision["actor_id"],
            first_report_at=began[case_id],
            decided_at=decided_at,
            seconds=max(0, int((decided_at - began[case_id]).total_seconds())),
        )


def first_decisions_between(start: datetime, end: datetime) -> list[FirstDecision]:
    """The first decisions taken in [start, end), computed from the source tables."""
    cases = (
        Decision.objects.filter(kind__in=DECIDING, case__isnull=False, created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list("case_id", flat=True)
        .distinct()
    )
    return [row for row in first_decisions(cases) if start <= row.decided_at < end]


def total_of(rows: Iterable[DailyRow], metric: str) -> int:
    return sum(row.count for row in rows if row.metric == metric and not row.dimension)


def sum_rows(rows: Iterable[DailyRow], metric: str, dimension: str) -> dict[str, int]:
    """Total count per value of one dimension of one metric over the rows' days."""
    totals: Counter[str] = Counter()
    for row in rows:
        if row.metric == metric and row.dimension == dimension:
            totals[row.value] += row.count
    return dict(totals)
