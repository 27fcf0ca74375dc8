"""The known-content panel on the case page, the queue row's tags, and a lead's "add to bank"
(moderation/views/known_content.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from moderation.actions import Actor, do_block_entity
from moderation.known_content.actions import do_save_hash_bank
from moderation.models import AuditAction, AuditEntry, BankedHash, HashBank
from reports import mediahash
from reports.models import Case
from tests.images import encoded, photo

HTMX = {"HX-Request": "true"}
PNG = encoded(photo(1))
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(64)


@pytest.fixture
def matched_case(import_list: Callable[..., HashBank], report_media: Callable[..., Case]) -> Case:
    pdq = mediahash.hash_media(PNG, "image/png", seconds=5).pdq
    import_list(f"pdq,label,source,date\n{pdq},IS execution video,TCAP,2026-11-02\n")
    return report_media((PNG, "image/png", "screenshot.png"), (MP4, "video/mp4", "clip.mp4"))


@pytest.fixture
def own_bank(db: None) -> HashBank:
    bank = HashBank(name="own")
    do_save_hash_bank(bank, actor=Actor(None, label="setup"))
    return bank


@pytest.fixture
def blocked_case(report_media: Callable[..., Case], lead: User) -> Case:
    case = report_media((PNG, "image/png", "poster.png"))
    do_block_entity(case.entities.get(), category="terrorism", statement="propaganda", actor=Actor(lead), case=case)
    return case


def _add(case: Case) -> str:
    return f"/cases/{case.reference}/known-content/add/"


def test_the_case_page_shows_the_match_as_automated_detection(as_moderator: Client, matched_case: Case) -> None:
    content = as_moderator.get(f"/cases/{matched_case.reference}/").content.decode()
    assert '<section id="known-content"' in content
    assert '<span class="badge warn known-content-tag">tcap: IS execution video</span>' in content
    assert "A moderator decides; nothing was blocked automatically." in content
    assert "PDQ, distance 0 of 256 bits" in content
    assert "TCAP, listed 2026-11-02" in content
    # The video has no perceptual hash, and the page says why.
    assert "clip.mp4: video, matched exactly only (video: no perceptual hash" in content
    # Only a lead on a blocked case may bank media.
    assert "Add to bank" not in content


def test_the_queue_row_carries_the_bank_and_label(as_moderator: Client, matched_case: Case) -> None:
    content = as_moderator.get("/").content.decode()
    row = content[content.index(f'<a href="/cases/{matched_case.reference}/">') :].split("</td>")[0]
    assert '<span class="badge prio">high</span>' in row
    assert "tcap: IS execution video</span>" in row


def test_the_panel_reloads_alone_for_viewers_and_not_for_strangers(
    as_auditor: Client, as_mallory: Client, matched_case: Case
) -> None:
    url = f"/cases/{matched_case.reference}/?partial=known-content"
    response = as_auditor.get(url, headers=HTMX)
    assert response.content.decode().lstrip().startswith('<section id="known-content"')
    assert as_mallory.get(url).status_code == 403


def test_a_lead_adds_a_blocked_cases_media_to_a_bank(
    as_lead: Client, lead: User, blocked_case: Case, own_bank: HashBank
) -> None:
    page = as_lead.get(f"/cases/{blocked_case.reference}/").content.decode()
    assert "Add to bank" in page
    before = AuditEntry.objects.count()
    response = as_lead.post(_add(blocked_case), {"bank": own_bank.pk, "label": "IS poster"}, headers=HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<section id="known-content"')
    assert "3 new hashes added to the bank." in content
    assert response["HX-Trigger"] == '{"audit-changed": {}}'
    entry = AuditEntry.objects.order_by("id").last()
    assert AuditEntry.objects.count() == before + 1
    assert (entry.action, entry.actor, entry.case, entry.ip) == (  # type: ignore[union-attr]
        AuditAction.CASE_MEDIA_BANKED, lead, blocked_case, "127.0.0.1",
    )  # fmt: skip
    assert set(BankedHash.objects.values_list("kind", flat=True)) == {"md5", "sha256", "pdq"}


def test_adding_to_a_bank_without_htmx_redirects_to_the_case(
    as_lead: Client, blocked_case: Case, own_bank: HashBank
) -> None:
    response = as_lead.post(_add(blocked_case), {"bank": own_bank.pk, "label": "IS poster"})
    assert (response.status_code, response["Location"]) == (302, f"/cases/{blocked_case.reference}/")
    assert BankedHash.objects.count() == 3


def test_adding_the_same_media_again_records_nothing(as_lead: Client, blocked_case: Case, own_bank: HashBank) -> None:
    as_lead.post(_add(blocked_case), {"bank": own_bank.pk, "label": "IS poster"}, headers=HTMX)
    before = AuditEntry.objects.count()
    response = as_lead.post(_add(blocked_case), {"bank": own_bank.pk, "label": "IS poster"}, headers=HTMX)
    assert "0 new hashes added to the bank." in response.content.decode()
    assert not response.has_header("HX-Trigger")
    assert AuditEntry.objects.count() == before


def test_adding_to_a_bank_without_a_label_rerenders_with_the_error(
    as_lead: Client, blocked_case: Case, own_bank: HashBank
) -> None:
    before = AuditEntry.objects.count()
    response = as_lead.post(_add(blocked_case), {"bank": own_bank.pk}, headers=HTMX)
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert AuditEntry.objects.count() == before


def test_an_open_cases_media_is_refused_with_the_reason(
    as_lead: Client, matched_case: Case, own_bank: HashBank
) -> None:
    before = AuditEntry.objects.count()
    response = as_lead.post(_add(matched_case), {"bank": own_bank.pk, "label": "x"}, headers=HTMX)
    assert "only a blocked case&#x27;s media can be added to a bank" in response.content.decode()
    assert AuditEntry.objects.count() == before


def test_adding_to_a_bank_is_for_leads_only(as_moderator: Client, blocked_case: Case, own_bank: HashBank) -> None:
    before = AuditEntry.objects.count()
    assert as_moderator.post(_add(blocked_case), {"bank": own_bank.pk, "label": "x"}).status_code == 403
    assert AuditEntry.objects.count() == before
    assert "Add to bank" not in as_moderator.get(f"/cases/{blocked_case.reference}/").content.decode()


def test_adding_to_a_bank_refuses_get(as_lead: Client, blocked_case: Case) -> None:
    assert as_lead.get(_add(blocked_case)).status_code == 405
