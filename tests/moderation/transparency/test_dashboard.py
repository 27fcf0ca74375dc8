"""The leads' dashboard page: who may see it, what it shows, its fragment and its period form."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from moderation.transparency import rollup
from moderation.transparency.queries import Durations
from tests.moderation.transparency.conftest import History

PERIOD = {"since": "2026-03-02", "until": "2026-03-04"}


@pytest.fixture
def as_history_lead(history: History) -> Client:
    rollup.refresh()
    client = Client()
    client.force_login(history.lead)
    return client


def test_dashboard_shows_the_period_figures_to_a_lead(as_history_lead: Client) -> None:
    response = as_history_lead.get("/dashboard/", PERIOD)
    assert response.status_code == 200
    context: Any = response.context
    assert context["totals"] == {"reports": 8, "cases": 6, "blocks": 5, "unblocks": 1, "declines": 1}
    assert context["times"].overall == Durations(5, 86400.0, 162000)
    reports, cases, blocks = context["figures"]
    assert [row[2] for row in reports.rows] == [6, 2, 0]
    assert reports.columns == ["spam", "terrorism / violent extremism", "uncategorised", "illegal goods"]
    assert (cases.total, blocks.total) == (6, 5)
    assert [row.username for row in context["moderators"]] == ["mod1", "mod2", "lena"]
    html = response.content.decode()
    assert html.count("<svg viewBox=") == 3
    assert "<h2>Reports per day <span" in html and "<h2>Blocks per day <span" in html
    assert "<title>03-02: terrorism / violent extremism 3</title>" in html
    assert '<td class="num">6</td>' in html


def test_dashboard_by_kind_counts_each_report_once_in_the_all_column(as_history_lead: Client) -> None:
    response = as_history_lead.get("/dashboard/", {**PERIOD, "by": "kind"})
    reports, _cases, blocks = response.context["figures"]  # type: ignore[index]
    # Day 1: 4 + 1 + 1 + 1 under the kinds, but 6 reports.
    assert reports.rows[0][1:] == ([4, 1, 1, 1], 6)
    assert reports.overlapping and not blocks.overlapping
    assert "names several kinds of entity counts under each" in response.content.decode()


def test_dashboard_is_open_to_an_auditor(history: History, as_auditor: Client) -> None:
    assert as_auditor.get("/dashboard/").status_code == 200


def test_dashboard_forbids_a_moderator(as_moderator: Client) -> None:
    assert as_moderator.get("/dashboard/").status_code == 403


def test_dashboard_forbids_staff_without_a_role(as_mallory: Client) -> None:
    assert as_mallory.get("/dashboard/").status_code == 403


def test_dashboard_redirects_anonymous_to_login(client: Client, db: None) -> None:
    assert client.get("/dashboard/")["Location"].startswith("/login/")


def test_dashboard_rejects_post(as_lead: Client) -> None:
    assert as_lead.post("/dashboard/", PERIOD).status_code == 405


def test_dashboard_fragment_for_htmx(as_history_lead: Client) -> None:
    response = as_history_lead.get("/dashboard/", PERIOD, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="dashboard-results">')
    assert "<form" not in html


def test_dashboard_with_an_invalid_period_says_so_and_shows_the_last_30_days(as_history_lead: Client) -> None:
    response = as_history_lead.get("/dashboard/", {"since": "2026-03-04", "until": "2026-03-02"})
    assert response.status_code == 200
    assert "The period must not end before it starts." in response.content.decode()
    context: Any = response.context
    assert (context["last"] - context["first"]).days == 29


def test_dashboard_refuses_a_period_over_a_year(as_history_lead: Client) -> None:
    response = as_history_lead.get("/dashboard/", {"since": "2025-01-01", "until": "2026-03-04"})
    assert "Choose a period of at most 366 days." in response.content.decode()


def test_dashboard_before_the_first_refresh_says_when_figures_come(as_lead: Client) -> None:
    response = as_lead.get("/dashboard/")
    assert response.status_code == 200
    assert "daily figures not computed yet" in response.content.decode()


def test_dashboard_queries_do_not_grow_with_the_period(
    as_history_lead: Client, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(16):
        as_history_lead.get("/dashboard/", {"since": "2025-03-05", "until": "2026-03-04", "by": "kind"})


def test_dashboard_link_in_the_navigation_for_leads_only(as_history_lead: Client, moderator: User) -> None:
    assert 'href="/dashboard/"' in as_history_lead.get("/").content.decode()
    client = Client()
    client.force_login(moderator)
    assert 'href="/dashboard/"' not in client.get("/").content.decode()


def test_dashboard_form_shows_the_default_period(as_history_lead: Client) -> None:
    html = as_history_lead.get("/dashboard/").content.decode()
    assert 'name="since" value="2026-02-03"' in html and 'name="until" value="2026-03-04"' in html
    context: Any = as_history_lead.get("/dashboard/", {"until": "2026-03-03"}).context
    assert (context["first"].isoformat(), context["last"].isoformat()) == ("2026-02-02", "2026-03-03")


def test_dashboard_offers_the_preset_periods(as_history_lead: Client) -> None:
    html = as_history_lead.get("/dashboard/", {"by": "language"}).content.decode()
    assert '<a href="?since=2026-02-26&amp;until=2026-03-04&amp;by=language">last 7 days</a>' in html
    assert "since=2025-12-05&amp;until=2026-03-04" in html
