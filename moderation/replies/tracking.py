"""anymail tracking webhooks: delivered and bounced events update the Reply they are about."""

from __future__ import annotations

from typing import Any

from anymail.signals import AnymailTrackingEvent, EventType
from django.db import transaction

from moderation.models import Reply

_STATES = {
    EventType.DELIVERED: Reply.State.DELIVERED,
    EventType.BOUNCED: Reply.State.BOUNCED,
    EventType.REJECTED: Reply.State.BOUNCED,
    EventType.FAILED: Reply.State.BOUNCED,
}


_FINAL = {Reply.State.BOUNCED}
_ORDER = {
    Reply.State.QUEUED: 0,
    Reply.State.FAILED: 0,
    Reply.State.SENT: 1,
    Reply.State.DELIVERED: 2,
    Reply.State.BOUNCED: 3,
}


@transaction.atomic
def do_record_reply_delivery(esp_message_id: str, *, state: Reply.State, detail: str = "") -> int:
    """Apply an ESP delivered/bounced event to the replies with that ESP id; returns how many changed.

    A bounce may follow a delivery (asynchronous bounces), but a delivery never undoes a bounce.
    """
    if state not in (Reply.State.DELIVERED, Reply.State.BOUNCED) or not esp_message_id:
        raise ValueError(f"not a delivery state: {state}")
    changed = 0
    for reply in Reply.objects.select_for_update().filter(esp_message_id=esp_message_id[:255]):
        if reply.state in _FINAL or _ORDER[Reply.State(reply.state)] >= _ORDER[state]:
            continue
        reply.state = state
        fields = ["state"]
        if state == Reply.State.BOUNCED:
            reply.error = detail[:2000]
            fields.append("error")
        reply.save(update_fields=fields)
        changed += 1
    return changed


def handle_tracking(sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    """Connected to `anymail.signals.tracking` in ModerationConfig.ready(); other events are ignored."""
    state = _STATES.get(event.event_type)
    if state is None or not event.message_id:
        return
    detail = " ".join(str(part) for part in (event.reject_reason, event.description, event.mta_response) if part)
    do_record_reply_delivery(str(event.message_id), state=state, detail=f"{esp_name}: {detail}".strip(": "))
