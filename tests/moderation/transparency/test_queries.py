"""The dashboard's and public page's figures against the hand-built history (conftest.py): exact."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.test import override_settings

from moderation.transparency import queries, rollup
from moderation.transparency.queries import Durations, describe_seconds
from tests.moderation.transparency.conftest import NOW, History

D1, D2, D3 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
HOUR = 3600


@pytest.fixture
def rolled_up(history: History) -> History:
    rollup.refresh()
    return history


def test_reports_per_day_by_category(rolled_up: History) -> None:
    series = queries.period_counts(D1, D3, "category").series("reports")
    assert series.days == [D1, D2, D3]
    # Day 1: dora's report went to Y with the merge (spam), eve's case was set to spam.
    assert series.counts == {"spam": [2, 1, 0], "terrorism": [3, 0, 0], "": [0, 1, 0], "illegal_goods": [1, 0, 0]}
    assert series.per_day == [6, 2, 0]


def test_follow_ups_and_automatic_mail_are_not_reports(rolled_up: History) -> None:
    assert queries.period_counts(D2, D2).totals()["reports"] == 2


def test_reports_per_day_by_language(rolled_up: History) -> None:
    assert queries.period_counts(D1, D3, "language").series("reports").counts == {
        "en": [4, 1, 0],
        "de": [1, 0, 0],
        "es": [0, 1, 0],
        "fr": [1, 0, 0],
    }


def test_reports_by_kind_count_a_report_under_each_kind_it_names(rolled_up: History) -> None:
    series = queries.period_counts(D1, D3, "kind").series("reports")
    # The flagger's German report names a sticker set and a channel; eve's names nothing.
    assert series.counts == {"channel_or_group": [4, 2, 0], "": [1, 0, 0], "bot": [1, 0, 0], "sticker_set": [1, 0, 0]}
    assert queries.period_counts(D1, D3).per_day("reports") == [6, 2, 0]


def test_cases_per_day_leave_out_a_case_merged_into_another(rolled_up: History) -> None:
    assert queries.period_counts(D1, D3).per_day("cases") == [4, 2, 0]
    assert queries.period_counts(D1, D3, "language").series("cases").counts == {"en": [3, 2, 0], "de": [1, 0, 0]}
    assert queries.period_counts(D1, D3, "kind").series("cases").counts == {
        "channel_or_group": [2, 2, 0],
        "": [1, 0, 0],
        "bot": [1, 0, 0],
        "sticker_set": [1, 0, 0],
    }


def test_blocks_per_day_by_category_and_kind(rolled_up: History) -> None:
    assert queries.period_counts(D1, D3, "category").series("blocks").counts == {
        "terrorism": [1, 0, 2],
        "illegal_goods": [0, 1, 0],
        "spam": [0, 1, 0],
    }
    assert queries.period_counts(D1, D3, "kind").series("blocks").counts == {
        "channel_or_group": [1, 1, 1],
        "bot": [0, 1, 0],
        "sticker_set": [0, 0, 1],
    }
    # Y's first report is dora's (English) since the merge; C3's is the flagger's German one.
    assert queries.period_counts(D1, D3, "language").series("blocks").counts == {"en": [1, 2, 0], "de": [0, 0, 2]}


def test_totals_of_a_period(rolled_up: History) -> None:
    assert queries.period_counts(D1, D3).totals() == {
        "reports": 8,
        "cases": 6,
        "blocks": 5,
        "unblocks": 1,
        "declines": 1,
    }
    assert queries.period_counts(D3, D3).totals() == {
        "reports": 0,
        "cases": 0,
        "blocks": 2,
        "unblocks": 1,
        "declines": 0,
    }


def test_time_to_decision_median_and_p90(rolled_up: History) -> None:
    times = queries.time_to_decision(D1, D3)
    # C1 6 h, C4 23 h, C2 24 h, Y 30 h (from dora's report, merged in), C3 45 h.
    assert times.overall == Durations(5, 24.0 * HOUR, 45 * HOUR)
    assert times.by_kind == {
        "block": Durations(4, 27.0 * HOUR, 45 * HOUR),
        "decline": Durations(1, 23.0 * HOUR, 23 * HOUR),
    }
    assert times.by_category["terrorism"] == Durations(2, 25.5 * HOUR, 45 * HOUR)
    assert times.by_category["spam"] == Durations(2, 26.5 * HOUR, 30 * HOUR)


def test_time_to_decision_of_an_even_count_is_the_mean_of_the_middle_two(rolled_up: History) -> None:
    # Decided on days 1 and 2: 6 h, 23 h, 24 h and 30 h.
    assert queries.time_to_decision(D1, D2).overall == Durations(4, 23.5 * HOUR, 30 * HOUR)


def test_the_refresh_keeps_the_preset_periods_times_and_others_are_cached(
    rolled_up: History, django_assert_num_queries: Any
) -> None:
    state = rollup.current()
    month = date(2026, 2, 3)
    assert set(state.times) == {"2026-02-26:2026-03-04", "2026-02-03:2026-03-04", "2025-12-05:2026-03-04"}
    with django_assert_num_queries(0):
        stored = queries.time_to_decision_of(month, D3, state)
    assert stored == queries.time_to_decision(month, D3)
    with django_assert_num_queries(1):
        assert queries.time_to_decision_of(D1, D2, state).overall == Durations(4, 23.5 * HOUR, 30 * HOUR)
    with django_assert_num_queries(0):
        assert queries.time_to_decision_of(D1, D2, state).overall.n == 4


def test_second_blocks_in_a_case_are_not_first_decisions(rolled_up: History) -> None:
    assert queries.time_to_decision(D3, D3).overall == Durations(1, 45.0 * HOUR, 45 * HOUR)


def test_decisions_per_moderator(rolled_up: History) -> None:
    rows = {row.username: row for row in queries.decisions_by_moderator(D1, D3, queries.time_to_decision(D1, D3))}
    assert set(rows) == {"mod1", "mod2", "lena"}
    assert (rows["mod1"].blocks, rows["mod1"].declines, rows["mod1"].total) == (3, 1, 4)
    assert rows["mod1"].first_decisions == Durations(3, 23.0 * HOUR, 45 * HOUR)
    assert (rows["mod2"].blocks, rows["mod2"].first_decisions) == (2, Durations(2, 27.0 * HOUR, 30 * HOUR))
    assert (rows["lena"].unblocks, rows["lena"].first_decisions.n) == (1, 0)


def test_backlog_by_age_when_the_rollup_was_refreshed(rolled_up: History) -> None:
    assert rollup.current().refreshed_at == NOW
    backlog = queries.backlog(rollup.current().backlog)
    # C7 was opened 21 h ago; C1 51 h ago and reopened by amira's follow-up.
    assert dict(backlog.buckets) == {
        "under 1 hour": 0,
        "1–4 hours": 0,
        "4–24 hours": 1,
        "1–3 days": 1,
        "3–7 days": 0,
        "7–30 days": 0,
        "over 30 days": 0,
    }
    assert backlog.oldest == rolled_up.case("C1")


def test_public_days_count_public_kinds_by_category(rolled_up: History) -> None:
    days = {day.day: day for day in queries.public_days(D1, D3)}
    assert list(days) == [D3, D2, D1]
    assert days[D1].blocks == {"channel_or_group": {"terrorism": 1}}
    assert days[D2].blocks == {"bot": {"illegal_goods": 1}, "channel_or_group": {"spam": 1}}
    assert days[D3].blocks == {"channel_or_group": {"terrorism": 1}, "sticker_set": {"terrorism": 1}}
    assert (days[D3].unblocks, days[D3].total, days[D3].of_kind("sticker_set")) == (1, 2, 1)


def test_blocked_names_leave_out_what_was_unblocked(rolled_up: History) -> None:
    assert [name.url for name in queries.blocked_names(D2, limit=10)] == ["https://t.me/spam_group"]
    assert [name.url for name in queries.blocked_names(D3, limit=10)] == [
        "https://t.me/addstickers/jihadflags",
        "https://t.me/second_channel",
    ]
    first = queries.blocked_names(D3, limit=1)
    assert [name.url for name in queries.blocked_names(D3, after=first[0].decision_id, limit=10)] == [
        "https://t.me/second_channel"
    ]


def test_days_are_those_of_the_desk_time_zone(history: History) -> None:
    with override_settings(TIME_ZONE="Pacific/Kiritimati"):
        # UTC+14: day 1's notices of 08:00 and 09:00 UTC stay on the 2nd, those from 10:00 UTC
        # on are on the 3rd, with carlos's (08:00 UTC on the 3rd); omar's (15:00 UTC) is on the 4th.
        rollup.refresh(rebuild=True)
        assert queries.period_counts(D1, D3, "category").series("reports").per_day == [2, 5, 1]


def test_durations_of_nothing_are_unknown() -> None:
    assert Durations.of([]) == Durations(0, None, None)
    assert Durations.of([7]) == Durations(1, 7.0, 7)
    assert Durations.of(list(range(1, 11))) == Durations(10, 5.5, 9)


def test_describe_seconds_reads_like_a_lead_would_say_it() -> None:
    assert [describe_seconds(s) for s in (None, 45, 720, 3 * HOUR + 300, 2 * 86400 + 4 * HOUR, 86400)] == [
        "–",
        "45 s",
        "12 min",
        "3 h 5 min",
        "2 d 4 h",
        "1 d",
    ]
