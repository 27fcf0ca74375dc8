"""Reads behind the dashboard and the public page: a handful of indexed queries each.

Daily figures and times to decision come from the rollup (rollup.py), as of its last refresh;
the backlog and the decisions per moderator are read live, being cheap: the open cases through
the status index, a period's decisions through the created_at index.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils.translation import gettext_lazy as _

from moderation.models import DailyCount, Decision, FirstDecision
from moderation.transparency.figures import day_bounds
from reports.models import Case, Entity

# What the dashboard charts, and by what; kinds come from the metrics that count each kind.
CHARTED = ("reports", "cases", "blocks")
DIMENSIONS = ("category", "language", "kind")
_METRIC = {
    ("reports", False): DailyCount.Metric.REPORTS,
    ("reports", True): DailyCount.Metric.REPORT_KINDS,
    ("cases", False): DailyCount.Metric.CASES,
    ("cases", True): DailyCount.Metric.CASE_KINDS,
    ("blocks", False): DailyCount.Metric.BLOCKS,
    ("blocks", True): DailyCount.Metric.BLOCKS,
}
TOTALED = (
    DailyCount.Metric.REPORTS,
    DailyCount.Metric.CASES,
    DailyCount.Metric.BLOCKS,
    DailyCount.Metric.UNBLOCKS,
    DailyCount.Metric.DECLINES,
)
# The kinds the public page counts (the channels, bots and sticker sets): public objects,
# never a person's account, a private chat or an invite link.
PUBLIC_KINDS = (Entity.Kind.CHANNEL_OR_GROUP, Entity.Kind.BOT, Entity.Kind.STICKER_SET)
# (upper bound of the age, label); the last bucket has no bound.
BACKLOG_BUCKETS: list[tuple[timedelta | None, Any]] = [
    (timedelta(hours=1), _("under 1 hour")),
    (timedelta(hours=4), _("1–4 hours")),
    (timedelta(hours=24), _("4–24 hours")),
    (timedelta(days=3), _("1–3 days")),
    (timedelta(days=7), _("3–7 days")),
    (timedelta(days=30), _("7–30 days")),
    (None, _("over 30 days")),
]


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(slots=True)
class Series:
    """Counts per day of one figure, one list per value of the chosen attribute, biggest first."""

    days: list[date]
    counts: dict[str, list[int]] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        return {value: sum(counts) for value, counts in self.counts.items()}

    @property
    def per_day(self) -> list[int]:
        return (
            [sum(column) for column in zip(*self.counts.values(), strict=True)] if self.counts else [0] * len(self.days)
        )


def daily_series(what: str, by: str, first: date, last: date) -> Series:
    """`what` (reports, cases, blocks) per day from `first` to `last`, split by `by`."""
    if what not in CHARTED or by not in DIMENSIONS:
        raise ValueError(f"no series of {what} by {by}")
    metric = _METRIC[(what, by == "kind")]
    days = days_between(first, last)
    index = {day: n for n, day in enumerate(days)}
    rows = (
        DailyCount.objects.filter(metric=metric, day__gte=first, day__lte=last)
        .values("day", by)
        .annotate(n=Sum("count"))
        .order_by()
    )
    counts: dict[str, list[int]] = {}
    for row in rows:
        counts.setdefault(row[by], [0] * len(days))[index[row["day"]]] += row["n"]
    ordered = sorted(counts.items(), key=lambda item: (-sum(item[1]), item[0]))
    return Series(days=days, counts=dict(ordered))


def daily_totals(what: str, first: date, last: date) -> list[int]:
    """`what` per day, each counted once (the kind series count a report under each kind it names)."""
    days = days_between(first, last)
    index = {day: n for n, day in enumerate(days)}
    per_day = [0] * len(days)
    rows = (
        DailyCount.objects.filter(metric=_METRIC[(what, False)], day__gte=first, day__lte=last)
        .values("day")
        .annotate(n=Sum("count"))
        .order_by()
    )
    for row in rows:
        per_day[index[row["day"]]] = row["n"]
    return per_day


def totals(first: date, last: date) -> dict[str, int]:
    """Reports, cases, blocks, unblocks and declines in the period, from the rollup."""
    rows = (
        DailyCount.objects.filter(metric__in=TOTALED, day__gte=first, day__lte=last)
        .values("metric")
        .annotate(n=Sum("count"))
        .order_by()
    )
    found = {row["metric"]: row["n"] for row in rows}
    return {str(metric): found.get(metric, 0) for metric in TOTALED}


@dataclass(frozen=True, slots=True)
class Durations:
    """How long decisions took: the count, the median and the 90th percentile, in seconds.

    The median of an even count is the mean of the two middle values; the 90th percentile is the
    nearest rank (the smallest value that at least 90% of them do not exceed).
    """

    n: int
    median: float | None
    p90: int | None

    @classmethod
    def of(cls, seconds: Sequence[int]) -> Durations:
        ordered = sorted(seconds)
        n = len(ordered)
        if not n:
            return cls(0, None, None)
        middle = n // 2
        median = float(ordered[middle]) if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        return cls(n, median, ordered[math.ceil(0.9 * n) - 1])

    @property
    def median_text(self) -> str:
        return describe_seconds(self.median)

    @property
    def p90_text(self) -> str:
        return describe_seconds(self.p90)


def describe_seconds(seconds: float | None) -> str:
    """'45 s', '12 min', '3 h 5 min', '2 d 4 h': a duration at the precision a lead reads."""
    if seconds is None:
        return "–"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@dataclass(frozen=True, slots=True)
class TimeToDecision:
    overall: Durations
    by_kind: dict[str, Durations]
    by_category: dict[str, Durations]
    by_actor: dict[int | None, Durations]


def time_to_decision(first: date, last: date) -> TimeToDecision:
    """Times from first report to first decision, of the cases first decided in the period."""
    start, end = day_bounds(first, last)
    rows = FirstDecision.objects.filter(decided_at__gte=start, decided_at__lt=end).values_list(
        "kind", "category", "actor_id", "seconds"
    )
    everything: list[int] = []
    by: dict[str, dict[Any, list[int]]] = {
        "kind": defaultdict(list),
        "category": defaultdict(list),
        "actor": defaultdict(list),
    }
    for kind, category, actor_id, seconds in rows:
        everything.append(seconds)
        by["kind"][kind].append(seconds)
        by["category"][category].append(seconds)
        by["actor"][actor_id].append(seconds)

    def summarise(groups: dict[Any, list[int]]) -> dict[Any, Durations]:
        return {key: Durations.of(values) for key, values in sorted(groups.items(), key=lambda kv: -len(kv[1]))}

    return TimeToDecision(
        overall=Durations.of(everything),
        by_kind=summarise(by["kind"]),
        by_category=summarise(by["category"]),
        by_actor=summarise(by["actor"]),
    )


@dataclass(frozen=True, slots=True)
class ModeratorDecisions:
    username: str
    blocks: int
    unblocks: int
    declines: int
    first_decisions: Durations

    @property
    def total(self) -> int:
        return self.blocks + self.unblocks + self.declines


def decisions_by_moderator(first: date, last: date, times: TimeToDecision) -> list[ModeratorDecisions]:
    """Each moderator's decisions in the period (live), with the times of the cases they decided
    first; decisions without a user (the API) are "API"."""
    start, end = day_bounds(first, last)
    counts: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = (
        Decision.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("actor_id", "kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["actor_id"]][row["kind"]] = row["n"]
    names = dict(get_user_model().objects.filter(pk__in=[pk for pk in counts if pk]).values_list("pk", "username"))
    result = [
        ModeratorDecisions(
            username=names.get(actor_id, "") if actor_id else str(_("API")),
            blocks=kinds[Decision.Kind.BLOCK],
            unblocks=kinds[Decision.Kind.UNBLOCK],
            declines=kinds[Decision.Kind.DECLINE],
            first_decisions=times.by_actor.get(actor_id, Durations.of([])),
        )
        for actor_id, kinds in counts.items()
    ]
    return sorted(result, key=lambda row: (-row.total, row.username))


@dataclass(frozen=True, slots=True)
class Backlog:
    buckets: list[tuple[str, int]]
    oldest: Case | None

    @property
    def total(self) -> int:
        return sum(n for _label, n in self.buckets)


def backlog(now: datetime) -> Backlog:
    """Open cases (new, open, waiting) by how long ago they were opened, now."""
    conditions: dict[str, Any] = {}
    lower: timedelta | None = None
    for number, (upper, _label) in enumerate(BACKLOG_BUCKETS):
        age = Q()
        if upper is not None:
            age &= Q(created_at__gt=now - upper)
        if lower is not None:
            age &= Q(created_at__lte=now - lower)
        conditions[f"b{number}"] = Count("id", filter=age)
        lower = upper
    open_cases = Case.objects.filter(status__in=Case.OPEN_STATUSES)
    found = open_cases.aggregate(**conditions)
    return Backlog(
        buckets=[(str(label), found[f"b{n}"]) for n, (_upper, label) in enumerate(BACKLOG_BUCKETS)],
        oldest=open_cases.order_by("created_at", "id").first(),
    )


@dataclass(frozen=True, slots=True)
class PublicDay:
    day: date
    # kind -> category -> blocks
    blocks: dict[str, dict[str, int]]
    unblocks: int

    @property
    def total(self) -> int:
        return sum(sum(categories.values()) for categories in self.blocks.values())

    def of_kind(self, kind: str) -> int:
        return sum(self.blocks.get(kind, {}).values())


def public_days(first: date, last: date) -> list[PublicDay]:
    """Per day, newest first: blocks of public channels, bots and sticker sets by category, and
    how many blocks of them were lifted. Counts only: nothing here names anyone or anything."""
    blocks: dict[date, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    unblocks: dict[date, int] = defaultdict(int)
    rows = (
        DailyCount.objects.filter(
            metric__in=[DailyCount.Metric.BLOCKS, DailyCount.Metric.UNBLOCKS],
            kind__in=PUBLIC_KINDS,
            day__gte=first,
            day__lte=last,
        )
        .values("day", "metric", "kind", "category")
        .annotate(n=Sum("count"))
        .order_by()
    )
    for row in rows:
        if row["metric"] == DailyCount.Metric.UNBLOCKS:
            unblocks[row["day"]] += row["n"]
        else:
            blocks[row["day"]][row["kind"]][row["category"]] = row["n"]
    return [
        PublicDay(day=day, blocks={kind: dict(cats) for kind, cats in blocks[day].items()}, unblocks=unblocks[day])
        for day in reversed(days_between(first, last))
    ]


@dataclass(frozen=True, slots=True)
class BlockedName:
    decision_id: int
    url: str
    kind: str
    category: str


def blocked_names(day: date, *, after: int = 0, limit: int) -> list[BlockedName]:
    """Public channels, bots and sticker sets blocked on `day` and blocked still (an entity
    unblocked or blocked again later is named on the day of its latest block only), in order."""
    start, end = day_bounds(day, day)
    later = Decision.objects.filter(
        entity_id=OuterRef("entity_id"),
        kind__in=[Decision.Kind.BLOCK, Decision.Kind.UNBLOCK],
        created_at__gt=OuterRef("created_at"),
    )
    decisions = (
        Decision.objects.filter(
            kind=Decision.Kind.BLOCK,
            created_at__gte=start,
            created_at__lt=end,
            pk__gt=after,
            entity__kind__in=PUBLIC_KINDS,
            entity__status=Entity.Status.BLOCKED,
        )
        .exclude(Exists(later))
        .order_by("pk")
        .values_list("pk", "entity__url", "entity__kind", "category")[:limit]
    )
    return [BlockedName(*row) for row in decisions]
