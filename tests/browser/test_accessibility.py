"""axe-core on the desk's main pages, in the real browser: what a screen-reader user meets.

axe-core comes from PyPI (axe-playwright-python ships its minified build); nothing of it is kept in
this repository. Playwright evaluates it in the page over the DevTools protocol, which the page's
Content-Security-Policy does not govern, so the pages are checked under their real CSP.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from moderation.actions import Actor, do_add_note, do_block_entity
from moderation.models import AuditEntry, PolicyCategory
from reports.models import Case

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Axe()


def _violations(page: Page) -> str:
    """axe-core's report of every violation on the page as it is now; empty when there is none."""
    results = AXE.run(page)
    return results.generate_report() if results.violations_count else ""


@pytest.fixture
def worked_case(queue_cases: dict[str, Case], lead: User) -> Case:
    """The bot's case with a block, a note and their audit entries, so every panel has content."""
    case = queue_cases["weapons_bot"]
    do_block_entity(
        case.entities.get(),
        category=PolicyCategory.ILLEGAL_GOODS,
        statement="Sells weapons.",
        actor=Actor(lead),
        case=case,
    )
    do_add_note(case, text="Checked the bot's channel too.", actor=Actor(lead))
    return Case.objects.get(pk=case.pk)


def test_login_page_passes_axe(page: Page, live_server: Any, transactional_db: None) -> None:
    page.goto(f"{live_server.url}/login/")
    expect(page.get_by_label("Username")).to_be_visible()
    assert _violations(page) == ""


@pytest.mark.parametrize("where", ["queue", "case", "entity", "audit"])
def test_workspace_page_passes_axe(
    page: Page,
    live_server: Any,
    signed_in_lead: User,
    queue_cases: dict[str, Case],
    worked_case: Case,
    screenshot: Callable[[str], Path],
    where: str,
) -> None:
    paths = {
        "queue": "/",
        "case": f"/cases/{worked_case.reference}/",
        "entity": f"/entities/{worked_case.entities.get().public_id}/",
        "audit": "/audit/",
    }
    page.goto(f"{live_server.url}{paths[where]}")
    expect(page.locator("main h1, main table").first).to_be_visible()
    screenshot(f"axe-{where}")
    assert _violations(page) == ""


def test_an_invalid_block_form_with_its_error_passes_axe(
    page: Page,
    live_server: Any,
    signed_in_lead: User,
    queue_cases: dict[str, Case],
    screenshot: Callable[[str], Path],
) -> None:
    case = queue_cases["propaganda"]
    page.goto(f"{live_server.url}/cases/{case.reference}/")
    block = page.locator("form.block-form")
    block.get_by_label("policy category").select_option(PolicyCategory.TERRORISM.value)
    # Only whitespace: the browser lets it through `required`, the form refuses it.
    block.get_by_label("statement of reasons").fill("   ")
    block.get_by_role("button", name="Block").click()
    statement = page.locator("form.block-form").get_by_label("statement of reasons")
    expect(statement).to_have_attribute("aria-invalid", "true")
    screenshot("axe-invalid-block-form")
    assert _violations(page) == ""
    assert not AuditEntry.objects.exists()
