"""Django admin: every model listed, evidence read-only, raw mail downloadable by staff."""

from __future__ import annotations

import pytest
from django.urls import reverse

from reports.models import InboundMessage, Report
from tests.mail import build_mail

MODELS = ["inboundmessage", "report", "case", "entity", "reporter", "attachment"]


@pytest.fixture
def message(ingest):
    return ingest(build_mail("<script>alert(1)</script> t.me/admin_channel", subject='"><img src=x onerror=alert(1)>'))


@pytest.mark.parametrize("model", MODELS)
def test_every_intake_model_has_a_changelist_and_change_page(admin_client, message, model):
    assert admin_client.get(reverse(f"admin:reports_{model}_changelist")).status_code == 200


@pytest.mark.parametrize("model", ["inboundmessage", "report", "case", "entity"])
def test_evidence_cannot_be_added_or_deleted_in_admin(admin_client, message, model):
    assert admin_client.get(reverse(f"admin:reports_{model}_add")).status_code == 403


def test_raw_message_downloads_as_an_attachment(admin_client, message):
    response = admin_client.get(reverse("admin:reports_inboundmessage_raw", args=[message.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == f'attachment; filename="inbound-{message.pk}.eml"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"<script>alert(1)</script>" in response.content


def test_raw_message_download_needs_staff(client, message):
    response = client.get(reverse("admin:reports_inboundmessage_raw", args=[message.pk]))
    assert response.status_code == 302


def test_case_page_shows_its_reports_and_entities_escaped(admin_client, message):
    case = message.report.case
    response = admin_client.get(reverse("admin:reports_case_change", args=[case.pk]))
    assert response.status_code == 200
    assert b"https://t.me/admin_channel" in response.content
    assert b'"><img src=x' not in response.content


def test_reprocess_admin_action_never_threads_a_message_twice(admin_client, message):
    InboundMessage.objects.filter(pk=message.pk).update(state=InboundMessage.State.FAILED, error="boom")
    response = admin_client.post(
        reverse("admin:reports_inboundmessage_changelist"),
        {"action": "reprocess", "_selected_action": [message.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"Reprocessed 1 message(s); 0 still failed." in response.content
    assert InboundMessage.objects.get(pk=message.pk).state == InboundMessage.State.PROCESSED
    assert Report.objects.get(inbound=message).case.report_count == 1


@pytest.mark.parametrize("model", ["auditentry", "decision", "reply", "note", "replytemplate"])
def test_every_moderation_model_has_a_changelist(admin_client, db, model):
    assert admin_client.get(reverse(f"admin:moderation_{model}_changelist")).status_code == 200


def test_reprocess_admin_action_processes_a_message_that_failed(admin_client, db, monkeypatch):
    from reports.actions import do_process_inbound, do_store_inbound

    stored = do_store_inbound(build_mail(), source="cli", enqueue=False).message
    monkeypatch.setattr("reports.actions.parse_message", lambda raw, **kw: 1 / 0)
    assert do_process_inbound(stored.pk).state == InboundMessage.State.FAILED
    monkeypatch.undo()
    admin_client.post(
        reverse("admin:reports_inboundmessage_changelist"), {"action": "reprocess", "_selected_action": [stored.pk]}
    )
    assert InboundMessage.objects.get(pk=stored.pk).report.case is not None
