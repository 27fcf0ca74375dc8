"""anymail tracking events move a sent Reply to delivered or bounced, found by its ESP message id."""

from __future__ import annotations

import pytest
from anymail.signals import AnymailTrackingEvent, EventType, tracking
from django.utils import timezone

from moderation.models import AuditEntry, Reply
from moderation.replies.tracking import do_record_reply_delivery
from tests.moderation.replies.fixtures import report_from


@pytest.fixture
def reply(ingest):
    report = report_from(ingest)
    return Reply.objects.create(
        case=report.case,
        reporter=report.reporter,
        in_reply_to_report=report,
        subject="s",
        body="b",
        message_id="r1@abusedesk.localhost",
        state=Reply.State.SENT,
        esp_message_id="esp-1",
        created_at=timezone.now(),
        sent_at=timezone.now(),
        attempts=1,
    )


def _event(event_type: str, message_id: str = "esp-1", **kwargs: object) -> None:
    event = AnymailTrackingEvent(event_type=event_type, message_id=message_id, **kwargs)
    tracking.send(sender=object, event=event, esp_name="Postmark")


def _state(reply: Reply) -> str:
    reply.refresh_from_db()
    return reply.state


def test_delivered_event_marks_the_reply_delivered(reply):
    _event(EventType.DELIVERED)
    assert _state(reply) == Reply.State.DELIVERED
    assert not AuditEntry.objects.exists()


def test_bounced_event_marks_the_reply_bounced_with_the_reason(reply):
    _event(EventType.BOUNCED, reject_reason="bounced", mta_response="550 5.1.1 no such user")
    assert _state(reply) == Reply.State.BOUNCED
    assert reply.error == "Postmark: bounced 550 5.1.1 no such user"


@pytest.mark.parametrize("event_type", [EventType.REJECTED, EventType.FAILED])
def test_rejected_and_failed_events_count_as_bounces(reply, event_type):
    _event(event_type)
    assert _state(reply) == Reply.State.BOUNCED


def test_a_late_bounce_overrides_delivered_but_delivered_never_undoes_a_bounce(reply):
    _event(EventType.DELIVERED)
    _event(EventType.BOUNCED)
    assert _state(reply) == Reply.State.BOUNCED
    _event(EventType.DELIVERED)
    assert _state(reply) == Reply.State.BOUNCED


@pytest.mark.parametrize("event_type", [EventType.OPENED, EventType.CLICKED, EventType.DEFERRED, EventType.QUEUED])
def test_other_events_change_nothing(reply, event_type):
    _event(event_type)
    assert _state(reply) == Reply.State.SENT


def test_events_for_unknown_or_missing_message_ids_are_ignored(reply):
    _event(EventType.BOUNCED, message_id="someone-elses-mail")
    _event(EventType.BOUNCED, message_id="")
    assert _state(reply) == Reply.State.SENT


def test_repeated_events_are_idempotent(reply):
    assert do_record_reply_delivery("esp-1", state=Reply.State.DELIVERED) == 1
    assert do_record_reply_delivery("esp-1", state=Reply.State.DELIVERED) == 0


def test_record_reply_delivery_refuses_non_delivery_states(reply):
    with pytest.raises(ValueError):
        do_record_reply_delivery("esp-1", state=Reply.State.SENT)
