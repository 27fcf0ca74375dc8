"""anymail tracking webhooks: delivered and bounced events update the Reply they are about."""

from __future__ import annotations

from typing import Any

from anymail.signals import AnymailTrackingEvent, EventType

from moderation.models import Reply
from moderation.replies import do_record_reply_delivery

_STATES = {
    EventType.DELIVERED: Reply.State.DELIVERED,
    EventType.BOUNCED: Reply.State.BOUNCED,
    EventType.REJECTED: Reply.State.BOUNCED,
    EventType.FAILED: Reply.State.BOUNCED,
}


def handle_tracking(sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    """Connected to `anymail.signals.tracking` in ModerationConfig.ready(); other events are ignored."""
    state = _STATES.get(event.event_type)
    if state is None or not event.message_id:
        return
    detail = " ".join(str(part) for part in (event.reject_reason, event.description, event.mta_response) if part)
    do_record_reply_delivery(str(event.message_id), state=state, detail=f"{esp_name}: {detail}".strip(": "))
