"""The leads' dashboard and the public transparency page in a real browser, with and without JavaScript."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, expect

from moderation.actions import Actor, do_block_entity, do_decline_case
from moderation.models import DeclineReason, PolicyCategory
from moderation.transparency import rollup
from reports.models import Case

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lead(transactional_db: None) -> User:
    user = User.objects.create_user("lena", "lena@desk.example", "browser-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name="lead"))
    return user


def _sign_in(context: BrowserContext, live_server: Any, user: User) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


@pytest.fixture
def decided(queue_cases: dict[str, Case], lead: User) -> dict[str, Case]:
    """The three queue cases: the bot blocked, the weapons group declined, the propaganda one open."""
    do_block_entity(
        queue_cases["weapons_bot"].entities.get(),
        category=PolicyCategory.ILLEGAL_GOODS,
        statement="Sells weapons.",
        actor=Actor(lead),
        case=queue_cases["weapons_bot"],
    )
    do_decline_case(
        queue_cases["weapons_group"], reason=DeclineReason.NO_VIOLATION, statement="Toy guns.", actor=Actor(lead)
    )
    rollup.refresh()
    return queue_cases


def test_lead_reads_the_dashboard_and_splits_it_by_language(
    page: Page,
    context: BrowserContext,
    live_server: Any,
    lead: User,
    decided: dict[str, Case],
    dialogs: list[str],
    screenshot: Callable[[str], Path],
) -> None:
    _sign_in(context, live_server, lead)
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Dashboard").click()
    expect(page).to_have_url(f"{live_server.url}/dashboard/")

    def total(name: str) -> Any:
        return page.locator("dl.totals > div").filter(has=page.get_by_text(name, exact=True)).locator("dd")

    expect(total("Reports")).to_have_text("4")
    expect(total("Cases opened")).to_have_text("3")
    expect(total("Blocks")).to_have_text("1")
    expect(total("Declines")).to_have_text("1")
    charts = page.locator("figure.chart > svg")
    expect(charts).to_have_count(3)
    expect(page.locator(".figure").first.locator("ul.legend")).to_contain_text("uncategorised")
    expect(page.locator("table.backlog")).to_contain_text("under 1 hour")
    expect(page.get_by_role("cell", name="lena")).to_be_visible()

    # htmx swaps the results and keeps the address in step; the chart is split by language now.
    page.get_by_label("Split by").select_option("language")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/dashboard/\?.*by=language"))
    expect(page.locator(".figure h2").first).to_contain_text("by language")
    expect(page.locator(".figure").first.locator("ul.legend")).to_contain_text("en")
    # The numbers behind a chart, as a table.
    first = page.locator(".figure").first
    first.get_by_text("The numbers as a table").click()
    expect(first.locator("table.figure-table tfoot")).to_contain_text("4")
    screenshot("dashboard")
    assert page.evaluate("window.__cspViolations") == []
    assert dialogs == []


def test_the_dashboard_reads_without_javascript(
    browser: Browser, live_server: Any, lead: User, decided: dict[str, Case], screenshot: Callable[[str], Path]
) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    try:
        _sign_in(context, live_server, lead)
        page = context.new_page()
        page.goto(f"{live_server.url}/dashboard/?by=kind")
        expect(page.locator("figure.chart > svg")).to_have_count(3)
        blocks = page.locator(".figure").nth(2)
        blocks.get_by_text("The numbers as a table").click()
        expect(blocks.locator("table.figure-table thead")).to_contain_text("bot")
        # The form submits as a plain GET.
        page.get_by_label("Split by").select_option("category")
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(r"by=category"))
        expect(page.locator(".figure").nth(2).locator("ul.legend")).to_contain_text("illegal goods")
    finally:
        context.close()


def test_the_public_page_without_login(
    page: Page, live_server: Any, decided: dict[str, Case], dialogs: list[str], screenshot: Callable[[str], Path]
) -> None:
    settings.ABUSEDESK_TRANSPARENCY_PUBLIC = True
    try:
        page.goto(f"{live_server.url}/transparency/")
        expect(page.locator("h1")).to_have_text("Blocked channels, bots and sticker sets")
        expect(page.locator("p.total")).to_have_text("1 block in this period.")
        expect(page.locator("figure.chart > svg > rect.series-0")).to_have_count(1)
        expect(page.locator("body")).not_to_contain_text("weapons_shop_bot")
        expect(page.locator("body")).not_to_contain_text("lena")
        page.get_by_role("link", name="JSON feed").click()
        assert '"total": 1' in page.locator("body").inner_text() or '"total":1' in page.locator("body").inner_text()
        page.go_back()
        screenshot("transparency-public")
        assert page.evaluate("window.__cspViolations") == []
        assert dialogs == []
    finally:
        settings.ABUSEDESK_TRANSPARENCY_PUBLIC = False
