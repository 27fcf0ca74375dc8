"""Reply templates, rendering as data, queueing per reporter, outbound headers, acknowledgements."""

from __future__ import annotations

import base64
import email

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from moderation.actions import Actor, do_block_entity
from moderation.models import AuditAction, AuditEntry, Reply, ReplyTemplate
from moderation.replies.acknowledge import maybe_acknowledge
from moderation.replies.outbound import do_queue_replies
from moderation.replies.templates import (
    check_reply_template,
    do_save_reply_template,
    render_template_preview,
    render_text,
)
from moderation.tasks import retry_replies, send_reply
from reports.models import OutboundMessageId, Report, Reporter
from reports.signals import report_created
from reports.tokens import find_tokens, reply_to_address
from tests.moderation.replies.fixtures import make_moderator, only_entry, report_from

LANGUAGES = {"en", "fr", "de", "ar", "ru", "es"}
SECRET_TEXT = "my neighbour Bob Secretsson at 12 Hidden Street"


@pytest.fixture
def first(ingest):
    return report_from(
        ingest,
        f"Block t.me/first_channel. {SECRET_TEXT}",
        sender="Amira <amira@example.org>",
        message_id="<a1@example.org>",
    )


@pytest.fixture
def case(first):
    return first.case


@pytest.fixture
def second(ingest, case):
    report = report_from(
        ingest, "t.me/first_channel diffuse des vidéos", sender="Jean <jean@example.fr>", message_id="<j1@example.fr>"
    )
    Reporter.objects.filter(pk=report.reporter_id).update(language="fr")
    assert report.case == case
    return Report.objects.select_related("reporter").get(pk=report.pk)


@pytest.fixture
def blocked(case, second, alice):
    """Both reporters' case after a block (the block's own audit entry is asserted in test_actions)."""
    actor = Actor(user=make_moderator(alice))
    do_block_entity(case.entities.get(), category="terrorism", statement="Execution videos.", case=case, actor=actor)
    return case


@pytest.fixture
def template(db):
    return ReplyTemplate.objects.get(name="blocked", language="en")


@pytest.fixture
def actor(alice):
    return Actor(user=make_moderator(alice), ip="198.51.100.4")


def _reply_entries():
    return AuditEntry.objects.filter(action=AuditAction.REPLY_QUEUED)


# --- templates ---


def test_default_templates_exist_in_six_languages_and_validate(db):
    for name in ("acknowledgement", "blocked", "declined"):
        rows = ReplyTemplate.objects.filter(name=name)
        assert {t.language for t in rows} >= LANGUAGES
        for row in rows:
            row.full_clean()
            assert row.purpose == name


def test_unknown_placeholder_is_an_error_naming_it(db):
    with pytest.raises(ValidationError) as raised:
        check_reply_template("Hi {case_reference}", "Dear {reporter_nam}, {secret}")
    assert "{reporter_nam}" in str(raised.value) and "{secret}" in str(raised.value)
    assert "subject" not in raised.value.message_dict


def test_model_clean_validates_placeholders(db):
    row = ReplyTemplate(name="x", language="en", subject="{oops}", body="ok", updated_at=timezone.now())
    with pytest.raises(ValidationError, match="oops"):
        row.full_clean()


@pytest.mark.parametrize("body", ["{{ case_reference }}", "{% load static %}", "{# note #}"])
def test_django_template_syntax_is_refused(db, body):
    with pytest.raises(ValidationError, match="Django template syntax"):
        check_reply_template("s", body)


def test_acknowledgements_may_not_echo_sender_controlled_values(db):
    with pytest.raises(ValidationError, match="reporter_name"):
        check_reply_template("s", "Hi {reporter_name}", purpose=ReplyTemplate.Purpose.ACKNOWLEDGEMENT)
    check_reply_template("s", "Ref {case_reference}", purpose=ReplyTemplate.Purpose.ACKNOWLEDGEMENT)


def test_rendering_inserts_values_as_data_in_one_pass():
    values = {"reporter_name": "{case_reference} {% debug %} {{ x }}", "case_reference": "AD-000001"}
    assert render_text("{reporter_name}|{case_reference}", values) == "{case_reference} {% debug %} {{ x }}|AD-000001"


def test_preview_substitutes_and_puts_the_signed_token_in_the_subject(blocked, first, template):
    Reporter.objects.filter(pk=first.reporter_id).update(display_name="{case_reference} {% csrf_token %}")
    reporter = Reporter.objects.get(pk=first.reporter_id)
    subject, body = render_template_preview(template, blocked, reporter)
    assert find_tokens(subject)[0] == [blocked.reference]
    assert subject.startswith(f"[{blocked.reference}-") and subject.endswith(
        f"Your report {blocked.reference}: action taken"
    )
    assert "Hello {case_reference} {% csrf_token %}," in body
    assert "- https://t.me/first_channel" in body
    assert "Decision: blocked" in body and "Policy: terrorism / violent extremism" in body
    assert SECRET_TEXT not in body


def test_preview_uses_the_template_in_the_reporters_language(blocked, second, template):
    subject, body = render_template_preview(template, blocked, second.reporter)
    assert "Votre signalement" in subject and body.startswith("Bonjour Jean,")


def test_save_reply_template_records_one_audit_entry(db, actor, alice):
    row = ReplyTemplate(name="info", language="en", subject="About {case_reference}", body="Hello")
    assert do_save_reply_template(row, actor=actor)
    entry = only_entry()
    assert (entry.action, entry.actor, entry.ip) == (AuditAction.TEMPLATE_SAVED, alice, "198.51.100.4")
    assert entry.data["old"] is None and entry.data["new"]["subject"] == "About {case_reference}"
    row.body = "Hello again"
    assert do_save_reply_template(row, actor=actor)
    assert AuditEntry.objects.order_by("-id").first().data == {
        "old": {"body": "Hello"},
        "new": {"body": "Hello again"},
        "template": row.pk,
    }


def test_save_unchanged_or_invalid_template_records_nothing(db, actor):
    row = ReplyTemplate.objects.get(name="blocked", language="de")
    assert not do_save_reply_template(row, actor=actor)
    row.body = "{nope}"
    with pytest.raises(ValidationError):
        do_save_reply_template(row, actor=actor)
    assert not AuditEntry.objects.exists()


# --- queueing and sending ---


def test_queue_replies_answers_each_reporter_in_their_thread_and_language(
    blocked, first, second, template, actor, alice, django_capture_on_commit_callbacks
):
    before = set(AuditEntry.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        replies = do_queue_replies(blocked, template=template, reporters=[first.reporter, second.reporter], actor=actor)
    assert [r.template.language for r in replies] == ["en", "fr"]
    entry = _reply_entries().exclude(pk__in=before).get()
    assert (entry.actor, entry.case, entry.ip) == (alice, blocked, "198.51.100.4")
    assert entry.data == {
        "old": None,
        "new": {
            "template": "blocked",
            "replies": [
                {"reply": str(replies[0].public_id), "reporter": first.reporter_id, "language": "en"},
                {"reply": str(replies[1].public_id), "reporter": second.reporter_id, "language": "fr"},
            ],
        },
        "skipped": {},
    }
    assert {m.to[0] for m in mail.outbox} == {"amira@example.org", "jean@example.fr"}
    for reply, report in zip(replies, [first, second], strict=True):
        reply.refresh_from_db()
        assert (reply.state, reply.attempts, reply.automatic) == (Reply.State.SENT, 1, False)
        assert OutboundMessageId.objects.filter(
            message_id=reply.message_id, case=blocked, reporter=report.reporter
        ).exists()
        sent = next(m for m in mail.outbox if m.to == [report.reporter.email])
        parsed = email.message_from_bytes(sent.message().as_bytes())
        assert parsed["Message-ID"] == f"<{reply.message_id}>"
        assert reply.message_id.endswith("@abusedesk.localhost")
        assert parsed["In-Reply-To"] == f"<{report.message_id}>"
        assert parsed["References"] == f"<{report.message_id}>"
        assert parsed["Reply-To"] == reply_to_address(blocked.reference)
        assert parsed["X-Loop"] == "abuse@abusedesk.localhost"
        assert parsed["Auto-Submitted"] is None
        assert parsed["To"] == report.reporter.email and parsed["Cc"] is None
        assert "abuse@abusedesk.localhost" in parsed["From"]
        assert SECRET_TEXT not in sent.body and report.text not in sent.body


def test_queue_replies_skips_muted_unknown_and_foreign_reporters(blocked, first, second, template, actor, ingest):
    Reporter.objects.filter(pk=second.reporter_id).update(muted=True)
    unknown = Reporter.objects.create(
        email="unknown-sender@invalid", first_seen=timezone.now(), last_seen=timezone.now()
    )
    stranger = report_from(ingest, "t.me/other_channel", sender="s@example.net", message_id="<s@example.net>").reporter
    muted = Reporter.objects.get(pk=second.reporter_id)
    replies = do_queue_replies(
        blocked, template=template, reporters=[first.reporter, muted, unknown, stranger], actor=actor
    )
    assert [r.reporter for r in replies] == [first.reporter]
    assert _reply_entries().get().data["skipped"] == {
        str(muted.pk): "muted",
        str(unknown.pk): "unknown sender",
        str(stranger.pk): "not a reporter on this case",
    }


def test_queue_replies_to_nobody_answerable_records_nothing(blocked, second, template, actor):
    Reporter.objects.filter(pk=second.reporter_id).update(muted=True)
    count = AuditEntry.objects.count()
    assert (
        do_queue_replies(
            blocked, template=template, reporters=[Reporter.objects.get(pk=second.reporter_id)], actor=actor
        )
        == []
    )
    assert AuditEntry.objects.count() == count
    assert not Reply.objects.exists()


def test_queue_replies_refuses_an_invalid_stored_template(blocked, first, actor):
    bad = ReplyTemplate.objects.create(name="bad", language="en", subject="x", body="{nope}", updated_at=timezone.now())
    with pytest.raises(ValidationError):
        do_queue_replies(blocked, template=bad, reporters=[first.reporter], actor=actor)
    assert not Reply.objects.exists()


def test_our_reply_coming_back_is_dropped_as_a_loop(
    blocked, first, template, actor, ingest, django_capture_on_commit_callbacks, caplog
):
    with django_capture_on_commit_callbacks(execute=True):
        do_queue_replies(blocked, template=template, reporters=[first.reporter], actor=actor)
    message = mail.outbox[0].message()
    message.replace_header("From", "Forwarder <someone@example.com>")
    back = Report.objects.get(inbound=ingest(message.as_bytes()))
    assert (back.kind, back.automatic_reason, back.case) == (Report.Kind.AUTOMATIC, "loop", None)
    assert [r.getMessage() for r in caplog.records if r.name == "reports.threader"] == [
        f"mail loop: our own mail came back (Message-ID {back.message_id})"
    ]


def test_send_failure_is_retried_then_gives_up(blocked, first, template, actor, settings, monkeypatch):
    settings.ABUSEDESK_REPLY_MAX_ATTEMPTS = 2
    reply = do_queue_replies(blocked, template=template, reporters=[first.reporter], actor=actor)[0]

    def refuse(self, *args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    assert send_reply(reply.pk) == Reply.State.QUEUED
    reply.refresh_from_db()
    assert (reply.state, reply.attempts, reply.error) == (Reply.State.QUEUED, 1, "ConnectionRefusedError: smtp down")
    Reply.objects.filter(pk=reply.pk).update(created_at=timezone.now() - timezone.timedelta(hours=1))
    assert retry_replies() == 1  # sync under pytest: the retry runs now and fails again
    reply.refresh_from_db()
    assert (reply.state, reply.attempts) == (Reply.State.FAILED, 2)
    assert send_reply(reply.pk) == "skipped"
    assert not mail.outbox


def test_send_reply_is_idempotent(blocked, first, template, actor):
    reply = do_queue_replies(blocked, template=template, reporters=[first.reporter], actor=actor)[0]
    assert send_reply(reply.pk) == Reply.State.SENT
    assert send_reply(reply.pk) == "skipped"
    assert len(mail.outbox) == 1


def test_send_reply_stores_the_esp_message_id(blocked, first, template, actor, settings):
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.test.EmailBackend"}}
    reply = do_queue_replies(blocked, template=template, reporters=[first.reporter], actor=actor)[0]
    send_reply(reply.pk)
    reply.refresh_from_db()
    assert (reply.state, reply.esp_message_id) == (Reply.State.SENT, "0")
    assert reply.sent_at is not None


# --- acknowledgements ---


@pytest.fixture
def ack_on(settings):
    settings.ABUSEDESK_ACKNOWLEDGE = True
    settings.ABUSEDESK_ACK_PERIOD_HOURS = 24


def test_acknowledgement_is_off_by_default(first):
    assert maybe_acknowledge(first) is None
    assert not Reply.objects.exists()


def test_acknowledgement_is_sent_in_the_reporters_language(ack_on, second, django_capture_on_commit_callbacks):
    Report.objects.filter(pk=second.pk).update(language="fr")
    with django_capture_on_commit_callbacks(execute=True):
        reply = maybe_acknowledge(second)
    assert reply is not None and reply.automatic and reply.template.language == "fr"
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.actor_label, entry.report) == (
        AuditAction.REPLY_QUEUED,
        None,
        "system",
        second,
    )
    assert entry.data["automatic"] is True
    parsed = email.message_from_bytes(mail.outbox[0].message().as_bytes())
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["In-Reply-To"] == "<j1@example.fr>"
    assert second.case.reference in parsed["Subject"]
    assert "vidéos" not in mail.outbox[0].body and "Jean" not in mail.outbox[0].body


def test_acknowledgement_at_most_once_per_period(ack_on, ingest, first):
    assert maybe_acknowledge(first) is not None
    again = report_from(ingest, "t.me/another_channel too", sender="amira@example.org", message_id="<a2@example.org>")
    assert maybe_acknowledge(again) is None
    Reply.objects.update(created_at=timezone.now() - timezone.timedelta(hours=25))
    assert maybe_acknowledge(again) is not None
    assert Reply.objects.count() == 2


def test_no_acknowledgement_for_automatic_mail_muted_or_own_address(ack_on, ingest, first):
    auto = report_from(
        ingest,
        "I am on holiday",
        sender="x@example.com",
        message_id="<x@example.com>",
        headers={"Auto-Submitted": "auto-replied"},
    )
    assert auto.kind == Report.Kind.AUTOMATIC
    own = report_from(
        ingest, "t.me/own_channel", sender="abuse+test@abusedesk.localhost", message_id="<o@abusedesk.localhost>"
    )
    Reporter.objects.filter(pk=first.reporter_id).update(muted=True)
    assert [maybe_acknowledge(r) for r in (auto, own, first)] == [None, None, None]
    assert not Reply.objects.exists() and not AuditEntry.objects.exists()


def test_no_acknowledgement_for_a_quarantined_report_in_a_healthy_case(ack_on, first):
    Report.objects.filter(pk=first.pk).update(parse_error="parser limits hit: max_parts")
    assert first.case.parse_error == ""
    assert maybe_acknowledge(first) is None
    assert not Reply.objects.exists()


def test_report_created_signal_triggers_the_acknowledgement(ack_on, first):
    report_created.send(sender=Report, report=first)
    assert Reply.objects.get().in_reply_to_report == first


def test_a_reporter_name_with_line_separators_or_bidi_controls_does_not_break_replies(blocked, first, template, actor):
    """Python's email package folds a header at U+2028 and then refuses it: every reply whose
    subject named this reporter failed. Names stored before intake cleaned them are still there."""
    Reporter.objects.filter(pk=first.reporter_id).update(display_name="Amira\u2028Bcc: x\u2029\u202eyb")
    ReplyTemplate.objects.filter(pk=template.pk).update(subject="Your report, {reporter_name}")
    template.refresh_from_db()
    reporter = Reporter.objects.get(pk=first.reporter_id)
    reply = do_queue_replies(blocked, template=template, reporters=[reporter], actor=actor)[0]
    assert send_reply(reply.pk) == Reply.State.SENT
    assert mail.outbox[0].subject.endswith("] Your report, Amira Bcc: x yb")


def test_a_template_subject_with_a_line_separator_is_refused(db):
    with pytest.raises(ValidationError, match="one line"):
        check_reply_template("Case {case_reference}\u2028Bcc: x", "body")


def test_a_reporter_who_writes_a_line_separator_in_their_name_still_gets_replies(ingest, template, actor):
    encoded = base64.b64encode("Amira\u2028Bcc: x".encode()).decode()
    report = report_from(
        ingest,
        "Still there: t.me/first_channel",
        sender=f"=?utf-8?b?{encoded}?= <amira2@example.org>",
        message_id="<sep@example.org>",
    )
    assert report.reporter.display_name == "Amira Bcc: x"
    ReplyTemplate.objects.filter(pk=template.pk).update(subject="Your report, {reporter_name}")
    template.refresh_from_db()
    reply = do_queue_replies(report.case, template=template, reporters=[report.reporter], actor=actor)[0]
    assert send_reply(reply.pk) == Reply.State.SENT
    assert mail.outbox[0].subject.endswith("] Your report, Amira Bcc: x")
