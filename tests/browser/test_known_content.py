"""A hash-match case in a real browser: the queue row's tag, the case page's automated-detection
panel, and a lead adding the blocked case's media to a bank."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from playwright.sync_api import BrowserContext, Page, expect

from moderation.actions import Actor
from moderation.known_content.actions import do_import_hashes, do_save_hash_bank
from moderation.known_content.lists import read_hash_list
from moderation.models import AuditAction, AuditEntry, BankedHash, HashBank
from reports import mediahash
from reports.models import Case, InboundMessage
from tests.images import encoded, mail_with_files, photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lead_signed_in(context: BrowserContext, live_server: Any) -> User:
    lead = User.objects.create_user("lena", "lena@desk.example", "lead-password-1", is_staff=True)
    lead.groups.add(Group.objects.get(name="lead"))
    client = Client()
    client.force_login(lead)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    return lead


@pytest.fixture
def matched_case(ingest: Callable[..., InboundMessage]) -> Case:
    # The bank holds the PDQ of a smaller JPEG copy of the picture the reporter sends.
    copy = encoded(photo(1).resize((200, 150)), "JPEG", quality=60)
    pdq = mediahash.hash_media(copy, "image/jpeg", seconds=5).pdq
    listed = read_hash_list(f"pdq,label,source,date\n{pdq},IS execution video,TCAP,2026-11-02\n".encode())
    do_import_hashes("tcap", listed, filename="tcap.csv", actor=Actor(None, label="cli:import_hashes"))
    do_save_hash_bank(HashBank(name="own-blocks"), actor=Actor(None, label="setup"))
    raw = mail_with_files((encoded(photo(1)), "image/png", "screenshot.png"))
    # In a transactional test the commit runs report_created, and the sync q-cluster matches.
    return ingest(raw).report.case


def test_a_lead_sees_a_hash_match_blocks_the_channel_and_banks_its_media(
    page: Page, live_server: Any, lead_signed_in: User, matched_case: Case, screenshot: Callable[[str], Path]
) -> None:
    page.goto(f"{live_server.url}/")
    row = page.locator("tr.queue-row", has_text=matched_case.reference)
    expect(row.locator(".known-content-tag")).to_have_text("tcap: IS execution video")
    expect(row.locator(".badge.prio")).to_have_text("high")
    screenshot("known-content-queue")

    row.get_by_role("link", name=matched_case.reference).click()
    panel = page.locator("#known-content")
    expect(panel.locator(".known-content-tag")).to_have_text("tcap: IS execution video")
    expect(panel).to_contain_text("Automated detection")
    expect(panel).to_contain_text("nothing was blocked automatically")
    expect(panel.get_by_role("button", name="Add to bank")).to_have_count(0)

    block = page.locator("form.block-form")
    block.locator("select[name=category]").select_option("terrorism")
    block.locator("[name=statement]").fill("Posts IS execution videos.")
    block.get_by_role("button", name="Block").click()
    # The panel reloads on case-changed and offers the lead the bank.
    form = panel.locator("form")
    expect(form.get_by_role("button", name="Add to bank")).to_be_visible()
    form.locator("select[name=bank]").select_option(label="own-blocks")
    form.locator("input[name=label]").fill("IS execution video")
    form.get_by_role("button", name="Add to bank").click()
    expect(page.locator("#known-content")).to_contain_text("3 new hashes added to the bank.")
    assert BankedHash.objects.filter(bank__name="own-blocks").count() == 3
    assert AuditEntry.objects.filter(action=AuditAction.CASE_MEDIA_BANKED, case=matched_case).count() == 1
    page.locator("#known-content").scroll_into_view_if_needed()
    screenshot("known-content-match")
