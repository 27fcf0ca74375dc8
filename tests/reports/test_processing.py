"""Processing: failures stay visible, reprocessing recovers, limits hold."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from reports import actions
from reports.actions import do_process_inbound, do_store_inbound
from reports.mime import ParsedMail
from reports.models import InboundMessage, Report
from reports.rawstore import read_blob
from reports.tasks import process_inbound, sweep_inbound
from reports.timebox import ProcessingTimeout
from tests.mail import build_mail


@pytest.mark.django_db
def test_a_failing_message_is_marked_failed_with_its_error_then_reprocessed(monkeypatch, capsys):
    stored = do_store_inbound(build_mail(), source="cli", enqueue=False).message

    def explode(*args, **kwargs):
        raise ValueError("parser exploded")

    monkeypatch.setattr("reports.actions.parse_message", explode)
    failed = do_process_inbound(stored.pk)
    assert failed.state == InboundMessage.State.FAILED
    assert failed.error == "ValueError: parser exploded"
    assert failed.attempts == 1
    assert not Report.objects.exists()

    monkeypatch.undo()
    call_command("reprocess", "--failed")
    message = InboundMessage.objects.get(pk=stored.pk)
    assert message.state == InboundMessage.State.PROCESSED
    assert message.error == ""
    assert Report.objects.count() == 1
    assert f"#{stored.pk}: processed" in capsys.readouterr().out


@pytest.mark.django_db
def test_one_bad_mail_does_not_stop_the_others(monkeypatch):
    good = do_store_inbound(build_mail("t.me/good_channel", message_id="<g@example.org>"), source="cli", enqueue=False)
    bad = do_store_inbound(build_mail("t.me/bad_channel", message_id="<b@example.org>"), source="cli", enqueue=False)
    real = __import__("reports.actions", fromlist=["parse_message"]).parse_message

    def picky(raw, **kwargs):
        if b"bad_channel" in raw:
            raise RuntimeError("boom")
        return real(raw, **kwargs)

    monkeypatch.setattr("reports.actions.parse_message", picky)
    assert process_inbound(bad.message.pk) == InboundMessage.State.FAILED
    assert process_inbound(good.message.pk) == InboundMessage.State.PROCESSED


@pytest.mark.django_db
def test_processing_twice_is_harmless():
    stored = do_store_inbound(build_mail(), source="cli", enqueue=False).message
    do_process_inbound(stored.pk)
    do_process_inbound(stored.pk)
    assert Report.objects.count() == 1
    assert Report.objects.get().case.report_count == 1


@pytest.mark.django_db
def test_a_message_over_the_size_limit_is_quarantined_from_its_header_block(settings):
    settings.ABUSEDESK_MAX_RAW_BYTES = 300
    raw = build_mail("t.me/body_channel " + "x" * 500, subject="Huge video of t.me/subject_channel")
    stored = do_store_inbound(raw, source="cli", enqueue=False).message
    message = do_process_inbound(stored.pk)
    assert message.state == InboundMessage.State.PROCESSED
    report = message.report
    assert report.parse_error == "parser limits hit: max_raw_bytes"
    assert report.case.parse_error == report.parse_error
    assert (report.subject, report.text) == ("Huge video of t.me/subject_channel", "")
    assert report.reporter.email == "reporter@example.org"
    # Only the header block was read: the subject's entity, not the body's.
    assert [e.url for e in report.case.entities.all()] == ["https://t.me/subject_channel"]
    assert any(d.startswith("max_raw_bytes: ") for d in report.defects)
    assert read_blob(message.raw.name) == raw


@pytest.mark.django_db
def test_a_quarantined_message_keeps_a_sender_and_subject_written_after_50000_received_lines(settings):
    settings.ABUSEDESK_MAX_RAW_BYTES = 1000
    received = "".join(f"Received: from relay{i}.example.net by mx.example.org\n" for i in range(50_000))
    raw = (received + "From: Late <late@example.org>\nSubject: Video of t.me/late_channel\n\nbody\n").encode()
    message = do_process_inbound(do_store_inbound(raw, source="cli", enqueue=False).message.pk)
    report = message.report
    assert report.parse_error == "parser limits hit: max_header_bytes, max_header_fields, max_raw_bytes"
    assert (report.reporter.email, report.subject) == ("late@example.org", "Video of t.me/late_channel")
    assert [e.url for e in report.case.entities.all()] == ["https://t.me/late_channel"]


@pytest.mark.django_db
def test_a_message_over_the_time_budget_is_quarantined_not_retried(monkeypatch):
    real = actions.parse_message

    def slow_unless_headers_only(raw: bytes, **kwargs: object) -> ParsedMail:
        if b"t.me/body_channel" in raw:
            raise ProcessingTimeout("processing took longer than 10 s")
        return real(raw, **kwargs)

    monkeypatch.setattr(actions, "parse_message", slow_unless_headers_only)
    stored = do_store_inbound(build_mail("t.me/body_channel"), source="cli", enqueue=False).message
    message = do_process_inbound(stored.pk)
    assert (message.state, message.error) == (InboundMessage.State.PROCESSED, "")
    assert message.report.parse_error == "parser limits hit: time_budget"
    assert message.report.case.parse_error == "parser limits hit: time_budget"


@pytest.mark.django_db
def test_reprocess_rejects_unknown_ids():
    with pytest.raises(CommandError, match="no inbound message with id 999"):
        call_command("reprocess", "999")


@pytest.mark.django_db
def test_sweeper_retries_failed_messages_with_back_off(monkeypatch):
    stored = do_store_inbound(build_mail(), source="cli", enqueue=False).message
    InboundMessage.objects.filter(pk=stored.pk).update(state=InboundMessage.State.FAILED, attempts=1, processed_at=None)
    queued: list[int] = []
    monkeypatch.setattr("reports.tasks.enqueue_processing", queued.append)
    assert sweep_inbound() == 1
    assert queued == [stored.pk]
    assert InboundMessage.objects.get(pk=stored.pk).state == InboundMessage.State.PENDING


@pytest.mark.django_db
def test_sweeper_gives_up_after_the_attempt_limit(monkeypatch, settings):
    stored = do_store_inbound(build_mail(), source="cli", enqueue=False).message
    InboundMessage.objects.filter(pk=stored.pk).update(
        state=InboundMessage.State.FAILED, attempts=settings.ABUSEDESK_PROCESS_MAX_ATTEMPTS
    )
    monkeypatch.setattr("reports.tasks.enqueue_processing", lambda pk: None)
    assert sweep_inbound() == 0


@pytest.mark.django_db
def test_store_queues_processing_on_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        stored = do_store_inbound(build_mail(), source="cli").message
    # Under pytest the q-cluster runs tasks synchronously (settings.Q_CLUSTER["sync"]).
    assert InboundMessage.objects.get(pk=stored.pk).state == InboundMessage.State.PROCESSED


@pytest.mark.django_db
def test_an_arf_report_names_its_reported_uri_as_an_entity(ingest):
    """RFC 5965: the feedback report says what it reports in Reported-URI, not in any text."""
    raw = (
        b"From: <feedback@isp.example>\n"
        b"Subject: FW: abuse report\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nAn abuse report.\n"
        b"--B\nContent-Type: message/feedback-report\n\n"
        b"Feedback-Type: abuse\nVersion: 1\n"
        b"Reported-URI: https://t.me/arf_channel\n"
        b"Reported-Uri: https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Ft.me%2Fsafe_arf_channel\n"
        b"Reported-Uri: mailto:user@example.com\n"
        b"--B--\n"
    )
    report = ingest(raw).report
    assert sorted(report.case.entities.values_list("url", flat=True)) == [
        "https://t.me/arf_channel",
        "https://t.me/safe_arf_channel",
    ]
