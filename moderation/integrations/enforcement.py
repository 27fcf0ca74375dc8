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

Signature. `X-Abusedesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
computed over the exact body bytes. Receivers recompute it over the raw body, compare in constant
time and refuse a stale `t`.

Egress (SECURITY rule 6). http and https only; redirects are not followed; proxies from the
environment are ignored. The host is resolved once, every address must be public unless
ABUSEDESK_WEBHOOK_ALLOW_PRIVATE is set, and the connection goes to exactly the checked addresses,
so a DNS answer that changes between check and connect cannot reach an internal service.

Audit. Saving an endpoint and a manual redelivery are admin actions with one audit entry each;
attempts and their outcomes are machine events, recorded as WebhookAttempt rows.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import random
import secrets
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any, TypedDict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django_q.tasks import async_task

from moderation.actions import Actor
from moderation.audit import record
from moderation.models import AuditAction, BlocklistChange, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from reports.models import Entity

logger = logging.getLogger(__name__)

EVENTS: dict[str, str] = {
    BlocklistChange.Kind.BLOCK: WebhookEndpoint.Event.BLOCKED.value,
    BlocklistChange.Kind.UNBLOCK: WebhookEndpoint.Event.UNBLOCKED.value,
}
TIMEOUT_SECONDS = 10
EXCERPT_CHARS = 500
LEASE = timedelta(minutes=5)
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
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


def encode_event(payload: EventPayload) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signature_header(secret: str, body: bytes, *, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event_headers(change: BlocklistChange, body: bytes, *, secret: str, at: datetime) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "abusedesk",
        "X-Abusedesk-Event": EVENTS[change.kind],
        "X-Abusedesk-Sequence": str(change.pk),
        "X-Abusedesk-Signature": signature_header(secret, body, timestamp=int(at.timestamp())),
    }


# --- HTTP ----------------------------------------------------------------------------------------


class RefusedURL(Exception):
    """The endpoint's URL may not be fetched (scheme, or an address that is not public)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _allow_private() -> bool:
    return bool(getattr(settings, "ABUSEDESK_WEBHOOK_ALLOW_PRIVATE", False))


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.partition("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve_receiver(host: str, port: int) -> list[str]:
    """The addresses to connect to; RefusedURL when one of them is not public and that is not allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RefusedURL(f"{host} does not resolve: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not _allow_private():
        for address in addresses:
            if not _is_public(address):
                raise RefusedURL(f"{host} resolves to {address}, which is not a public address")
    return addresses


def _connect_to_any(addresses: Sequence[str]) -> Callable[..., socket.socket]:
    """A replacement for socket.create_connection that ignores the host and uses the checked addresses."""

    def create_connection(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        last: OSError = OSError("no address to connect to")
        for candidate in addresses:
            try:
                return socket.create_connection((candidate, address[1]), timeout, source_address)
            except OSError as exc:
                last = exc
        raise last

    return create_connection


class _PinnedConnection:
    # http.client connects through self._create_connection; replacing it keeps the hostname for
    # the Host header, SNI and certificate checks while the socket goes to a checked address.
    def __init__(self, *args: Any, addresses: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_to_any(addresses)


class _PinnedHTTPConnection(_PinnedConnection, http.client.HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnection, http.client.HTTPSConnection):
    pass


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, addresses: Sequence[str]) -> None:
        super().__init__()
        self.addresses = addresses

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_PinnedHTTPConnection, addresses=self.addresses), req)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, addresses: Sequence[str]) -> None:
        self.context = ssl.create_default_context()
        super().__init__(context=self.context)
        self.addresses = addresses

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(
            functools.partial(_PinnedHTTPSConnection, addresses=self.addresses), req, context=self.context
        )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        # A 3xx is the receiver's answer, recorded as a failed attempt; following it could lead
        # anywhere, including past the address check.
        return None


def _clean(text: str) -> str:
    # PostgreSQL text refuses NUL, and the excerpt is shown to admins as data.
    return text.replace("\x00", "\ufffd")[:EXCERPT_CHARS]


def _excerpt(stream: IO[bytes] | None) -> str:
    if stream is None:
        return ""
    try:
        raw = stream.read(EXCERPT_CHARS * 4)
    except (OSError, http.client.HTTPException):
        return ""
    return _clean(raw.decode("utf-8", errors="replace"))


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def post_event(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST one event; never raises for anything the network or the receiver does."""
    started = time.monotonic()
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RefusedURL("only http and https URLs are delivered to")
        addresses = resolve_receiver(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            _NoRedirects(),
            _PinnedHTTPHandler(addresses),
            _PinnedHTTPSHandler(addresses),
        )
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return Outcome(response.status, _elapsed_ms(started), _excerpt(response))
    except urllib.error.HTTPError as exc:
        try:
            return Outcome(exc.code, _elapsed_ms(started), _excerpt(exc.fp))
        finally:
            exc.close()
    except RefusedURL as exc:
        return Outcome(None, _elapsed_ms(started), error=_clean(f"refused: {exc}"))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return Outcome(None, _elapsed_ms(started), error=_clean(f"{type(reason).__name__}: {reason}"))


# --- Deliveries ----------------------------------------------------------------------------------


def retry_window() -> timedelta:
    return timedelta(hours=int(getattr(settings, "ABUSEDESK_WEBHOOK_RETRY_HOURS", 24)))


def retry_delay(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: 30 s doubling to at most 1 h, less up to a quarter at
    random so that endpoints that failed together do not retry in lockstep."""
    seconds = min(FIRST_RETRY_SECONDS * 2 ** min(attempts - 1, 20), MAX_RETRY_SECONDS)
    return timedelta(seconds=seconds * random.uniform(0.75, 1.0))


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
        body = encode_event(event_payload(claim.change))
        outcome = post_event(claim.url, body, event_headers(claim.change, body, secret=claim.secret, at=at))
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
