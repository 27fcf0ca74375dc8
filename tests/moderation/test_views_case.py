from __future__ import annotations

import io
import re
from collections.abc import Callable
from email.message import EmailMessage
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils.html import escape
from PIL import Image

from moderation.actions import Actor, do_block_entity, do_change_case_status
from moderation.models import AuditAction, AuditEntry, Decision, Note, ReplyTemplate
from reports.models import Case, InboundMessage, Reporter

HTMX = {"HX-Request": "true"}
SCRIPT = "<script>alert(1)</script>"


def _url(case: Case, suffix: str = "") -> str:
    return f"/cases/{case.reference}/{suffix}"


def _only_entry() -> AuditEntry:
    return AuditEntry.objects.get()


class _Controls(HTMLParser):
    """The page's form controls a person fills in or chooses, its ids, and its labels' targets."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.ids: list[str] = []
        self.label_targets: set[str] = set()
        self.listeners: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if named.get("id"):
            self.ids.append(named["id"] or "")
        if tag == "label" and named.get("for"):
            self.label_targets.add(named["for"] or "")
        if tag in {"select", "textarea"} or (tag == "input" and named.get("type") not in {"hidden", "submit"}):
            self.controls.append(named)
        if named.get("hx-trigger", "").endswith(" from:body"):
            self.listeners[named.get("id") or ""] = (named["hx-trigger"] or "").removesuffix(" from:body")


def _controls(content: str) -> _Controls:
    parser = _Controls()
    parser.feed(content)
    return parser


@pytest.fixture
def hostile_case(ingest: Callable[..., InboundMessage]) -> Case:
    mail = EmailMessage()
    mail["From"] = f'"{SCRIPT}" <hostile@example.org>'
    mail["To"] = "abuse@abusedesk.localhost"
    mail["Subject"] = f"{SCRIPT} t.me/hostile_channel"
    mail["Message-ID"] = "<hostile@example.org>"
    mail.set_content(f'{SCRIPT}<img src=x onerror=alert(2)> see https://t.me/hostile_channel "><b>x</b>')
    png = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(png, format="PNG")
    mail.add_attachment(png.getvalue(), maintype="image", subtype="png", filename="<img src=x onerror=alert(3)>.png")
    mail.add_attachment(b"<html><script>alert(4)</script></html>", maintype="text", subtype="html", filename="x.html")
    return ingest(mail.as_bytes()).report.case


# The page and its fragments


def test_each_report_shows_whether_its_from_address_was_verified(as_moderator: Client, case: Case) -> None:
    report = case.reports.get()
    content = as_moderator.get(_url(case)).content.decode()
    assert 'class="badge warn from-verdict" title="no Authentication-Results field">From not verified' in content
    report.from_verified = True
    report.auth_results = {"authserv-id": "mx.desk.example", "dmarc": "pass"}
    report.save(update_fields=["from_verified", "auth_results"])
    content = as_moderator.get(_url(case)).content.decode()
    assert 'class="badge ok from-verdict" title="mx.desk.example: dmarc=pass">From verified' in content


def test_a_reply_to_address_is_shown_as_one_replies_never_go_to(as_moderator: Client, case: Case) -> None:
    case.reports.update(reply_to="victim@example.com")
    content = as_moderator.get(_url(case)).content.decode()
    assert 'title="Replies never go to this address">Reply-To: <bdi>victim@example.com</bdi>' in content


def test_attachments_come_with_a_malware_warning(as_moderator: Client, hostile_case: Case) -> None:
    content = as_moderator.get(_url(hostile_case)).content.decode()
    assert "may be malware: open them only in an isolated environment" in content


def test_a_quarantined_report_says_why(as_moderator: Client, case: Case) -> None:
    case.reports.update(parse_error="parser limits hit: max_parts")
    content = as_moderator.get(_url(case)).content.decode()
    assert '<p class="error quarantine">Quarantined: parser limits hit: max_parts</p>' in content


def test_case_page_shows_header_entities_reports_and_audit(as_moderator: Client, case: Case) -> None:
    response = as_moderator.get(_url(case))
    content = response.content.decode()
    assert response.status_code == 200
    assert case.reference in content
    assert "https://t.me/example_channel" in content
    assert "it posts execution videos." in content
    assert 'id="audit-trail"' in content


def test_case_page_reloads_one_fragment_for_htmx(as_moderator: Client, case: Case) -> None:
    response = as_moderator.get(_url(case), {"partial": "audit-trail"}, headers=HTMX)
    assert response.content.decode().lstrip().startswith('<section id="audit-trail"')


def test_case_page_renders_a_hostile_report_as_text(as_moderator: Client, hostile_case: Case) -> None:
    content = as_moderator.get(_url(hostile_case)).content.decode()
    assert "<script>alert" not in content
    assert "<img src=x" not in content
    assert '"><b>' not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert '<a href="https://t.me/hostile_channel' not in content


def test_case_page_forbids_staff_without_a_role(as_mallory: Client, case: Case) -> None:
    assert as_mallory.get(_url(case)).status_code == 403


def test_case_page_redirects_anonymous_to_login(client: Client, case: Case) -> None:
    assert client.get(_url(case))["Location"] == f"/login/?next={_url(case)}"


def test_case_page_rejects_post(as_moderator: Client, case: Case) -> None:
    assert as_moderator.post(_url(case)).status_code == 405


def test_every_control_on_the_case_page_has_its_own_label_and_id(
    as_lead: Client, lead: User, two_entity_case: Case
) -> None:
    """Two entities, so two of each entity form: every id stays unique, every control labelled."""
    blocked = two_entity_case.entities.order_by("url").first()
    do_block_entity(blocked, category="spam", statement="Spam.", actor=Actor(lead), case=two_entity_case)
    page = _controls(as_lead.get(_url(two_entity_case)).content.decode())
    # Header 3 (an actioned case has no status menu), block 2, unblock 1, move 1, decline 2,
    # merge 1, reply 2, note 1, add to a hash bank 2 (a lead on a blocked case).
    assert len(page.controls) == 15
    assert len(page.ids) == len(set(page.ids))
    for control in page.controls:
        assert control.get("id") in page.label_targets, control


def test_each_fragment_reloads_on_the_event_that_names_its_data(as_moderator: Client, case: Case) -> None:
    page = _controls(as_moderator.get(_url(case)).content.decode())
    assert page.listeners == {
        "case-header": "case-changed",
        "entities-panel": "entities-changed",
        # A block changes whether a lead may add the case's media to a hash bank.
        "known-content": "case-changed",
        "timeline": "reports-changed",
        "decision-panel": "decisions-changed",
        "audit-trail": "audit-changed",
    }


def test_the_timeline_reloads_the_page_of_reports_it_shows(as_moderator: Client, case: Case) -> None:
    response = as_moderator.get(_url(case), {"partial": "timeline", "reports": "1"}, headers=HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<section id="timeline"')
    assert f'hx-get="{_url(case)}?partial=timeline&amp;reports=1"' in content
    assert "it posts execution videos." in content


def test_an_unknown_fragment_gets_the_whole_page(as_moderator: Client, case: Case) -> None:
    response = as_moderator.get(_url(case), {"partial": "nothing-like-it"}, headers=HTMX)
    assert response.content.decode().lstrip().startswith("<!doctype html>")


def test_case_page_is_read_only_for_an_auditor(as_auditor: Client, case: Case) -> None:
    content = as_auditor.get(_url(case)).content.decode()
    assert "/status/" not in content
    assert "/block/" not in content


# Header edits


def test_status_change_renders_the_header_and_records_one_entry(
    as_moderator: Client, moderator: User, case: Case
) -> None:
    response = as_moderator.post(
        _url(case, "status/"), {"status": "open", "version": case.updated_at.isoformat()}, headers=HTMX
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section id="case-header"')
    assert response["HX-Trigger"] == '{"audit-changed": {}}'
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.case, entry.data) == (
        AuditAction.CASE_STATUS_CHANGED,
        moderator,
        case,
        {"old": "new", "new": "open"},
    )
    assert entry.ip == "127.0.0.1"


def test_status_change_without_htmx_redirects_to_the_case(as_moderator: Client, case: Case) -> None:
    response = as_moderator.post(_url(case, "status/"), {"status": "waiting"})
    assert response.status_code == 302
    assert response["Location"] == _url(case)


def test_status_unchanged_records_nothing(as_moderator: Client, case: Case) -> None:
    response = as_moderator.post(_url(case, "status/"), {"status": "new"}, headers=HTMX)
    assert response.status_code == 200
    assert "HX-Trigger" not in response
    assert not AuditEntry.objects.exists()


def test_invalid_status_rerenders_with_200_and_records_nothing(as_moderator: Client, case: Case) -> None:
    response = as_moderator.post(_url(case, "status/"), {"status": "actioned"})
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert not AuditEntry.objects.exists()


def test_invalid_status_shows_its_error_beside_the_field_for_htmx(as_moderator: Client, case: Case) -> None:
    response = as_moderator.post(_url(case, "status/"), {"status": "actioned"}, headers=HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<section id="case-header"')
    assert "HX-Trigger" not in response
    select = re.search(r'<select name="status"[^>]*>', content)
    assert select is not None
    assert 'aria-invalid="true"' in select.group()
    assert 'aria-describedby="status-status_error"' in select.group()
    assert '<ul class="errorlist" id="status-status_error"><li>Select a valid choice.' in content
    assert not AuditEntry.objects.exists()


def test_each_header_write_calls_its_own_action(as_moderator: Client, moderator: User, case: Case) -> None:
    """Four forms, four URLs: each changes only its own field, whatever else is posted with it."""
    posted = {"status": "waiting", "priority": "3", "category": "spam", "assignee": "alice"}
    for field in ("status", "priority", "category"):
        as_moderator.post(_url(case, f"{field}/"), posted, headers=HTMX)
    as_moderator.post(_url(case, "assign/"), posted, headers=HTMX)
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "data"))
    assert actions == [
        (AuditAction.CASE_STATUS_CHANGED, {"old": "new", "new": "waiting"}),
        (AuditAction.CASE_PRIORITY_CHANGED, {"old": 1, "new": 3}),
        (AuditAction.CASE_CATEGORY_CHANGED, {"old": "", "new": "spam"}),
        (AuditAction.CASE_ASSIGNED, {"old": None, "new": moderator.pk}),
    ]


def test_priority_change_records_one_entry(as_moderator: Client, moderator: User, case: Case) -> None:
    as_moderator.post(_url(case, "priority/"), {"priority": "3"}, headers=HTMX)
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.case, entry.data) == (
        AuditAction.CASE_PRIORITY_CHANGED,
        moderator,
        case,
        {"old": 1, "new": 3},
    )


def test_category_change_records_one_entry(as_moderator: Client, moderator: User, case: Case) -> None:
    as_moderator.post(_url(case, "category/"), {"category": "terrorism"}, headers=HTMX)
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.data) == (
        AuditAction.CASE_CATEGORY_CHANGED,
        moderator,
        {"old": "", "new": "terrorism"},
    )


def test_assign_to_a_moderator_records_one_entry(
    as_moderator: Client, moderator: User, other_moderator: User, case: Case
) -> None:
    as_moderator.post(_url(case, "assign/"), {"assignee": "bob"}, headers=HTMX)
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.case, entry.data) == (
        AuditAction.CASE_ASSIGNED,
        moderator,
        case,
        {"old": None, "new": other_moderator.pk},
    )


def test_assign_to_staff_without_a_role_is_invalid(as_moderator: Client, staff_without_role: User, case: Case) -> None:
    response = as_moderator.post(_url(case, "assign/"), {"assignee": "mallory"}, headers=HTMX)
    assert response.status_code == 200
    assert not AuditEntry.objects.exists()


def test_header_write_forbids_an_auditor(as_auditor: Client, case: Case) -> None:
    assert as_auditor.post(_url(case, "status/"), {"status": "open"}).status_code == 403
    assert not AuditEntry.objects.exists()


def test_header_write_forbids_staff_without_a_role(as_mallory: Client, case: Case) -> None:
    assert as_mallory.post(_url(case, "status/"), {"status": "open"}).status_code == 403


def test_header_write_redirects_anonymous_to_login(client: Client, case: Case) -> None:
    assert client.post(_url(case, "status/"), {"status": "open"})["Location"].startswith("/login/")


def test_header_write_rejects_get(as_moderator: Client, case: Case) -> None:
    assert as_moderator.get(_url(case, "status/")).status_code == 405


def test_stale_version_applies_and_tells_what_changed(as_moderator: Client, other_moderator: User, case: Case) -> None:
    version = case.updated_at.isoformat()
    do_change_case_status(case, status=Case.Status.WAITING, actor=Actor(other_moderator))
    response = as_moderator.post(_url(case, "priority/"), {"priority": "2", "version": version}, headers=HTMX)
    content = response.content.decode()
    assert "Someone else changed this case" in content
    assert "bob: case status changed" in content
    assert AuditEntry.objects.filter(action=AuditAction.CASE_PRIORITY_CHANGED).count() == 1


# Decisions


def test_block_renders_entities_and_records_one_entry(as_moderator: Client, moderator: User, case: Case) -> None:
    entity = case.entities.get()
    response = as_moderator.post(
        _url(case, f"entities/{entity.public_id}/block/"),
        {"category": "terrorism", "statement": "Execution videos."},
        headers=HTMX,
    )
    assert response.content.decode().lstrip().startswith('<section id="entities-panel"')
    assert response["HX-Trigger"] == '{"case-changed": {}, "decisions-changed": {}, "audit-changed": {}}'
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.case, entry.entity) == (
        AuditAction.ENTITY_BLOCKED,
        moderator,
        case,
        entity,
    )
    assert entry.data["statement"] == "Execution videos."
    assert entry.data["new"] == {"status": "blocked", "case_status": "actioned"}


def test_block_without_a_statement_rerenders_and_records_nothing(as_moderator: Client, case: Case) -> None:
    entity = case.entities.get()
    response = as_moderator.post(
        _url(case, f"entities/{entity.public_id}/block/"), {"category": "terrorism"}, headers=HTMX
    )
    assert response.status_code == 200
    assert b"This field is required." in response.content
    assert not AuditEntry.objects.exists()


def test_invalid_block_keeps_the_typed_statement_and_shows_the_error_beside_its_field(
    as_moderator: Client, case: Case
) -> None:
    entity = case.entities.get()
    field_id = f"block-{entity.public_id}-category"
    response = as_moderator.post(
        _url(case, f"entities/{entity.public_id}/block/"),
        {"category": "", "statement": "Posts <b>execution</b> videos."},
        headers=HTMX,
    )
    content = response.content.decode()
    assert response.status_code == 200
    assert "HX-Trigger" not in response
    assert content.lstrip().startswith('<section id="entities-panel"')
    # The statement comes back as typed (escaped), the error sits under the category it is about.
    assert "Posts &lt;b&gt;execution&lt;/b&gt; videos.</textarea>" in content
    select = re.search(r'<select name="category"[^>]*>', content)
    assert select is not None
    assert f'id="{field_id}"' in select.group()
    assert f'aria-describedby="{field_id}_error"' in select.group()
    assert f'<ul class="errorlist" id="{field_id}_error"><li>This field is required.</li></ul>' in content
    assert not AuditEntry.objects.exists()


def test_invalid_block_without_htmx_rerenders_the_whole_page_with_the_form(as_moderator: Client, case: Case) -> None:
    entity = case.entities.get()
    response = as_moderator.post(
        _url(case, f"entities/{entity.public_id}/block/"), {"category": "spam", "statement": "  "}
    )
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith("<!doctype html>")
    assert f'<ul class="errorlist" id="block-{entity.public_id}-statement_error">' in content
    assert not AuditEntry.objects.exists()


def test_a_block_of_a_private_chat_is_refused_beside_its_form(as_moderator: Client, make_case) -> None:
    case = make_case("See t.me/c/123456/78 for the videos.", message_id="<private@example.org>")
    entity = case.entities.get()
    assert entity.kind == "private_chat"
    assert "block-form" not in as_moderator.get(_url(case)).content.decode()
    response = as_moderator.post(
        _url(case, f"entities/{entity.public_id}/block/"), {"category": "spam", "statement": "x"}, headers=HTMX
    )
    # Not offered, yet the refusal comes back where it was asked, instead of vanishing.
    assert "private chats are out of scope" in response.content.decode()
    assert not AuditEntry.objects.exists()


def test_the_page_offers_unblock_to_the_blocker_and_to_leads_only(
    as_moderator: Client, as_lead: Client, other_moderator: User, case: Case
) -> None:
    entity = case.entities.get()
    do_block_entity(entity, category="spam", statement="Spam.", actor=Actor(other_moderator), case=case)
    other = Client()
    other.force_login(other_moderator)
    assert "unblock-form" not in as_moderator.get(_url(case)).content.decode()
    assert "unblock-form" in other.get(_url(case)).content.decode()
    assert "unblock-form" in as_lead.get(_url(case)).content.decode()


def test_block_forbids_an_auditor(as_auditor: Client, case: Case) -> None:
    entity = case.entities.get()
    response = as_auditor.post(
        _url(case, f"entities/{entity.public_id}/block/"), {"category": "spam", "statement": "x"}
    )
    assert response.status_code == 403
    assert not AuditEntry.objects.exists()


def test_block_of_an_entity_of_another_case_is_not_found(as_moderator: Client, make_case, case: Case) -> None:
    other = make_case("t.me/elsewhere_channel", message_id="<elsewhere@example.org>")
    entity = other.entities.get()
    response = as_moderator.post(
        _url(case, f"entities/{entity.public_id}/block/"), {"category": "spam", "statement": "x"}
    )
    assert response.status_code == 404


def test_unblock_by_another_moderator_is_forbidden(as_moderator: Client, other_moderator: User, case: Case) -> None:
    entity = case.entities.get()
    do_block_entity(entity, category="spam", statement="spam", actor=Actor(other_moderator), case=case)
    response = as_moderator.post(_url(case, f"entities/{entity.public_id}/unblock/"), {"statement": "mistake"})
    assert response.status_code == 403
    assert AuditEntry.objects.count() == 1


def test_unblock_by_a_lead_records_one_entry(as_lead: Client, lead: User, other_moderator: User, case: Case) -> None:
    entity = case.entities.get()
    do_block_entity(entity, category="spam", statement="spam", actor=Actor(other_moderator), case=case)
    response = as_lead.post(
        _url(case, f"entities/{entity.public_id}/unblock/"), {"statement": "Appeal granted."}, headers=HTMX
    )
    assert response.content.decode().lstrip().startswith('<section id="entities-panel"')
    # The case keeps its status: only the decisions and the audit trail change elsewhere.
    assert response["HX-Trigger"] == '{"decisions-changed": {}, "audit-changed": {}}'
    entry = AuditEntry.objects.latest("id")
    assert AuditEntry.objects.count() == 2
    assert (entry.action, entry.actor, entry.entity, entry.data["statement"]) == (
        AuditAction.ENTITY_UNBLOCKED,
        lead,
        entity,
        "Appeal granted.",
    )


def test_decline_records_one_entry_and_a_decision(as_moderator: Client, moderator: User, case: Case) -> None:
    response = as_moderator.post(
        _url(case, "decline/"), {"reason": "no_violation", "statement": "Satire."}, headers=HTMX
    )
    assert response.content.decode().lstrip().startswith('<section id="decision-panel"')
    # The panel that posted shows the new decision itself: no "decisions-changed" to reload it again.
    assert response["HX-Trigger"] == '{"case-changed": {}, "audit-changed": {}}'
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.case, entry.data["reason"]) == (
        AuditAction.CASE_DECLINED,
        moderator,
        case,
        "no_violation",
    )
    assert Decision.objects.get().statement == "Satire."


def test_decline_without_htmx_redirects(as_moderator: Client, case: Case) -> None:
    response = as_moderator.post(_url(case, "decline/"), {"reason": "duplicate", "statement": "Dup."})
    assert response["Location"] == _url(case)


def test_note_records_one_entry(as_moderator: Client, moderator: User, case: Case) -> None:
    response = as_moderator.post(_url(case, "notes/"), {"text": f"Checked {SCRIPT}"}, headers=HTMX)
    assert "&lt;script&gt;" in response.content.decode()
    assert response["HX-Trigger"] == '{"audit-changed": {}}'
    note = Note.objects.get()
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.case, entry.data) == (
        AuditAction.CASE_NOTE_ADDED,
        moderator,
        case,
        {"old": None, "new": {"note": note.pk}},
    )


def test_empty_note_records_nothing(as_moderator: Client, case: Case) -> None:
    assert as_moderator.post(_url(case, "notes/"), {"text": "   "}, headers=HTMX).status_code == 200
    assert not AuditEntry.objects.exists()


def test_merge_redirects_to_the_target_and_records_one_entry(as_lead: Client, lead: User, make_case) -> None:
    source = make_case("t.me/first_channel", message_id="<a@example.org>")
    target = make_case("t.me/second_channel", message_id="<b@example.org>")
    response = as_lead.post(_url(source, "merge/"), {"into": target.reference}, headers=HTMX)
    assert response["HX-Redirect"] == _url(target)
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.case, entry.data["new"]["merged_into"]) == (
        AuditAction.CASE_MERGED,
        lead,
        target,
        target.reference,
    )


def test_merge_forbids_a_moderator(as_moderator: Client, make_case) -> None:
    source = make_case("t.me/first_channel", message_id="<a@example.org>")
    target = make_case("t.me/second_channel", message_id="<b@example.org>")
    assert as_moderator.post(_url(source, "merge/"), {"into": target.reference}).status_code == 403
    assert not AuditEntry.objects.exists()


def test_merge_into_an_unknown_case_rerenders_with_200(as_lead: Client, case: Case) -> None:
    response = as_lead.post(_url(case, "merge/"), {"into": "AD-999999"}, headers=HTMX)
    assert response.status_code == 200
    assert b"There is no case AD-999999." in response.content
    assert not AuditEntry.objects.exists()


def test_move_report_records_one_entry(as_moderator: Client, moderator: User, make_case) -> None:
    source = make_case("t.me/first_channel", message_id="<a@example.org>")
    target = make_case("t.me/second_channel", message_id="<b@example.org>")
    report = source.reports.get()
    response = as_moderator.post(
        _url(source, f"reports/{report.public_id}/move/"), {"to": target.reference}, headers=HTMX
    )
    assert response.content.decode().lstrip().startswith('<section id="timeline"')
    # The report's entities are now also in the target case, which the entities panel lists.
    assert response["HX-Trigger"] == '{"case-changed": {}, "entities-changed": {}, "audit-changed": {}}'
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.case, entry.report, entry.data) == (
        AuditAction.REPORT_MOVED,
        moderator,
        target,
        report,
        {"old": source.reference, "new": target.reference},
    )


def test_split_gives_the_entity_its_own_case(as_moderator: Client, moderator: User, two_entity_case: Case) -> None:
    entity = two_entity_case.entities.order_by("url").last()
    response = as_moderator.post(_url(two_entity_case, f"entities/{entity.public_id}/split/"), headers=HTMX)
    new_case = Case.objects.exclude(pk=two_entity_case.pk).get()
    assert new_case.reference in response.content.decode()
    # Reports naming only the split entity left with it: the timeline reloads.
    assert response["HX-Trigger"] == '{"case-changed": {}, "reports-changed": {}, "audit-changed": {}}'
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.case, entry.entity, entry.data["new"]) == (
        AuditAction.ENTITY_SPLIT,
        moderator,
        two_entity_case,
        entity,
        new_case.reference,
    )


# Downloads


def test_attachment_downloads_as_inert_octet_stream(as_moderator: Client, hostile_case: Case) -> None:
    attachment = hostile_case.reports.get().attachments.get(filename="x.html")
    response = as_moderator.get(f"/attachments/{attachment.public_id}/")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_image_thumbnail_is_a_reencoded_jpeg(as_moderator: Client, hostile_case: Case) -> None:
    attachment = hostile_case.reports.get().attachments.get(content_type="image/png")
    response = as_moderator.get(f"/attachments/{attachment.public_id}/thumbnail/")
    assert response["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).format == "JPEG"


def test_an_image_too_large_to_decode_in_a_request_gets_no_thumbnail(
    as_moderator: Client, hostile_case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    attachment = hostile_case.reports.get().attachments.get(content_type="image/png")  # 40 x 30
    monkeypatch.setattr("moderation.views.case.THUMBNAIL_MAX_PIXELS", 40 * 30 - 1)
    assert as_moderator.get(f"/attachments/{attachment.public_id}/thumbnail/").status_code == 404
    # The bytes stay available as a download.
    assert as_moderator.get(f"/attachments/{attachment.public_id}/").status_code == 200
    monkeypatch.setattr("moderation.views.case.THUMBNAIL_MAX_PIXELS", 40 * 30)
    assert as_moderator.get(f"/attachments/{attachment.public_id}/thumbnail/").status_code == 200


def test_thumbnail_of_html_is_not_found(as_moderator: Client, hostile_case: Case) -> None:
    attachment = hostile_case.reports.get().attachments.get(filename="x.html")
    assert as_moderator.get(f"/attachments/{attachment.public_id}/thumbnail/").status_code == 404


def test_attachment_forbids_staff_without_a_role(as_mallory: Client, hostile_case: Case) -> None:
    attachment = hostile_case.reports.get().attachments.first()
    assert as_mallory.get(f"/attachments/{attachment.public_id}/").status_code == 403


def test_case_page_blurs_images_and_escapes_filenames(as_moderator: Client, hostile_case: Case) -> None:
    content = as_moderator.get(_url(hostile_case)).content.decode()
    image = hostile_case.reports.get().attachments.get(content_type="image/png")
    assert 'class="blurred"' in content
    assert escape(image.filename) in content
    assert "<img src=x" not in content


def test_raw_mail_downloads_for_a_lead(as_lead: Client, case: Case) -> None:
    report = case.reports.get()
    response = as_lead.get(_url(case, f"reports/{report.public_id}/raw/"))
    assert response["Content-Disposition"].startswith("attachment;")
    assert b"execution videos" in b"".join(response.streaming_content)


def test_raw_mail_forbids_a_moderator(as_moderator: Client, case: Case) -> None:
    report = case.reports.get()
    assert as_moderator.get(_url(case, f"reports/{report.public_id}/raw/")).status_code == 403


# Replies


def test_reply_composer_shows_without_templates(as_moderator: Client, case: Case) -> None:
    ReplyTemplate.objects.update(active=False)
    assert b"No active reply template yet" in as_moderator.get(_url(case)).content


def test_reply_send_forbids_an_auditor(as_auditor: Client, case: Case) -> None:
    assert as_auditor.post(_url(case, "reply/"), {"reporter": "all"}).status_code == 403


def test_reply_send_rejects_get(as_moderator: Client, case: Case) -> None:
    assert as_moderator.get(_url(case, "reply/")).status_code == 405


def test_reply_preview_fragment_renders_the_template(as_moderator: Client, case: Case) -> None:
    template = ReplyTemplate.objects.filter(active=True).first()
    response = as_moderator.get(
        _url(case, "reply/preview/"), {"template": template.pk, "reporter": "all"}, headers=HTMX
    )
    content = response.content.decode()
    assert content.lstrip().startswith('<section id="reply-composer"')
    assert 'class="preview"' in content


def test_reply_send_queues_one_reply_per_reporter(as_moderator: Client, moderator: User, case: Case) -> None:
    from moderation.models import Reply

    template = ReplyTemplate.objects.filter(active=True).first()
    response = as_moderator.post(_url(case, "reply/"), {"template": template.pk, "reporter": "all"}, headers=HTMX)
    assert response.status_code == 200
    assert Reply.objects.filter(case=case).count() == 1
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.case) == (AuditAction.REPLY_QUEUED, moderator, case)


def test_reply_menu_lists_recent_reporters_but_accepts_any_reporter_of_the_case(
    as_moderator: Client, case: Case, monkeypatch
) -> None:
    from moderation import forms as moderation_forms
    from moderation.models import Reply

    monkeypatch.setattr(moderation_forms, "REPLY_MENU_REPORTERS", 1)
    first = case.reports.order_by("id").first().reporter
    other = Reporter.objects.create(email="stranger@example.net", first_seen=case.created_at, last_seen=case.created_at)
    template = ReplyTemplate.objects.filter(active=True).first()
    refused = as_moderator.post(
        _url(case, "reply/"), {"template": template.pk, "reporter": str(other.pk)}, headers=HTMX
    )
    assert b"Choose a reporter of this case." in refused.content
    assert not Reply.objects.exists()
    accepted = as_moderator.post(
        _url(case, "reply/"), {"template": template.pk, "reporter": str(first.pk)}, headers=HTMX
    )
    assert accepted.status_code == 200
    assert list(Reply.objects.values_list("reporter_id", flat=True)) == [first.pk]
