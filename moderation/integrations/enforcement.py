"""Enforcement webhooks: each block and unblock, POSTed as a signed JSON event to the platform.

Order. An endpoint receives its events strictly in sequence (BlocklistChange id) order: only its
oldest pending delivery, the head, is ever sent, so change N+1 waits until N is delivered or given
up. A worker claims the head in a short transaction that locks the endpoint row and leases the
delivery (its next_attempt_at moves LEASE ahead); the HTTP request then runs outside any
transaction, so a slow receiver never holds a database lock (on SQLite that would stop every
writer of the desk). Two workers therefore never send to one endpoint at once, and a worker that
dies mid-request delays the event only until its lease runs out.

Completeness. An endpoint is owed every subscribed change after its newest delivery, not only the
change whose signal is being handled: BlocklistChange ids become visible in increasing order, so
this never skips one, and whatever a crash between commit and signal lost, the every-minute
`retry_webhooks` makes up.

Retries. 30 s, 1 min, 2 min ... capped at 1 h, with jitter, until ABUSEDESK_WEBHOOK_RETRY_HOURS
(24) after the change: no retry is planned past that deadline, one is planned on it when the
back-off would overshoot, and a failure at or after it gives up, so the endpoint's next event goes. A receiver that sees a gap in `sequence` falls back to the
blocklist cursor of the API. Delivery is at least once: receivers deduplicate on `id`.

Signature and egress. Every event is signed (`X-Abusedesk-Signature`) and sent through
moderation.integrations.outbound, the SSRF-guarded client every integration shares.

Audit. Saving an endpoint and a manual redelivery are admin actions with one audit entry each;
attempts and their outcomes are machine events, recorded as WebhookAttempt rows.
"""

from __future__ import annotations

import secrets
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django_q.tasks import async_task

from moderation.actions import Actor
from moderation.audit import record
from moderation.integrations.outbound import Outcome, post_json, retry_delay
from moderation.models import AuditAction, BlocklistChange, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from reports.models import Entity

EVENTS: dict[str, str] = {
    BlocklistChange.Kind.BLOCK: WebhookEndpoint.Event.BLOCKED.value,
    BlocklistChange.Kind.UNBLOCK: WebhookEndpoint.Event.UNBLOCKED.value,
}
LEASE = timedelta(minutes=5)
# One task sends for at most this long, well under the q-cluster's timeout; the rest waits for
# the next task, which it enqueues.
TASK_BUDGET_SECONDS = 60
MAX_NEW_DELIVERIES = 5000
_EVENT_ID_NAME = "abusedesk.enforcement-event"


# --- The event -----------------------------------------------------------------------------------


class EntityPayload(TypedDict):
    url: str
    kind: str
    status: str


class EventPayload(TypedDict):
    id: str
    sequence: int
    type: str
    created_at: str
    entity: EntityPayload
    category: str
    decision: str


def event_payload(change: BlocklistChange) -> EventPayload:
    """The event of one change: the same for every endpoint and every redelivery.

    `id` is derived from the decision's random public id, so it is unique and stable without a
    column of its own; the entity's status is the one this change set, not today's.
    """
    blocked = change.kind == BlocklistChange.Kind.BLOCK
    return {
        "id": str(uuid.uuid5(change.decision.public_id, _EVENT_ID_NAME)),
        "sequence": change.pk,
        "type": EVENTS[change.kind],
        "created_at": change.created_at.isoformat(),
        "entity": {
            "url": change.entity.url,
            "kind": change.entity.kind,
            "status": (Entity.Status.BLOCKED if blocked else Entity.Status.ACTIVE).value,
        },
        "category": change.category,
        "decision": str(change.decision.public_id),
    }


# --- Deliveries ----------------------------------------------------------------------------------


def retry_window() -> timedelta:
    return timedelta(hours=settings.ABUSEDESK_WEBHOOK_RETRY_HOURS)


def subscribed_kinds(endpoint: WebhookEndpoint) -> list[str]:
    return [kind for kind, event in EVENTS.items() if event in endpoint.events]


@transaction.atomic
def create_deliveries(endpoint: WebhookEndpoint, *, now: datetime | None = None) -> int:
    """Owe the endpoint every subscribed change after its newest delivery; idempotent.

    Changes from before the endpoint existed, or older than the retry window (an endpoint that
    was inactive for a while), are not owed: the receiver catches up through the blocklist API.
    """
    now = now or timezone.now()
    kinds = subscribed_kinds(endpoint)
    if not endpoint.active or not kinds:
        return 0
    newest = WebhookDelivery.objects.filter(endpoint=endpoint).aggregate(newest=Max("change_id"))["newest"] or 0
    since = max(endpoint.created_at, now - retry_window())
    change_ids = list(
        BlocklistChange.objects.filter(pk__gt=newest, kind__in=kinds, created_at__gte=since)
        .order_by("pk")
        .values_list("pk", flat=True)[:MAX_NEW_DELIVERIES]
    )
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint=endpoint, change_id=pk, next_attempt_at=now, created_at=now) for pk in change_ids],
        ignore_conflicts=True,
    )
    return len(change_ids)


def enqueue_delivery(endpoint_id: int) -> None:
    async_task("moderation.tasks.deliver_webhooks", endpoint_id, group="webhooks")


def on_blocklist_changed(sender: object, change: BlocklistChange, **kwargs: object) -> None:
    """Receiver of `blocklist_changed` (sent after commit): owe the change and start delivering."""
    event = EVENTS[change.kind]
    for endpoint in WebhookEndpoint.objects.filter(active=True):
        if event in endpoint.events:
            create_deliveries(endpoint)
            enqueue_delivery(endpoint.pk)


@dataclass(frozen=True, slots=True)
class _Claim:
    delivery_id: int
    leased_until: datetime
    url: str
    secret: str
    change: BlocklistChange


@transaction.atomic
def _claim_head(endpoint_id: int, *, now: datetime) -> _Claim | None:
    """Lease the endpoint's oldest pending delivery if it is due; None if there is nothing to send now.

    The row lock is held for this transaction only, so waiting for it (rather than skipping a
    locked endpoint) costs milliseconds and cannot strand an event that was just created.
    """
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id, active=True).first()
    if endpoint is None:
        return None
    head = (
        WebhookDelivery.objects.select_related("change__entity", "change__decision")
        .filter(endpoint=endpoint, state=WebhookDelivery.State.PENDING)
        .order_by("change_id")
        .first()
    )
    if head is None or head.next_attempt_at > now:
        return None
    leased_until = now + LEASE
    WebhookDelivery.objects.filter(pk=head.pk).update(next_attempt_at=leased_until)
    return _Claim(head.pk, leased_until, endpoint.url, endpoint.secret, head.change)


@transaction.atomic
def _record_outcome(claim: _Claim, outcome: Outcome, *, now: datetime) -> WebhookDelivery.State:
    """Keep the attempt and move the delivery on: delivered, retried later, or given up."""
    WebhookAttempt.objects.create(
        delivery_id=claim.delivery_id,
        attempted_at=now,
        status_code=outcome.status_code,
        latency_ms=outcome.latency_ms,
        response_excerpt=outcome.excerpt,
        error=outcome.error,
    )
    delivery = WebhookDelivery.objects.select_for_update().get(pk=claim.delivery_id)
    delivery.attempts += 1
    fields = ["attempts"]
    # Someone else owns the delivery now (the lease ran out, or an admin redelivered it): the
    # attempt is kept, the schedule is theirs.
    still_ours = delivery.state == WebhookDelivery.State.PENDING and delivery.next_attempt_at == claim.leased_until
    if outcome.ok and delivery.state == WebhookDelivery.State.PENDING:
        delivery.state = WebhookDelivery.State.DELIVERED
        delivery.delivered_at = now
        fields += ["state", "delivered_at"]
    elif still_ours:
        deadline = claim.change.created_at + retry_window()
        if now >= deadline:
            delivery.state = WebhookDelivery.State.GAVE_UP
            fields.append("state")
        else:
            delivery.next_attempt_at = min(now + retry_delay(delivery.attempts), deadline)
            fields.append("next_attempt_at")
    delivery.save(update_fields=fields)
    return WebhookDelivery.State(delivery.state)


def deliver_due(endpoint_id: int, *, now: datetime | None = None) -> int:
    """Send the endpoint's due events in sequence order until one is left pending (it failed and
    waits for its retry), none is due, or the time budget is spent. Returns how many were delivered.
    """
    started = time.monotonic()
    delivered = 0
    while True:
        if time.monotonic() - started > TASK_BUDGET_SECONDS:
            enqueue_delivery(endpoint_id)
            return delivered
        at = now or timezone.now()
        claim = _claim_head(endpoint_id, now=at)
        if claim is None:
            return delivered
        outcome = post_json(
            claim.url,
            event_payload(claim.change),
            headers={"X-Abusedesk-Event": EVENTS[claim.change.kind], "X-Abusedesk-Sequence": str(claim.change.pk)},
            signing_secret=claim.secret,
            at=at,
        )
        state = _record_outcome(claim, outcome, now=now or timezone.now())
        if state == WebhookDelivery.State.PENDING:
            return delivered
        if state == WebhookDelivery.State.DELIVERED:
            delivered += 1


def due_endpoints(*, now: datetime | None = None) -> list[int]:
    """Catch up on changes no signal delivered, then list the active endpoints whose head is due."""
    now = now or timezone.now()
    due = []
    for endpoint in WebhookEndpoint.objects.filter(active=True).order_by("pk"):
        create_deliveries(endpoint, now=now)
        head_due_at = (
            WebhookDelivery.objects.filter(endpoint=endpoint, state=WebhookDelivery.State.PENDING)
            .order_by("change_id")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        if head_due_at is not None and head_due_at <= now:
            due.append(endpoint.pk)
    return due


# --- Admin actions -------------------------------------------------------------------------------


def generate_secret() -> str:
    return secrets.token_urlsafe(32)


def mask_secret(secret: str) -> str:
    return f"{secret[:4]}…" if secret else ""


def check_webhook_endpoint(endpoint: WebhookEndpoint) -> None:
    """Raise ValidationError unless the URL is absolute http(s) without credentials and the events are known."""
    errors: dict[str, str] = {}
    try:
        parts = urllib.parse.urlsplit(endpoint.url)
        port = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError:
        errors["url"] = "This is not a valid URL."
    else:
        if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
            errors["url"] = "Enter an absolute http:// or https:// URL."
        elif parts.username or parts.password:
            errors["url"] = "Credentials do not belong in the URL; the signature authenticates the desk."
    events = endpoint.events
    if not isinstance(events, list) or not events or any(e not in WebhookEndpoint.Event.values for e in events):
        errors["events"] = "Choose at least one of: " + ", ".join(WebhookEndpoint.Event.values)
    if errors:
        raise ValidationError(errors)


def _endpoint_state(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"name": endpoint.name, "url": endpoint.url, "events": sorted(endpoint.events), "active": endpoint.active}


@transaction.atomic
def do_save_webhook_endpoint(endpoint: WebhookEndpoint, *, actor: Actor, rotate_secret: bool = False) -> str | None:
    """Create the endpoint, or apply its edited fields; returns the secret when one was generated
    (to be shown once), else None. The secret itself never reaches the audit log.
    """
    check_webhook_endpoint(endpoint)
    endpoint.events = sorted(set(endpoint.events))
    if endpoint.pk is None:
        endpoint.secret = generate_secret()
        endpoint.created_at = timezone.now()
        endpoint.save(force_insert=True)
        record(
            AuditAction.WEBHOOK_ENDPOINT_SAVED,
            actor=actor.user,
            actor_label=actor.label,
            ip=actor.ip,
            data={"old": None, "new": _endpoint_state(endpoint), "endpoint": endpoint.pk, "secret_rotated": True},
        )
        return endpoint.secret
    current = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    old, new = _endpoint_state(current), _endpoint_state(endpoint)
    changed = [field for field in old if old[field] != new[field]]
    if not changed and not rotate_secret:
        return None
    for field in changed:
        setattr(current, field, getattr(endpoint, field))
    if rotate_secret:
        current.secret = generate_secret()
    current.save(update_fields=changed + (["secret"] if rotate_secret else []))
    endpoint.secret = current.secret
    record(
        AuditAction.WEBHOOK_ENDPOINT_SAVED,
        actor=actor.user,
        actor_label=actor.label,
        ip=actor.ip,
        data={
            "old": {field: old[field] for field in changed},
            "new": {field: new[field] for field in changed},
            "endpoint": current.pk,
            "secret_rotated": rotate_secret,
        },
    )
    return current.secret if rotate_secret else None


@transaction.atomic
def do_redeliver_webhook(delivery: WebhookDelivery, *, actor: Actor) -> bool:
    """Put a delivered or given-up delivery back in its endpoint's queue, due now, and start
    delivering after commit. False, and nothing recorded, for one that is still pending.

    It goes in sequence order like any other, and its retries still end at the change's deadline,
    so redelivering an old event is one more attempt, not another day of retries. A pending
    delivery keeps its schedule: it may be in flight under a lease, and making it due again would
    let a second worker send to the endpoint at the same time.
    """
    now = timezone.now()
    delivery = (
        WebhookDelivery.objects.select_for_update().select_related("endpoint", "change__entity").get(pk=delivery.pk)
    )
    if delivery.state == WebhookDelivery.State.PENDING:
        return False
    old = {
        "state": delivery.state,
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
    }
    delivery.state = WebhookDelivery.State.PENDING
    delivery.next_attempt_at = now
    delivery.delivered_at = None
    delivery.save(update_fields=["state", "next_attempt_at", "delivered_at"])
    record(
        AuditAction.WEBHOOK_REDELIVERED,
        actor=actor.user,
        actor_label=actor.label,
        ip=actor.ip,
        entity=delivery.change.entity,
        data={
            "old": old,
            "new": {"state": delivery.state, "delivered_at": None},
            "endpoint": delivery.endpoint.name,
            "sequence": delivery.change_id,
        },
    )
    endpoint_id = delivery.endpoint_id
    transaction.on_commit(lambda: enqueue_delivery(endpoint_id))
    return True
