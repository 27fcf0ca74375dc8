"""Reads behind the dashboard and the public page: a handful of small indexed queries each.

Everything here comes from the rollup (rollup.py), as of its last refresh: daily figures, times
to decision, decisions per moderator and the backlog snapshot. Only the public page's names are
read from the decisions themselves (a day's, through the created_at index).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils.translation import gettext_lazy as _

from moderation.models import DailyCount, Decision, FirstDecision, RollupState
from moderation.transparency.figures import METRIC_OF_DECISION, day_bounds
from reports.models import Case, Entity

# What the dashboard charts, and by what.
CHARTED = (DailyCount.Metric.REPORTS, DailyCount.Metric.CASES, DailyCount.Metric.BLOCKS)
BREAKDOWNS = ("category", "language", "kind")
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


@dataclass(frozen=True, slots=True)
class PeriodCounts:
    """Every metric's daily totals in a period, and its counts per value of one breakdown: one query."""

    days: list[date]
    by: str
    # (metric, dimension) -> value -> count per day
    counts: dict[tuple[str, str], dict[str, list[int]]]

    def series(self, what: str) -> Series:
        """`what` (reports, cases, blocks) per day, split by the breakdown, biggest value first."""
        if what not in CHARTED or self.by not in BREAKDOWNS:
            raise ValueError(f"no series of {what} by {self.by!r}")
        found = self.counts.get((what, self.by), {})
        return Series(days=self.days, counts=dict(sorted(found.items(), key=lambda item: (-sum(item[1]), item[0]))))

    def per_day(self, what: str) -> list[int]:
        """`what` per day, each thing counted once (the kind series count a report under each kind)."""
        return self.counts.get((what, ""), {}).get("", [0] * len(self.days))

    def totals(self) -> dict[str, int]:
        """Reports, cases, blocks, unblocks and declines in the period."""
        return {str(metric): sum(self.per_day(metric)) for metric in TOTALED}


def period_counts(first: date, last: date, by: str = "") -> PeriodCounts:
    days = days_between(first, last)
    index = {day: n for n, day in enumerate(days)}
    rows = DailyCount.objects.filter(
        metric__in=TOTALED, dimension__in={"", by}, day__gte=first, day__lte=last
    ).values_list("metric", "dimension", "day", "value", "count")
    counts: dict[tuple[str, str], dict[str, list[int]]] = {}
    for metric, dimension, day, value, count in rows:
        counts.setdefault((metric, dimension), {}).setdefault(value, [0] * len(days))[index[day]] += count
    return PeriodCounts(days=days, by=by, counts=counts)


@dataclass(frozen=True, slots=True)
class Durations:
    """How long decisions took: the count, the median and the 90th percentile, in seconds.

    The median of an even count is the mean of the two middle values; the 90th percentile is the
    nearest rank (the smallest value that at least 90% of them do not exceed).
    """

    n: int
    median: float | None
    p90: int | None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.n, self.median, self.p90))

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

    def as_json(self) -> dict[str, Any]:
        def pairs(groups: dict[Any, Durations]) -> list[list[Any]]:
            return [[key, list(durations)] for key, durations in groups.items()]

        return {
            "overall": list(self.overall),
            "kind": pairs(self.by_kind),
            "category": pairs(self.by_category),
            "actor": pairs(self.by_actor),
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> TimeToDecision:
        def groups(name: str) -> dict[Any, Durations]:
            return {key: Durations(*values) for key, values in stored[name]}

        return cls(Durations(*stored["overall"]), groups("kind"), groups("category"), groups("actor"))


def _ordered(groups: dict[Any, Durations]) -> dict[Any, Durations]:
    return dict(sorted(groups.items(), key=lambda item: (-item[1].n, str(item[0]))))


# One pass over the period's rows of the first_decision_period index, every grouping at once.
_PERCENTILES_SQL = """
SELECT GROUPING(kind), GROUPING(category), GROUPING(actor_id), kind, category, actor_id, COUNT(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), percentile_disc(0.9) WITHIN GROUP (ORDER BY seconds)
FROM {table} WHERE decided_at >= %s AND decided_at < %s
GROUP BY GROUPING SETS ((), (kind), (category), (actor_id))
"""


def _time_to_decision_in_postgres(start: datetime, end: datetime) -> TimeToDecision:
    overall = Durations.of([])
    by: dict[str, dict[Any, Durations]] = {"kind": {}, "category": {}, "actor": {}}
    with connection.cursor() as cursor:
        cursor.execute(_PERCENTILES_SQL.format(table=FirstDecision._meta.db_table), [start, end])
        for no_kind, no_category, no_actor, kind, category, actor_id, n, median, p90 in cursor.fetchall():
            found = Durations(n, None if median is None else float(median), p90)
            if not no_kind:
                by["kind"][kind] = found
            elif not no_category:
                by["category"][category] = found
            elif not no_actor:
                by["actor"][actor_id] = found
            else:
                overall = found
    return TimeToDecision(overall, _ordered(by["kind"]), _ordered(by["category"]), _ordered(by["actor"]))


def time_to_decision(first: date, last: date) -> TimeToDecision:
    """Times from first report to first decision, of the cases first decided in the period.

    PostgreSQL computes the percentiles itself (percentile_cont is the median as defined above,
    percentile_disc the nearest rank); elsewhere the seconds are read and counted here.
    """
    start, end = day_bounds(first, last)
    if connection.vendor == "postgresql":
        return _time_to_decision_in_postgres(start, end)
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
        return _ordered({key: Durations.of(values) for key, values in groups.items()})

    return TimeToDecision(
        overall=Durations.of(everything),
        by_kind=summarise(by["kind"]),
        by_category=summarise(by["category"]),
        by_actor=summarise(by["actor"]),
    )


def time_to_decision_of(first: date, last: date, state: RollupState) -> TimeToDecision:
    """time_to_decision() as of the rollup's last refresh, which stored those of the preset periods
    (the last 7, 30 and 90 days); another period's is computed once per refresh and cached. At a
    million reports a quarter's percentiles take half a second: they change only with the rollup."""
    stored = (state.times or {}).get(f"{first}:{last}")
    if stored is not None:
        return TimeToDecision.from_json(stored)
    key = f"abusedesk:transparency:times:{first}:{last}:{state.refreshed_at.timestamp() if state.refreshed_at else 0}"
    found: TimeToDecision | None = cache.get(key)
    if found is None:
        found = time_to_decision(first, last)
        cache.set(key, found, timeout=3600)
    return found


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
    """Each moderator's decisions in the period, with the times of the cases they decided first;
    decisions without a user (the API) are "API"."""
    counts: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    kind_of = {metric: kind for kind, metric in METRIC_OF_DECISION.items()}
    rows = (
        DailyCount.objects.filter(metric__in=kind_of, dimension="actor", day__gte=first, day__lte=last)
        .values("metric", "value")
        .annotate(n=Sum("count"))
        .order_by()
    )
    for row in rows:
        counts[int(row["value"]) if row["value"] else None][kind_of[row["metric"]]] = row["n"]
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
    """Open cases by age when the rollup was last refreshed, and the oldest of them."""

    buckets: list[tuple[str, int]]
    oldest: Case | None

    @property
    def total(self) -> int:
        return sum(n for _label, n in self.buckets)


def backlog_snapshot(now: datetime) -> dict[str, Any]:
    """Open cases (new, open, waiting) by how long ago they were opened, at `now`: what the
    rollup keeps in its state row at every refresh."""
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
    return {
        "counts": [found[f"b{n}"] for n in range(len(BACKLOG_BUCKETS))],
        "oldest": open_cases.order_by("created_at", "id").values_list("pk", flat=True).first(),
    }


def backlog(snapshot: dict[str, Any]) -> Backlog:
    counts = snapshot.get("counts") or [0] * len(BACKLOG_BUCKETS)
    oldest = Case.objects.filter(pk=snapshot["oldest"]).first() if snapshot.get("oldest") else None
    return Backlog(
        buckets=[(str(label), count) for (_upper, label), count in zip(BACKLOG_BUCKETS, counts, strict=True)],
        oldest=oldest,
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
    rows = DailyCount.objects.filter(
        metric__in=[DailyCount.Metric.BLOCKS, DailyCount.Metric.UNBLOCKS],
        dimension="kind+category",
        day__gte=first,
        day__lte=last,
    ).values_list("day", "metric", "value", "count")
    for day, metric, value, count in rows:
        kind, _plus, category = value.partition("+")
        if kind not in PUBLIC_KINDS:
            continue
        if metric == DailyCount.Metric.UNBLOCKS:
            unblocks[day] += count
        else:
            blocks[day][kind][category] = count
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
