"""The DSA Art. 15/24 figures for a period, as JSON or CSV (`manage.py transparency_report`).

Computed afresh from the desk's tables with the same definitions as the dashboard
(figures.py), so a report never depends on when the rollup last ran.

JSON document:

- `period`: `from`, `to` (inclusive dates), `time_zone` (the days' time zone); `generated_at`.
- `notices`: reports of kind `report` received in the period. `total`; `by_category` (the case's
  category, `uncategorised` when it has none); `by_source`: `trusted_flagger` (a trusted flagger
  whose From a trusted receiver verified) or `other`; `by_category_and_source`.
- `actions`: decisions made in the period. `total`; `by_type` (`block`, `unblock`, `decline`);
  `blocks_by_category`; `blocks_by_entity_kind`; `declines_by_reason`.
- `time_to_act`: cases whose first block or decline was made in the period, from the earliest
  report in the case to that decision: `cases`, `median_seconds`, `p90_seconds`, and the same
  `by_category` and `by_decision` (`block`, `decline`). The median of an even count is the mean
  of the middle two; the 90th percentile is the nearest rank. Null when no case was decided.
- `complaints`: null: the desk records no appeals yet, so it reports none rather than zero.

CSV: one row per figure, with the columns `period_from`, `period_to`, `figure` (notices,
actions, blocks, declines, time_to_act), `breakdown` (all, category, source, category+source,
type, entity_kind, reason, decision), `key` (the value of the breakdown; `a+b` for two),
`count`, and for time_to_act `median_seconds` and `p90_seconds`.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from moderation.models import DailyCount
from moderation.transparency import figures
from moderation.transparency.queries import Durations

UNCATEGORISED = "uncategorised"


class Writable(Protocol):
    def write(self, text: str, /) -> object: ...


CSV_COLUMNS = ["period_from", "period_to", "figure", "breakdown", "key", "count", "median_seconds", "p90_seconds"]


def _named(counts: dict[str, int]) -> dict[str, int]:
    return {key or UNCATEGORISED: n for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def _durations(values: list[int]) -> dict[str, Any]:
    found = Durations.of(values)
    return {"cases": found.n, "median_seconds": found.median, "p90_seconds": found.p90}


def build(first: date, last: date) -> dict[str, Any]:
    """The report's document for the days `first` to `last`, inclusive."""
    start, end = figures.day_bounds(first, last)
    rows = figures.daily_rows(first, last)
    by_category_and_source: dict[str, dict[str, int]] = defaultdict(dict)
    for pair, count in figures.sum_rows(rows, DailyCount.Metric.REPORTS, "category+source").items():
        category, _plus, source = pair.partition("+")
        by_category_and_source[category or UNCATEGORISED][source] = count
    by_type = {str(kind): figures.total_of(rows, metric) for kind, metric in figures.METRIC_OF_DECISION.items()}
    decided = figures.first_decisions_between(start, end)
    times_by: dict[str, dict[str, list[int]]] = {"category": defaultdict(list), "decision": defaultdict(list)}
    for first_decision in decided:
        times_by["category"][first_decision.category or UNCATEGORISED].append(first_decision.seconds)
        times_by["decision"][first_decision.kind].append(first_decision.seconds)
    return {
        "period": {"from": first.isoformat(), "to": last.isoformat(), "time_zone": settings.TIME_ZONE},
        "generated_at": timezone.now().isoformat(),
        "notices": {
            "total": figures.total_of(rows, DailyCount.Metric.REPORTS),
            "by_category": _named(figures.sum_rows(rows, DailyCount.Metric.REPORTS, "category")),
            "by_source": _named(figures.sum_rows(rows, DailyCount.Metric.REPORTS, "source")),
            "by_category_and_source": {
                category: dict(sorted(sources.items())) for category, sources in sorted(by_category_and_source.items())
            },
        },
        "actions": {
            "total": sum(by_type.values()),
            "by_type": by_type,
            "blocks_by_category": _named(figures.sum_rows(rows, DailyCount.Metric.BLOCKS, "category")),
            "blocks_by_entity_kind": _named(figures.sum_rows(rows, DailyCount.Metric.BLOCKS, "kind")),
            "declines_by_reason": _named(figures.sum_rows(rows, DailyCount.Metric.DECLINES, "reason")),
        },
        "time_to_act": {
            **_durations([row.seconds for row in decided]),
            "by_category": {key: _durations(values) for key, values in sorted(times_by["category"].items())},
            "by_decision": {key: _durations(values) for key, values in sorted(times_by["decision"].items())},
        },
        "complaints": None,
    }


def write_json(document: dict[str, Any], out: Writable) -> None:
    # One write: Django's command output wrapper ends every write() with a newline of its own.
    out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def csv_rows(document: dict[str, Any]) -> list[list[object]]:
    """The document as CSV rows under CSV_COLUMNS (without the header)."""
    period = [document["period"]["from"], document["period"]["to"]]
    notices, actions, times = document["notices"], document["actions"], document["time_to_act"]
    rows: list[list[object]] = [[*period, "notices", "all", "", notices["total"], "", ""]]

    def counts(figure: str, breakdown: str, values: dict[str, int]) -> None:
        rows.extend([*period, figure, breakdown, key, n, "", ""] for key, n in values.items())

    counts("notices", "category", notices["by_category"])
    counts("notices", "source", notices["by_source"])
    for category, sources in notices["by_category_and_source"].items():
        counts("notices", "category+source", {f"{category}+{source}": n for source, n in sources.items()})
    rows.append([*period, "actions", "all", "", actions["total"], "", ""])
    counts("actions", "type", actions["by_type"])
    counts("blocks", "category", actions["blocks_by_category"])
    counts("blocks", "entity_kind", actions["blocks_by_entity_kind"])
    counts("declines", "reason", actions["declines_by_reason"])

    def timed(breakdown: str, key: str, found: dict[str, Any]) -> None:
        median, p90 = found["median_seconds"], found["p90_seconds"]
        rows.append(
            [
                *period,
                "time_to_act",
                breakdown,
                key,
                found["cases"],
                "" if median is None else median,
                "" if p90 is None else p90,
            ]
        )

    timed("all", "", times)
    for breakdown in ("category", "decision"):
        for key, found in times[f"by_{breakdown}"].items():
            timed(breakdown, key, found)
    return rows


def write_csv(document: dict[str, Any], out: Writable) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(document))
