"""A moderator's day in a real browser: sign in, find a case by keyboard, block, reply, audit."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from moderation.models import AuditAction, AuditEntry, Decision, PolicyCategory, Reply
from reports.models import Case, Entity
from tests.mail import build_mail

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STATEMENT = "Sells weapons to anyone who asks (reports of 2 people)."


def _sign_in(page: Page, live_server: Any, user: User, password: str) -> None:
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator(".topbar .who")).to_contain_text(user.username)


def test_moderator_finds_a_case_by_keyboard_blocks_it_and_answers_its_reporters(
    page: Page,
    live_server: Any,
    moderator: User,
    moderator_password: str,
    queue_cases: dict[str, Case],
    screenshot: Callable[[str], Path],
) -> None:
    target = queue_cases["weapons_bot"]
    entity = target.entities.get()
    _sign_in(page, live_server, moderator, moderator_password)
    expect(page.locator("tr.queue-row")).to_have_count(3)

    # Keyboard only: "/" to search, Enter to run it, Escape to leave the field, j/k, Enter.
    page.keyboard.press("/")
    expect(page.locator("#queue-search")).to_be_focused()
    page.keyboard.type("weapons")
    page.keyboard.press("Enter")
    rows = page.locator("tr.queue-row")
    expect(rows).to_have_count(2)
    # Newest first: the weapons group, then the bot.
    expect(rows.nth(0)).to_contain_text(queue_cases["weapons_group"].reference)
    expect(rows.nth(1)).to_contain_text(target.reference)
    page.keyboard.press("Escape")
    expect(page.locator("#queue-search")).not_to_be_focused()
    for key, current in (("j", 0), ("j", 1), ("k", 0), ("j", 1)):
        page.keyboard.press(key)
        expect(rows.nth(current)).to_have_class(re.compile(r"\bis-current\b"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/cases/{target.reference}/")

    # Block the entity with a category and a statement of reasons.
    block = page.locator("form.block-form")
    block.get_by_label("policy category").select_option(PolicyCategory.ILLEGAL_GOODS.value)
    block.get_by_label("statement of reasons").fill(STATEMENT)
    block.get_by_role("button", name="Block").click()
    panel = page.locator("#entities-panel")
    expect(panel.locator(".entity-card .status")).to_have_text("blocked")
    expect(page.locator("#case-header h1 .status")).to_have_text("actioned")

    # A templated reply to every reporter of the case.
    composer = page.locator("#reply-composer")
    composer.get_by_label("Template").select_option(label="blocked [en]")
    composer.get_by_label("To").select_option("all")
    composer.get_by_role("button", name="Queue reply").click()
    expect(composer.locator(".msg-success")).to_have_text("2 replies queued.")

    trail = page.locator("#audit-trail ol.audit")
    expect(trail).to_contain_text("entity blocked")
    expect(trail).to_contain_text("reply queued")
    expect(trail.locator("li", has_text="entity blocked")).to_contain_text(entity.url)
    screenshot("case-blocked-and-replied")

    entries = list(AuditEntry.objects.filter(case=target).order_by("id"))
    assert [(e.action, e.actor, e.entity) for e in entries] == [
        (AuditAction.ENTITY_BLOCKED, moderator, entity),
        (AuditAction.REPLY_QUEUED, moderator, None),
    ]
    assert entries[0].data["category"] == PolicyCategory.ILLEGAL_GOODS
    assert entries[0].data["statement"] == STATEMENT
    assert entries[0].data["new"] == {"status": Entity.Status.BLOCKED, "case_status": Case.Status.ACTIONED}
    assert entries[1].data["new"]["template"] == "blocked"
    decision = Decision.objects.get(case=target)
    assert (decision.kind, decision.entity, decision.actor) == (Decision.Kind.BLOCK, entity, moderator)
    replies = Reply.objects.filter(case=target).order_by("reporter__email")
    assert [r.reporter.email for r in replies] == ["jonas@example.net", "lena@example.de"]
    assert {r.template.language for r in replies} == {"en"}


def test_question_mark_opens_the_shortcut_help(
    page: Page,
    live_server: Any,
    signed_in: User,
    queue_cases: dict[str, Case],
    screenshot: Callable[[str], Path],
) -> None:
    page.goto(f"{live_server.url}/")
    help_dialog = page.locator("dialog#shortcuts")
    expect(help_dialog).to_be_hidden()
    page.keyboard.press("?")
    expect(help_dialog).to_be_visible()
    expect(help_dialog).to_have_attribute("open", "")
    expect(help_dialog).to_contain_text("assign to me")
    screenshot("shortcut-help")
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("width", [1280, 1024])
def test_the_queue_fits_a_laptop_screen_without_scrolling_sideways(
    page: Page,
    live_server: Any,
    signed_in: User,
    queue_cases: dict[str, Case],
    ingest: Callable[..., Any],
    screenshot: Callable[[str], Path],
    width: int,
) -> None:
    # The longest names Telegram allows: 64 characters for a sticker set, 32 for a username.
    ingest(
        build_mail("Flags of a terrorist group: t.me/addstickers/" + "jihadist_flags_collection_" * 2 + "a1b2c3d4e5f6")
    )
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/")
    expect(page.locator("tr.queue-row")).to_have_count(4)
    screenshot(f"queue-{width}")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
