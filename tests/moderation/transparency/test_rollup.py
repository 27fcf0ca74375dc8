"""The rollup stays what a rebuild from scratch would give, through merges, reversals and late mail."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, datetime, timedelta

from django.core.management import call_command
from django_q.models import Schedule

from moderation import tasks
from moderation.actions import (
    Actor,
    do_change_case_category,
    do_decline_case,
    do_merge_cases,
    do_move_report,
    do_set_reporter_flags,
    do_split_entity,
    do_unblock_entity,
)
from moderation.models import AuditEntry, DailyCount, DeclineReason, FirstDecision, PolicyCategory, RollupState
from moderation.transparency import queries, rollup
from reports.actions import do_process_inbound, do_store_inbound
from reports.models import Entity, InboundMessage, Report, Reporter
from tests.mail import build_mail
from tests.moderation.transparency.conftest import DAY1, FLAGGER, NOW, Clock, History

D1, D2, D3, D4 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 5)


def snapshot() -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    counts = set(DailyCount.objects.values_list("day", "metric", "dimension", "value", "count"))
    firsts = set(
        FirstDecision.objects.values_list(
            "case_id", "decision_id", "kind", "category", "actor_id", "first_report_at", "decided_at", "seconds"
        )
    )
    return counts, firsts


def refresh_at(clock: Clock, when: datetime) -> rollup.RefreshResult:
    clock.at(when)
    return rollup.refresh()


def test_the_first_refresh_builds_everything(history: History) -> None:
    result = rollup.refresh()
    assert (result.full, result.days, result.cases) == (True, 3, 5)
    state = RollupState.objects.get()
    assert (state.refreshed_at, state.days_recomputed) == (NOW, 3)


def test_a_refresh_with_nothing_changed_recomputes_nothing(history: History, clock: Clock) -> None:
    rollup.refresh()
    before = snapshot()
    result = refresh_at(clock, NOW + timedelta(hours=1))
    assert (result.full, result.days, result.cases) == (False, 0, 0)
    assert snapshot() == before


def test_a_category_set_later_moves_old_reports(history: History, clock: Clock) -> None:
    rollup.refresh()
    clock.at(NOW + timedelta(hours=1))
    do_change_case_category(history.case("C7"), category=PolicyCategory.FRAUD, actor=Actor(history.mod1))
    result = refresh_at(clock, NOW + timedelta(hours=1, minutes=5))
    assert result.days == 1
    assert queries.period_counts(D2, D2, "category").series("reports").counts == {"fraud": [1], "spam": [1]}


def test_a_change_stamped_before_a_refresh_but_committed_after_it_is_not_lost(history: History, clock: Clock) -> None:
    rollup.refresh()
    # A transaction that began a minute before that refresh and committed after it looks like this.
    clock.at(NOW - timedelta(minutes=1))
    do_change_case_category(history.case("C7"), category=PolicyCategory.FRAUD, actor=Actor(history.mod1))
    refresh_at(clock, NOW + timedelta(minutes=5))
    assert queries.period_counts(D2, D2, "category").series("reports").counts == {"fraud": [1], "spam": [1]}


def test_a_merge_after_a_refresh_moves_reports_cases_and_the_time_to_decision(history: History, clock: Clock) -> None:
    rollup.refresh()
    clock.at(NOW + timedelta(hours=1))
    # C7 (opened on day 2) into C1 (day 1, reopened): one case less on day 2, omar's notice is terrorism now.
    do_merge_cases(history.case("C7"), into=history.case("C1"), actor=Actor(history.mod1))
    refresh_at(clock, NOW + timedelta(hours=1, minutes=5))
    assert queries.period_counts(D1, D3).per_day("cases") == [4, 1, 0]
    assert queries.period_counts(D2, D2, "category").series("reports").counts == {"spam": [1], "terrorism": [1]}


def test_marking_a_flagger_untrusted_changes_the_source_of_their_old_notices(history: History, clock: Clock) -> None:
    rollup.refresh()
    clock.at(NOW + timedelta(hours=1))
    do_set_reporter_flags(Reporter.objects.get(email=FLAGGER), trusted=False, muted=False, actor=Actor(history.lead))
    refresh_at(clock, NOW + timedelta(hours=2))
    sources = DailyCount.objects.filter(metric=DailyCount.Metric.REPORTS, dimension="source", day=D1)
    assert set(sources.values_list("value", "count")) == {("other", 6)}


def test_a_mail_processed_days_late_counts_on_the_day_it_arrived(history: History, clock: Clock) -> None:
    rollup.refresh()
    clock.at(DAY1.replace(hour=20))
    stored = do_store_inbound(
        build_mail(
            "The channel t.me/unknown_channel posts propaganda videos every day, please block it right now.",
            sender="Nadia <nadia@example.org>",
            message_id="<late@example.org>",
        ),
        source="cli",
        enqueue=False,
    )
    # Processing failed until now (say); the report joins C7, which was opened on day 2.
    clock.at(NOW + timedelta(hours=1))
    assert do_process_inbound(stored.message.pk).report.case_id == history.cases["C7"].pk
    result = refresh_at(clock, NOW + timedelta(hours=1, minutes=5))
    assert queries.period_counts(D1, D3).per_day("reports") == [7, 2, 0]
    assert queries.period_counts(D1, D1, "category").series("reports").counts[""] == [1]
    # C7's own day is recomputed (its first report is the late one now), and nothing else.
    assert (result.days, queries.period_counts(D1, D3).per_day("cases")) == (2, [4, 2, 0])


def test_incremental_refreshes_end_where_a_rebuild_starts(
    history: History, clock: Clock, ingest: Callable[..., InboundMessage]
) -> None:
    """A series of changes, a refresh after each: the rollup equals the one a rebuild computes."""
    rollup.refresh()
    step = NOW

    def then(minutes: int) -> None:
        nonlocal step
        step += timedelta(minutes=minutes)
        clock.at(step)

    then(30)
    do_change_case_category(history.case("C7"), category=PolicyCategory.VIOLENCE, actor=Actor(history.mod1))
    rollup.refresh()
    then(30)
    # "@name" says only "an account"; a later link tells the kind, in another case.
    first = ingest(
        build_mail(
            "The account @drugs_market_x sells cocaine and pills to teenagers, please act quickly.",
            message_id="<k1@example.org>",
        )
    )
    rollup.refresh()
    then(30)
    do_decline_case(
        first.report.case,
        reason=DeclineReason.NOT_ENOUGH_INFORMATION,
        statement="No evidence.",
        actor=Actor(history.mod2),
    )
    rollup.refresh()
    then(24 * 60)
    second = ingest(
        build_mail(
            "Still there: https://t.me/drugs_market_x sells cocaine openly, here is the link to the channel.",
            sender="Ana <ana@example.org>",
            message_id="<k2@example.org>",
        )
    )
    assert second.report.case_id != first.report.case_id
    assert Entity.objects.get(url="https://t.me/drugs_market_x").kind == Entity.Kind.CHANNEL_OR_GROUP
    rollup.refresh()
    then(30)
    do_unblock_entity(
        Entity.objects.get(url="https://t.me/spam_group"), statement="Reviewed.", actor=Actor(history.lead)
    )
    rollup.refresh()
    then(30)
    do_merge_cases(history.case("C3"), into=history.case("C1"), actor=Actor(history.lead))
    rollup.refresh()
    then(30)
    # C1 holds terror_news and, since the merge, the sticker set and second_channel.
    do_split_entity(
        history.case("C1"), entity=Entity.objects.get(url="https://t.me/terror_news"), actor=Actor(history.lead)
    )
    rollup.refresh()
    then(30)
    jean = Report.objects.get(message_id__contains="r2@example.fr")
    do_move_report(jean, to_case=history.case("C7"), actor=Actor(history.lead))
    rollup.refresh()

    incremental = snapshot()
    # The declined account case's report counts as a channel now, on the day it came.
    by_kind = DailyCount.objects.filter(metric=DailyCount.Metric.REPORTS, dimension="kind", day=D3)
    assert set(by_kind.values_list("value", "count")) == {("channel_or_group", 1)}
    assert not DailyCount.objects.filter(dimension="kind", value="account").exists()
    rollup.refresh(rebuild=True)
    assert snapshot() == incremental


def test_the_rollup_writes_no_audit_entry(history: History) -> None:
    entries = AuditEntry.objects.count()
    rollup.refresh()
    assert AuditEntry.objects.count() == entries


def test_the_schedule_refreshes_through_the_task(history: History) -> None:
    schedule = Schedule.objects.get(name="abusedesk: refresh transparency figures")
    assert (schedule.func, schedule.minutes) == ("moderation.tasks.refresh_transparency", 5)
    assert tasks.refresh_transparency() == 3
    assert rollup.refreshed_at() == NOW


def test_the_rollup_command_says_what_it_did(history: History) -> None:
    out = io.StringIO()
    call_command("transparency_rollup", stdout=out)
    assert out.getvalue().startswith("rebuilt: 3 days and 5 cases recomputed in ")
    out = io.StringIO()
    call_command("transparency_rollup", "--rebuild", stdout=out)
    assert out.getvalue().startswith("rebuilt: 3 days and 5 cases")


def test_spans_join_consecutive_days() -> None:
    days = [D1, D2, D4, date(2026, 3, 9), date(2026, 3, 8)]
    assert rollup.spans(days) == [(D1, D2), (D4, D4), (date(2026, 3, 8), date(2026, 3, 9))]
