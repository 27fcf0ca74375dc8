"""Enforcement webhooks against a real HTTP receiver on a loopback port, with the clock moved by hand."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from moderation.actions import Actor, do_block_entity, do_unblock_entity
from moderation.integrations import enforcement
from moderation.integrations.enforcement import do_redeliver_webhook, do_save_webhook_endpoint
from moderation.models import (
    AuditAction,
    AuditEntry,
    BlocklistChange,
    Decision,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from moderation.tasks import deliver_webhooks, retry_webhooks
from reports.models import Case, Entity

SECRET = "test-signing-secret-0123456789"


# --- A receiver, a clock, an endpoint ------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int = 0

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST with its raw bytes; `answer` decides the status (and body) of each."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    answer: Callable[[Received], int | tuple[int, bytes]] = lambda request: 200

    def log(self) -> list[tuple[int, int]]:
        return [(r.event["sequence"], r.status) for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received = Received(dict(self.headers), self.rfile.read(int(self.headers["Content-Length"])))
            answer = rx.answer(received)
            status, body = answer if isinstance(answer, tuple) else (answer, b"ok" if answer < 300 else b"boom")
            received.status = status
            rx.requests.append(received)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            rx.requests.append(Received(dict(self.headers), b'{"sequence": -1}', 200))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rx.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/abusedesk"
    yield rx
    server.shutdown()
    server.server_close()


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freezes django.utils.timezone.now (used by the actions, the tasks and enforcement alike)."""
    frozen = Clock(timezone.now())
    monkeypatch.setattr(timezone, "now", frozen)
    return frozen


@pytest.fixture
def endpoint(db: None, receiver: Receiver, clock: Clock) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        name="enforcement",
        url=receiver.url,
        secret=SECRET,
        events=["entity.blocked", "entity.unblocked"],
        created_at=clock.now - timedelta(days=1),
    )


@pytest.fixture
def entity(case: Case) -> Entity:
    return case.entities.get()


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("root", "root@desk.example", "root-password")


@pytest.fixture
def as_admin(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def _block(entity: Entity, user: User, capture: Callable[..., Any]) -> Decision:
    with capture(execute=True):
        decision = do_block_entity(entity, category="terrorism", statement="Beheading videos.", actor=Actor(user))
    assert decision is not None
    return decision


def _unblock(entity: Entity, user: User, capture: Callable[..., Any]) -> Decision:
    with capture(execute=True):
        decision = do_unblock_entity(entity, statement="Blocked by mistake.", actor=Actor(user))
    assert decision is not None
    return decision


def _verify(secret: str, header: str, body: bytes) -> bool:
    """A receiver's check, written from the documented scheme alone."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def _fail_first(n: int) -> Callable[[Received], int]:
    calls = {"count": 0}

    def answer(request: Received) -> int:
        calls["count"] += 1
        return 500 if calls["count"] <= n else 200

    return answer


# --- The proof: retries, order, exactly once ------------------------------------------------------


@pytest.mark.network
def test_a_receiver_that_fails_twice_gets_each_event_once_in_order(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    clock: Clock,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    receiver.answer = _fail_first(2)
    _block(entity, moderator, django_capture_on_commit_callbacks)
    _unblock(entity, moderator, django_capture_on_commit_callbacks)
    block, unblock = BlocklistChange.objects.order_by("id")
    # The block failed once; the unblock waits behind it.
    assert receiver.log() == [(block.pk, 500)]

    clock.advance(seconds=30)
    assert retry_webhooks() == 1
    assert receiver.log() == [(block.pk, 500), (block.pk, 500)]

    clock.advance(seconds=60)
    retry_webhooks()
    assert receiver.log() == [(block.pk, 500), (block.pk, 500), (block.pk, 200), (unblock.pk, 200)]

    succeeded = [r.event for r in receiver.requests if r.status == 200]
    assert [(e["sequence"], e["type"]) for e in succeeded] == [
        (block.pk, "entity.blocked"),
        (unblock.pk, "entity.unblocked"),
    ]
    first, second = WebhookDelivery.objects.order_by("change_id")
    assert (first.state, first.attempts, second.state, second.attempts) == ("delivered", 3, "delivered", 1)
    assert list(first.attempt_log.order_by("attempted_at").values_list("status_code", flat=True)) == [500, 500, 200]
    assert first.attempt_log.order_by("attempted_at")[2].response_excerpt == "ok"
    # Nothing is due any more, and running the tasks again sends nothing.
    clock.advance(hours=2)
    assert retry_webhooks() == 0
    assert deliver_webhooks(endpoint.pk) == 0
    assert len(receiver.requests) == 4


@pytest.mark.network
def test_the_signature_verifies_with_an_independent_check(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    clock: Clock,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    decision = _block(entity, moderator, django_capture_on_commit_callbacks)
    [request] = receiver.requests
    change = BlocklistChange.objects.get()

    header = request.headers["X-Abusedesk-Signature"]
    assert _verify(SECRET, header, request.body)
    assert not _verify(SECRET, header, request.body.replace(b"terrorism", b"spam"))
    assert not _verify("another-secret", header, request.body)
    assert int(header.split(",")[0].removeprefix("t=")) == int(clock.now.timestamp())

    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "abusedesk"
    assert request.headers["X-Abusedesk-Event"] == "entity.blocked"
    assert request.headers["X-Abusedesk-Sequence"] == str(change.pk)
    event = request.event
    assert event == {
        "id": event["id"],
        "sequence": change.pk,
        "type": "entity.blocked",
        "created_at": change.created_at.isoformat(),
        "entity": {"url": entity.url, "kind": entity.kind, "status": "blocked"},
        "category": "terrorism",
        "decision": str(decision.public_id),
    }
    assert len(event["id"]) == 36


@pytest.mark.network
def test_the_event_id_is_stable_across_redeliveries_and_distinct_per_change(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    admin_user: User,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    _block(entity, moderator, django_capture_on_commit_callbacks)
    _unblock(entity, moderator, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        do_redeliver_webhook(WebhookDelivery.objects.order_by("change_id")[0], actor=Actor(admin_user))
    ids = [r.event["id"] for r in receiver.requests]
    assert ids[0] != ids[1]
    assert ids[2] == ids[0]


# --- Head of line and giving up -------------------------------------------------------------------


@pytest.mark.network
def test_event_two_waits_while_event_one_fails_and_goes_when_it_gives_up(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    clock: Clock,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    receiver.answer = lambda request: 503 if request.event["type"] == "entity.blocked" else 200
    _block(entity, moderator, django_capture_on_commit_callbacks)
    _unblock(entity, moderator, django_capture_on_commit_callbacks)
    block, unblock = BlocklistChange.objects.order_by("id")
    for _ in range(23):
        clock.advance(hours=1)
        retry_webhooks()
    first = WebhookDelivery.objects.get(change=block)
    assert {sequence for sequence, _ in receiver.log()} == {block.pk}
    assert first.state == "pending"
    # No retry is ever planned past the deadline, 24 hours after the change.
    assert first.next_attempt_at <= block.created_at + timedelta(hours=24)

    clock.advance(hours=1)
    retry_webhooks()
    first.refresh_from_db()
    second = WebhookDelivery.objects.get(change=unblock)
    assert (first.state, second.state) == ("gave_up", "delivered")
    assert first.attempts == first.attempt_log.count() == len(receiver.requests) - 1
    assert receiver.log()[-1] == (unblock.pk, 200)
    assert [sequence for sequence, _ in receiver.log()].count(unblock.pk) == 1


# --- What is and is not sent ----------------------------------------------------------------------


@pytest.mark.network
def test_a_private_address_is_refused_when_not_allowed(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    clock: Clock,
    settings: Any,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    settings.ABUSEDESK_WEBHOOK_ALLOW_PRIVATE = False
    _block(entity, moderator, django_capture_on_commit_callbacks)
    assert receiver.requests == []
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("refused: 127.0.0.1 resolves to 127.0.0.1")
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "pending"
    assert delivery.next_attempt_at > clock.now


@pytest.mark.network
def test_a_redirect_is_an_answer_not_followed(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    receiver.answer = lambda request: 302
    _block(entity, moderator, django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 1
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 302
    assert WebhookDelivery.objects.get().state == "pending"


@pytest.mark.network
def test_the_response_excerpt_is_capped_and_free_of_nul(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    receiver.answer = lambda request: (500, b"\x00" + b"x" * 5000)
    _block(entity, moderator, django_capture_on_commit_callbacks)
    attempt = WebhookAttempt.objects.get()
    assert attempt.response_excerpt == "\ufffd" + "x" * 499


def test_a_closed_port_is_a_failed_attempt_with_the_error(
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="http://127.0.0.1:9/")
    _block(entity, moderator, django_capture_on_commit_callbacks)
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert "ConnectionRefusedError" in attempt.error


@pytest.mark.network
def test_endpoints_get_only_the_events_they_subscribed_to_and_only_while_active(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    clock: Clock,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    blocks_only = WebhookEndpoint.objects.create(
        name="blocks only",
        url=receiver.url,
        secret=SECRET,
        events=["entity.blocked"],
        created_at=clock.now,
    )
    WebhookEndpoint.objects.create(
        name="retired",
        url=receiver.url,
        secret=SECRET,
        events=["entity.blocked"],
        active=False,
        created_at=clock.now,
    )
    _block(entity, moderator, django_capture_on_commit_callbacks)
    _unblock(entity, moderator, django_capture_on_commit_callbacks)
    assert list(blocks_only.deliveries.values_list("change__kind", flat=True)) == ["block"]
    assert endpoint.deliveries.count() == 2
    assert WebhookDelivery.objects.count() == 3
    assert len(receiver.requests) == 3


@pytest.mark.network
def test_a_change_whose_signal_was_lost_is_delivered_by_the_schedule(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
) -> None:
    # Without executing on-commit callbacks the signal never fires, as after a crash at commit.
    do_block_entity(entity, category="spam", statement="Spam.", actor=Actor(moderator))
    assert receiver.requests == []
    assert retry_webhooks() == 1
    assert receiver.log() == [(BlocklistChange.objects.get().pk, 200)]


def test_a_leased_head_is_not_claimed_by_a_second_worker(
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    clock: Clock,
) -> None:
    do_block_entity(entity, category="spam", statement="Spam.", actor=Actor(moderator))
    enforcement.create_deliveries(endpoint)
    claim = enforcement._claim_head(endpoint.pk, now=clock.now)
    assert claim is not None
    assert enforcement._claim_head(endpoint.pk, now=clock.now) is None
    assert deliver_webhooks(endpoint.pk) == 0
    assert not WebhookAttempt.objects.exists()


# --- Admin: endpoints and redelivery ---------------------------------------------------------------


@pytest.mark.network
def test_redeliver_now_from_admin_sends_again_and_is_audited(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    admin_user: User,
    as_admin: Client,
    clock: Clock,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    _block(entity, moderator, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    delivered_at = delivery.delivered_at
    assert delivered_at is not None
    assert delivery.state == "delivered"
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post(
            "/admin/moderation/webhookdelivery/", {"action": "redeliver_now", "_selected_action": [delivery.pk]}
        )
    assert response.status_code == 302
    assert receiver.log() == [(delivery.change_id, 200), (delivery.change_id, 200)]
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("delivered", 2)
    entry = AuditEntry.objects.get(action=AuditAction.WEBHOOK_REDELIVERED)
    assert (entry.actor, entry.entity) == (admin_user, entity)
    assert entry.data == {
        "old": {"state": "delivered", "delivered_at": delivered_at.isoformat()},
        "new": {"state": "pending", "delivered_at": None},
        "endpoint": "enforcement",
        "sequence": delivery.change_id,
    }
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        AuditAction.ENTITY_BLOCKED,
        AuditAction.WEBHOOK_REDELIVERED,
    ]


def test_redelivering_a_pending_delivery_changes_and_records_nothing(
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    admin_user: User,
) -> None:
    do_block_entity(entity, category="spam", statement="Spam.", actor=Actor(moderator))
    enforcement.create_deliveries(endpoint)
    delivery = WebhookDelivery.objects.get()
    assert do_redeliver_webhook(delivery, actor=Actor(admin_user)) is False
    assert WebhookDelivery.objects.values_list("state", "next_attempt_at").get() == (
        "pending",
        delivery.next_attempt_at,
    )
    assert list(AuditEntry.objects.values_list("action", flat=True)) == [AuditAction.ENTITY_BLOCKED]


@pytest.mark.network
def test_a_given_up_delivery_redelivered_is_one_more_attempt(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    admin_user: User,
    clock: Clock,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    receiver.answer = lambda request: 500
    _block(entity, moderator, django_capture_on_commit_callbacks)
    clock.advance(hours=25)
    retry_webhooks()
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "gave_up"
    receiver.answer = lambda request: 200
    with django_capture_on_commit_callbacks(execute=True):
        assert do_redeliver_webhook(delivery, actor=Actor(admin_user)) is True
    delivery.refresh_from_db()
    assert delivery.state == "delivered"
    assert receiver.log()[-1] == (delivery.change_id, 200)


def test_creating_an_endpoint_in_admin_shows_the_secret_once_and_audits_without_it(
    as_admin: Client, admin_user: User
) -> None:
    response = as_admin.post(
        "/admin/moderation/webhookendpoint/add/",
        {"name": "platform", "url": "https://enforcement.example/hooks", "events": ["entity.blocked"], "active": "on"},
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor) == (AuditAction.WEBHOOK_ENDPOINT_SAVED, admin_user)
    assert entry.data == {
        "old": None,
        "new": {
            "name": "platform",
            "url": "https://enforcement.example/hooks",
            "events": ["entity.blocked"],
            "active": True,
        },
        "endpoint": endpoint.pk,
        "secret_rotated": True,
    }
    page = as_admin.get(f"/admin/moderation/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert endpoint.secret not in page
    assert endpoint.secret[:4] + "…" in page


def test_rotating_the_secret_in_admin_shows_the_new_one_and_audits_it(as_admin: Client, admin_user: User) -> None:
    endpoint = WebhookEndpoint.objects.create(
        name="platform",
        url="https://enforcement.example/hooks",
        secret="old-secret",
        events=["entity.blocked"],
        created_at=timezone.now(),
    )
    response = as_admin.post(
        f"/admin/moderation/webhookendpoint/{endpoint.pk}/change/",
        {
            "name": "platform",
            "url": "https://enforcement.example/hooks",
            "events": ["entity.blocked", "entity.unblocked"],
            "active": "on",
            "rotate_secret": "on",
        },
    )
    endpoint.refresh_from_db()
    assert endpoint.secret != "old-secret"
    assert endpoint.secret in response.content.decode()
    entry = AuditEntry.objects.get()
    assert entry.data == {
        "old": {"events": ["entity.blocked"]},
        "new": {"events": ["entity.blocked", "entity.unblocked"]},
        "endpoint": endpoint.pk,
        "secret_rotated": True,
    }
    assert "old-secret" not in json.dumps(entry.data)
    assert endpoint.secret not in json.dumps(entry.data)


def test_saving_an_endpoint_unchanged_records_nothing(admin_user: User) -> None:
    endpoint = WebhookEndpoint.objects.create(
        name="platform",
        url="https://enforcement.example/hooks",
        secret="s",
        events=["entity.blocked"],
        created_at=timezone.now(),
    )
    assert do_save_webhook_endpoint(endpoint, actor=Actor(admin_user)) is None
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("url", "events", "field"),
    [
        ("ftp://enforcement.example/", ["entity.blocked"], "url"),
        ("https://user:pass@enforcement.example/", ["entity.blocked"], "url"),
        ("https://enforcement.example:99999/", ["entity.blocked"], "url"),
        ("https://enforcement.example/", [], "events"),
        ("https://enforcement.example/", ["entity.deleted"], "events"),
    ],
)
def test_an_invalid_endpoint_is_refused_in_admin(as_admin: Client, url: str, events: list[str], field: str) -> None:
    response = as_admin.post(
        "/admin/moderation/webhookendpoint/add/", {"name": "platform", "url": url, "events": events, "active": "on"}
    )
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not WebhookEndpoint.objects.exists()
    assert not AuditEntry.objects.exists()


def test_staff_without_admin_rights_cannot_see_webhooks(as_moderator: Client) -> None:
    response = as_moderator.get("/admin/moderation/webhookendpoint/")
    assert response.status_code == 403


@pytest.mark.network
def test_a_second_worker_sends_nothing_while_the_first_is_mid_request(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    do_block_entity(entity, category="spam", statement="Spam.", actor=Actor(moderator))
    do_unblock_entity(entity, statement="Mistake.", actor=Actor(moderator))
    enforcement.create_deliveries(endpoint)
    real_post = enforcement.post_json
    second_worker_sent: list[int] = []

    def post_while_another_worker_runs(url: str, payload: object, **options: Any) -> enforcement.Outcome:
        if not second_worker_sent:
            second_worker_sent.append(deliver_webhooks(endpoint.pk))
        return real_post(url, payload, **options)

    monkeypatch.setattr(enforcement, "post_json", post_while_another_worker_runs)
    assert deliver_webhooks(endpoint.pk) == 2
    assert second_worker_sent == [0]
    assert [sequence for sequence, _ in receiver.log()] == list(
        BlocklistChange.objects.order_by("id").values_list("id", flat=True)
    )


@pytest.mark.network
def test_admin_lists_deliveries_and_shows_each_attempt(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    entity: Entity,
    moderator: User,
    as_admin: Client,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    receiver.answer = lambda request: (500, b"<b>receiver says no</b>")
    _block(entity, moderator, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    listing = as_admin.get("/admin/moderation/webhookdelivery/").content.decode()
    assert entity.url in listing
    assert "entity.blocked" in listing
    page = as_admin.get(f"/admin/moderation/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "&lt;b&gt;receiver says no&lt;/b&gt;" in page
    assert as_admin.get(f"/admin/moderation/webhookendpoint/{endpoint.pk}/change/").status_code == 200
    assert as_admin.get("/admin/moderation/webhookendpoint/").status_code == 200
