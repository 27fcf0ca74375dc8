from __future__ import annotations

import csv
import io

from django.contrib.auth.models import User
from django.test import Client

from moderation.actions import Actor, do_add_note, do_change_case_status
from moderation.views.audit import csv_cell
from reports.models import Case


def test_audit_page_lists_entries_for_an_auditor(as_auditor: Client, case: Case, moderator: User) -> None:
    do_change_case_status(case, status=Case.Status.OPEN, actor=Actor(moderator))
    response = as_auditor.get("/audit/")
    assert response.status_code == 200
    assert b"case status changed" in response.content


def test_audit_page_filters_by_action_and_case(as_lead: Client, make_case, moderator: User) -> None:
    first = make_case()
    second = make_case("t.me/other_channel is spam", message_id="<second@example.org>")
    do_change_case_status(first, status=Case.Status.OPEN, actor=Actor(moderator))
    do_add_note(second, text="looked at it", actor=Actor(moderator))
    response = as_lead.get("/audit/", {"action": "case.note_added", "case": second.reference})
    content = response.content.decode()
    assert second.reference in content
    assert first.reference not in content


def test_audit_page_fragment_for_htmx(as_auditor: Client, db: None) -> None:
    response = as_auditor.get("/audit/", headers={"HX-Request": "true"})
    assert response.content.decode().lstrip().startswith('<section id="audit-results"')


def test_audit_page_forbids_a_moderator(as_moderator: Client) -> None:
    assert as_moderator.get("/audit/").status_code == 403


def test_audit_page_forbids_staff_without_a_role(as_mallory: Client) -> None:
    assert as_mallory.get("/audit/").status_code == 403


def test_audit_page_redirects_anonymous_to_login(client: Client, db: None) -> None:
    assert client.get("/audit/")["Location"].startswith("/login/")


def test_audit_page_rejects_post(as_auditor: Client) -> None:
    assert as_auditor.post("/audit/").status_code == 405


def test_audit_export_neutralises_spreadsheet_formulas(as_auditor: Client, case: Case, moderator: User) -> None:
    do_add_note(case, text='=HYPERLINK("http://evil")', actor=Actor(moderator, label="=cmd|' /C calc'!A0"))
    response = as_auditor.get("/audit/export.csv")
    assert response["Content-Disposition"] == 'attachment; filename="abusedesk-audit.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][2] == "'=cmd|' /C calc'!A0"
    assert rows[1][4] == case.reference


def test_csv_cell_prefixes_every_formula_start() -> None:
    assert [csv_cell(v) for v in ("=1", "+1", "-1", "@x", "ok", None)] == ["'=1", "'+1", "'-1", "'@x", "ok", ""]


def test_audit_export_forbids_a_moderator(as_moderator: Client) -> None:
    assert as_moderator.get("/audit/export.csv").status_code == 403
