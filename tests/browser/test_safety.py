"""What a reporter sends is looked at, never run: hostile mail stays text, images stay blurred."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from moderation.models import AuditEntry
from reports.models import Attachment, Case

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCRIPT = "<script>window.__pwned=true;alert(document.domain)</script>"
IMG = '<img src=x onerror="window.__pwned=true;alert(document.domain)">'


def test_hostile_mail_renders_as_text_and_runs_no_script(
    page: Page,
    live_server: Any,
    signed_in: User,
    hostile_case: Case,
    dialogs: list[str],
    screenshot: Callable[[str], Path],
) -> None:
    page.goto(f"{live_server.url}/cases/{hostile_case.reference}/")
    timeline = page.locator("#timeline")
    reports = timeline.locator("article.report")
    expect(reports).to_have_count(2)
    plain, html = reports.nth(0), reports.nth(1)

    # Every reporter-controlled field shows its markup literally.
    expect(plain.locator("header bdi")).to_have_text(SCRIPT)
    expect(plain.locator("pre.subject")).to_have_text(f"{SCRIPT} t.me/hostile_channel")
    expect(plain.locator("pre.body")).to_contain_text(f"Look: {SCRIPT}{IMG} at https://t.me/hostile_channel")
    filename = Attachment.objects.get(report__case=hostile_case).filename
    assert "onerror" in filename
    expect(plain.locator("ul.attachments a[download]")).to_have_text(filename)
    # The HTML mail becomes text: its tags are gone, an escaped tag in it stays text.
    expect(html.locator("pre.body")).to_contain_text("HTML report about t.me/hostile_channel")
    expect(html.locator("pre.body")).to_contain_text("<script>alert('decoded')</script>")
    # Links in reports are text, never clickable into the platform.
    expect(timeline.locator("pre a")).to_have_count(0)

    # No reporter markup became an element, nothing ran, and the CSP had nothing to block.
    assert timeline.locator("script, [onerror], iframe, object, embed").count() == 0
    assert timeline.locator("img").count() == timeline.locator("img.blurred").count() == 1
    page.locator("#audit-trail").scroll_into_view_if_needed()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__pwned") is False
    assert page.evaluate("window.__cspViolations") == []
    assert dialogs == []
    screenshot("hostile-mail")
    assert not AuditEntry.objects.exists()


def test_blurred_image_reveals_on_click(
    page: Page,
    live_server: Any,
    signed_in: User,
    hostile_case: Case,
    dialogs: list[str],
    screenshot: Callable[[str], Path],
) -> None:
    page.goto(f"{live_server.url}/cases/{hostile_case.reference}/")
    image = page.locator("img.blurred")
    image.scroll_into_view_if_needed()
    expect(image).to_be_visible()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())

    def _filter() -> str:
        return image.evaluate("(img) => getComputedStyle(img).filter")

    assert _filter() == "blur(18px) grayscale(1)"
    page.locator("label.reveal").click()
    expect(page.locator(".reveal-toggle")).to_be_checked()
    # The filter transition takes 0.2 s; wait for it to end rather than sleep.
    page.wait_for_function("(img) => getComputedStyle(img).filter === 'none'", arg=image.element_handle())
    assert _filter() == "none"
    expect(page.locator(".reveal-hint")).to_be_hidden()
    assert dialogs == []
    screenshot("image-revealed")
    assert not AuditEntry.objects.exists()
