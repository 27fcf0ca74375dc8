"""The moderation API: blocklist export and incremental sync, block/unblock, the audit log."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from moderation.actions import Actor, do_block_entity, do_unblock_entity
from moderation.integrations.apikeys import hash_secret
from moderation.models import ApiKey, AuditAction, AuditEntry, BlocklistChange, Decision
from reports.models import Case, Entity


def _key_client(name: str, *scopes: str) -> Client:
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name,
        prefix=f"adk_{secrets.token_hex(4)}",
        secret_hash=hash_secret(secret),
        scopes=list(scopes),
        created_at=timezone.now(),
    )
    return Client(headers={"Authorization": f"Bearer {key.prefix}.{secret}"}, REMOTE_ADDR="192.0.2.7")


@pytest.fixture
def enforcement(db: None) -> Client:
    return _key_client("enforcement", "blocklist")


@pytest.fixture
def decider(db: None) -> Client:
    return _key_client("trust-and-safety", "decide")


@pytest.fixture
def auditor_tool(db: None) -> Client:
    return _key_client("auditor-tool", "audit")


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    return body["error"]


def _export(client: Client, **headers: str) -> tuple[Any, dict[str, Any]]:
    response = client.get("/api/v1/blocklist/", headers=headers)
    assert response.status_code == 200, response
    return response, json.loads(b"".join(response.streaming_content))


def _block(entity: Entity, by: User, category: str = "terrorism") -> Decision:
    decision = do_block_entity(entity, category=category, statement="Posts executions.", actor=Actor(by))
    assert decision is not None
    return decision


@pytest.fixture
def entities(make_case: Callable[..., Case]) -> list[Entity]:
    case = make_case("t.me/alpha_channel t.me/bravo_channel t.me/charlie_bot @delta_channel")
    return list(case.entities.order_by("url"))


# --- GET blocklist/: the full export ----------------------------------------------------------


def test_export_streams_every_blocked_entity_with_its_cursor(
    enforcement: Client, entities: list[Entity], lead: User
) -> None:
    alpha, bravo, charlie, _delta = entities
    _block(alpha, lead)
    _block(charlie, lead, category="spam")
    _block(bravo, lead)
    do_unblock_entity(bravo, statement="Appeal granted.", actor=Actor(lead))
    response, body = _export(enforcement)
    latest = BlocklistChange.objects.latest("id")
    assert response["Content-Type"] == "application/json"
    assert response["X-Blocklist-Cursor"] == body["cursor"]
    assert base64.urlsafe_b64decode(body["cursor"] + "==").decode() == f"v1:{latest.id}"
    assert body["count"] == 2
    assert [(e["url"], e["kind"], e["category"]) for e in body["entities"]] == [
        ("https://t.me/alpha_channel", "channel_or_group", "terrorism"),
        ("https://t.me/charlie_bot", "bot", "spam"),
    ]
    assert body["entities"][0]["id"] == str(alpha.public_id)
    assert body["entities"][0]["blocked_at"].endswith("Z")


def test_export_of_an_empty_blocklist(enforcement: Client) -> None:
    response, body = _export(enforcement)
    assert body == {"cursor": body["cursor"], "entities": [], "count": 0}
    assert response["ETag"] == '"blocklist-0"'


def test_export_then_polling_its_cursor_misses_nothing(enforcement: Client, entities: list[Entity], lead: User) -> None:
    alpha, bravo, *_ = entities
    _block(alpha, lead)
    _, body = _export(enforcement)
    _block(bravo, lead)
    poll = enforcement.get("/api/v1/blocklist/", {"since": body["cursor"]}).json()
    assert [(c["kind"], c["entity"]["url"]) for c in poll["changes"]] == [("block", "https://t.me/bravo_channel")]


def test_export_answers_304_while_nothing_changed(enforcement: Client, entities: list[Entity], lead: User) -> None:
    _block(entities[0], lead)
    response, _ = _export(enforcement)
    etag = response["ETag"]
    assert enforcement.get("/api/v1/blocklist/", headers={"If-None-Match": etag}).status_code == 304
    assert enforcement.get("/api/v1/blocklist/", headers={"If-None-Match": f"W/{etag}"}).status_code == 304
    _block(entities[1], lead)
    response, body = _export(enforcement, **{"If-None-Match": etag})
    assert response["ETag"] != etag
    assert body["count"] == 2


def test_blocklist_needs_the_blocklist_scope(db: None) -> None:
    _error(_key_client("reader", "read", "report", "decide", "audit").get("/api/v1/blocklist/"), 403, "missing_scope")


def test_blocklist_without_a_key_is_401(client: Client, db: None) -> None:
    _error(client.get("/api/v1/blocklist/"), 401, "not_authenticated")


def test_blocklist_with_a_malformed_key_is_401(db: None) -> None:
    client = Client(headers={"Authorization": "Bearer no-dot-here"})
    _error(client.get("/api/v1/blocklist/"), 401, "malformed_key")


# --- GET blocklist/?since=: incremental sync --------------------------------------------------


def test_poll_after_a_block_and_an_unblock_returns_both_in_order(
    enforcement: Client, decider: Client, entities: list[Entity]
) -> None:
    _, start = _export(enforcement)
    alpha = entities[0]
    decider.post(
        f"/api/v1/entities/{alpha.public_id}/block/",
        {"category": "terrorism", "statement": "Propaganda."},
        content_type="application/json",
    )
    decider.post(
        f"/api/v1/entities/{alpha.public_id}/unblock/",
        {"statement": "Appeal granted."},
        content_type="application/json",
    )
    response = enforcement.get("/api/v1/blocklist/", {"since": start["cursor"]})
    assert response.status_code == 200
    poll = response.json()
    changes = list(BlocklistChange.objects.order_by("id"))
    assert [(c["sequence"], c["kind"], c["entity"]["url"], c["category"]) for c in poll["changes"]] == [
        (changes[0].id, "block", "https://t.me/alpha_channel", "terrorism"),
        (changes[1].id, "unblock", "https://t.me/alpha_channel", ""),
    ]
    assert poll["has_more"] is False
    assert response["X-Blocklist-Cursor"] == poll["next"]
    # Polling the next cursor finds nothing new and keeps the cursor.
    again = enforcement.get("/api/v1/blocklist/", {"since": poll["next"]}).json()
    assert again == {"changes": [], "next": poll["next"], "has_more": False}


def test_poll_pages_by_limit(enforcement: Client, entities: list[Entity], lead: User) -> None:
    _, start = _export(enforcement)
    for entity in entities:
        _block(entity, lead)
    first = enforcement.get("/api/v1/blocklist/", {"since": start["cursor"], "limit": 3}).json()
    assert len(first["changes"]) == 3 and first["has_more"] is True
    rest = enforcement.get("/api/v1/blocklist/", {"since": first["next"], "limit": 3}).json()
    assert len(rest["changes"]) == 1 and rest["has_more"] is False
    sequences = [c["sequence"] for c in first["changes"] + rest["changes"]]
    assert sequences == sorted(sequences) == list(BlocklistChange.objects.order_by("id").values_list("id", flat=True))


def test_poll_answers_304_until_a_change(enforcement: Client, entities: list[Entity], lead: User) -> None:
    _, start = _export(enforcement)
    first = enforcement.get("/api/v1/blocklist/", {"since": start["cursor"]})
    again = enforcement.get("/api/v1/blocklist/", {"since": start["cursor"]}, headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304
    _block(entities[0], lead)
    changed = enforcement.get(
        "/api/v1/blocklist/", {"since": start["cursor"]}, headers={"If-None-Match": first["ETag"]}
    )
    assert changed.status_code == 200
    assert len(changed.json()["changes"]) == 1


@pytest.mark.parametrize(
    "since",
    [
        "garbage",
        base64.urlsafe_b64encode(b"v1:-1").decode(),
        base64.urlsafe_b64encode(b"v2:5").decode(),
        "djE6MDAx",
        "\u00e9",
        "x" * 65,
    ],
)
def test_poll_with_a_bad_cursor_is_400(enforcement: Client, since: str) -> None:
    _error(
        enforcement.get("/api/v1/blocklist/", {"since": since}), 400, "invalid" if len(since) > 64 else "invalid_cursor"
    )


def test_poll_with_a_cursor_ahead_of_the_log_is_400(enforcement: Client) -> None:
    cursor = base64.urlsafe_b64encode(b"v1:999").decode().rstrip("=")
    _error(enforcement.get("/api/v1/blocklist/", {"since": cursor}), 400, "invalid_cursor")


@pytest.mark.parametrize("limit", ["0", "1001", "many"])
def test_poll_with_a_bad_limit_is_400(enforcement: Client, limit: str) -> None:
    cursor = base64.urlsafe_b64encode(b"v1:0").decode()
    assert (
        "limit"
        in _error(enforcement.get("/api/v1/blocklist/", {"since": cursor, "limit": limit}), 400, "invalid")["fields"]
    )


# --- POST entities/{id}/block/ and unblock/ ---------------------------------------------------


def test_block_by_api_key_writes_the_audit_entry_change_and_decision(decider: Client, entities: list[Entity]) -> None:
    alpha = entities[0]
    response = decider.post(
        f"/api/v1/entities/{alpha.public_id}/block/",
        {"category": "terrorism", "statement": "  Propaganda.  "},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    decision = Decision.objects.get()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.actor_label, entry.entity, entry.case, entry.ip) == (
        AuditAction.ENTITY_BLOCKED,
        None,
        "api:trust-and-safety",
        alpha,
        None,
        "192.0.2.7",
    )
    assert entry.data == {
        "old": {"status": "active", "case_status": None},
        "new": {"status": "blocked", "case_status": None},
        "category": "terrorism",
        "statement": "Propaganda.",
        "decision": str(decision.public_id),
    }
    change = BlocklistChange.objects.get()
    assert (change.entity, change.kind, change.category, change.decision) == (alpha, "block", "terrorism", decision)
    assert (decision.kind, decision.actor, decision.statement) == ("block", None, "Propaganda.")
    body = response.json()
    assert body["changed"] is True
    assert body["entity"] == {"id": str(alpha.public_id), "url": alpha.url, "kind": alpha.kind, "status": "blocked"}
    assert body["decision"]["id"] == str(decision.public_id)
    assert (body["decision"]["kind"], body["decision"]["category"], body["decision"]["case"]) == (
        "block",
        "terrorism",
        None,
    )


def test_api_and_browser_blocks_write_the_same_audit_entry_shape(
    decider: Client, as_moderator: Client, make_case: Callable[..., Case]
) -> None:
    case = make_case("t.me/browser_channel t.me/api_channel_x")
    by_browser = case.entities.get(url="https://t.me/browser_channel")
    by_api = case.entities.get(url="https://t.me/api_channel_x")
    as_moderator.post(
        f"/cases/{case.reference}/entities/{by_browser.public_id}/block/", {"category": "spam", "statement": "Spam."}
    )
    decider.post(
        f"/api/v1/entities/{by_api.public_id}/block/",
        {"category": "spam", "statement": "Spam.", "case": case.reference},
        content_type="application/json",
    )
    browser_entry, api_entry = AuditEntry.objects.order_by("id")
    assert browser_entry.action == api_entry.action == AuditAction.ENTITY_BLOCKED
    assert (browser_entry.actor_label, api_entry.actor, api_entry.actor_label) == (
        "alice",
        None,
        "api:trust-and-safety",
    )
    assert (browser_entry.entity, api_entry.entity) == (by_browser, by_api)
    assert browser_entry.case == api_entry.case == case

    def shape(entry: AuditEntry) -> dict[str, Any]:
        return {**entry.data, "decision": None}

    assert shape(api_entry) == {**shape(browser_entry), "old": {"status": "active", "case_status": "actioned"}}
    assert BlocklistChange.objects.count() == 2


def test_block_with_a_case_marks_it_actioned(decider: Client, case: Case) -> None:
    entity = case.entities.get()
    response = decider.post(
        f"/api/v1/entities/{entity.public_id}/block/",
        {"category": "violence", "statement": "Gore.", "case": case.reference},
        content_type="application/json",
    )
    assert response.json()["decision"]["case"] == case.reference
    case.refresh_from_db()
    assert (case.status, case.category) == (Case.Status.ACTIONED, "violence")
    entry = AuditEntry.objects.get()
    assert entry.case == case
    assert entry.data["old"]["case_status"] == "new" and entry.data["new"]["case_status"] == "actioned"


def test_block_takes_the_case_reference_in_any_letter_case(decider: Client, case: Case) -> None:
    entity = case.entities.get()
    response = decider.post(
        f"/api/v1/entities/{entity.public_id}/block/",
        {"category": "violence", "statement": "Gore.", "case": case.reference.lower()},
        content_type="application/json",
    )
    assert response.json()["decision"]["case"] == case.reference
    assert AuditEntry.objects.get().case == case


def test_blocking_a_blocked_entity_is_a_200_no_op(decider: Client, entities: list[Entity], lead: User) -> None:
    alpha = entities[0]
    earlier = _block(alpha, lead)
    entries_before = AuditEntry.objects.count()
    response = decider.post(
        f"/api/v1/entities/{alpha.public_id}/block/",
        {"category": "spam", "statement": "Again."},
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["changed"] is False
    assert body["decision"]["id"] == str(earlier.public_id)
    assert body["decision"]["category"] == "terrorism"
    assert AuditEntry.objects.count() == entries_before
    assert BlocklistChange.objects.count() == 1


def test_blocking_a_private_chat_is_400(decider: Client, make_case: Callable[..., Case]) -> None:
    chat = make_case("Look at t.me/c/123456/78").entities.get()
    error = _error(
        decider.post(
            f"/api/v1/entities/{chat.public_id}/block/",
            {"category": "spam", "statement": "x"},
            content_type="application/json",
        ),
        400,
        "invalid",
    )
    assert "private" in error["message"]
    assert not AuditEntry.objects.exists()
    assert not BlocklistChange.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"category": "not-a-category", "statement": "x"}, "category"),
        ({"category": "spam"}, "statement"),
        ({"category": "spam", "statement": "   "}, "statement"),
        ({"category": "spam", "statement": "x", "case": "AD-999999"}, "case"),
    ],
)
def test_invalid_block_requests_are_400(
    decider: Client, entities: list[Entity], payload: dict[str, str], field: str
) -> None:
    error = _error(
        decider.post(f"/api/v1/entities/{entities[0].public_id}/block/", payload, content_type="application/json"),
        400,
        "invalid",
    )
    assert field in error["fields"]
    assert not AuditEntry.objects.exists()


def test_block_with_a_case_that_does_not_name_the_entity_is_400(
    decider: Client, entities: list[Entity], make_case: Callable[..., Case]
) -> None:
    other = make_case("t.me/unrelated_channel", message_id="<other@example.org>")
    payload = {"category": "spam", "statement": "x", "case": other.reference}
    error = _error(
        decider.post(f"/api/v1/entities/{entities[0].public_id}/block/", payload, content_type="application/json"),
        400,
        "invalid",
    )
    assert list(error["fields"]) == ["case"]


def test_block_of_an_unknown_entity_is_404(decider: Client, db: None) -> None:
    _error(
        decider.post(
            "/api/v1/entities/00000000-0000-4000-8000-000000000000/block/",
            {"category": "spam", "statement": "x"},
            content_type="application/json",
        ),
        404,
        "not_found",
    )


def test_block_needs_the_decide_scope(entities: list[Entity]) -> None:
    client = _key_client("almost-everything", "read", "blocklist", "report", "audit")
    _error(
        client.post(
            f"/api/v1/entities/{entities[0].public_id}/block/",
            {"category": "spam", "statement": "x"},
            content_type="application/json",
        ),
        403,
        "missing_scope",
    )
    assert not AuditEntry.objects.exists()


def test_block_without_a_key_is_401(client: Client, entities: list[Entity]) -> None:
    _error(
        client.post(
            f"/api/v1/entities/{entities[0].public_id}/block/",
            {"category": "spam", "statement": "x"},
            content_type="application/json",
        ),
        401,
        "not_authenticated",
    )


def test_block_with_a_body_that_is_not_json_is_400(decider: Client, entities: list[Entity]) -> None:
    _error(
        decider.post(f"/api/v1/entities/{entities[0].public_id}/block/", "{", content_type="application/json"),
        400,
        "parse_error",
    )


def test_block_rejects_get_with_405(decider: Client, entities: list[Entity]) -> None:
    _error(decider.get(f"/api/v1/entities/{entities[0].public_id}/block/"), 405, "method_not_allowed")


def test_unblock_by_api_key_lifts_any_block(decider: Client, entities: list[Entity], moderator: User) -> None:
    alpha = entities[0]
    _block(alpha, moderator)
    response = decider.post(
        f"/api/v1/entities/{alpha.public_id}/unblock/",
        {"statement": "Appeal granted."},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    decision = Decision.objects.get(kind="unblock")
    entry = AuditEntry.objects.get(action=AuditAction.ENTITY_UNBLOCKED)
    assert (entry.actor, entry.actor_label, entry.entity, entry.case) == (None, "api:trust-and-safety", alpha, None)
    assert entry.data == {
        "old": {"status": "blocked"},
        "new": {"status": "active"},
        "statement": "Appeal granted.",
        "decision": str(decision.public_id),
    }
    assert BlocklistChange.objects.order_by("id").last().kind == "unblock"
    assert response.json()["changed"] is True
    assert response.json()["entity"]["status"] == "active"


def test_unblocking_an_active_entity_is_a_200_no_op(decider: Client, entities: list[Entity]) -> None:
    response = decider.post(
        f"/api/v1/entities/{entities[0].public_id}/unblock/", {"statement": "x"}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json() == {"changed": False, "decision": None, "entity": response.json()["entity"]}
    assert not AuditEntry.objects.exists()


def test_unblock_by_session_keeps_the_lead_or_blocker_rule(
    entities: list[Entity], lead: User, as_moderator: Client, as_lead: Client
) -> None:
    alpha = entities[0]
    _block(alpha, lead)
    url = f"/api/v1/entities/{alpha.public_id}/unblock/"
    _error(as_moderator.post(url, {"statement": "x"}, content_type="application/json"), 403, "permission_denied")
    assert as_lead.post(url, {"statement": "Appeal."}, content_type="application/json").status_code == 200
    assert AuditEntry.objects.get(action=AuditAction.ENTITY_UNBLOCKED).actor == lead


def test_unblock_without_a_statement_is_400(decider: Client, entities: list[Entity]) -> None:
    assert (
        "statement"
        in _error(
            decider.post(f"/api/v1/entities/{entities[0].public_id}/unblock/", {}, content_type="application/json"),
            400,
            "invalid",
        )["fields"]
    )


def test_unblock_needs_the_decide_scope(enforcement: Client, entities: list[Entity]) -> None:
    _error(
        enforcement.post(
            f"/api/v1/entities/{entities[0].public_id}/unblock/", {"statement": "x"}, content_type="application/json"
        ),
        403,
        "missing_scope",
    )


def test_unblock_with_a_revoked_key_is_401(entities: list[Entity]) -> None:
    client = _key_client("old", "decide")
    ApiKey.objects.update(revoked_at=timezone.now())
    _error(
        client.post(
            f"/api/v1/entities/{entities[0].public_id}/unblock/", {"statement": "x"}, content_type="application/json"
        ),
        401,
        "revoked_key",
    )


# --- GET audit/ -------------------------------------------------------------------------------


def test_audit_log_lists_entries_newest_first_with_filters(
    auditor_tool: Client, decider: Client, entities: list[Entity], lead: User
) -> None:
    alpha, bravo, *_ = entities
    _block(alpha, lead)
    decider.post(
        f"/api/v1/entities/{bravo.public_id}/block/",
        {"category": "spam", "statement": "x"},
        content_type="application/json",
    )
    body = auditor_tool.get("/api/v1/audit/").json()
    assert [e["entity"] for e in body["results"]] == ["https://t.me/bravo_channel", "https://t.me/alpha_channel"]
    newest = body["results"][0]
    entry = AuditEntry.objects.order_by("id").last()
    assert newest == {
        "id": entry.id,
        "created_at": newest["created_at"],
        "action": "entity.blocked",
        "actor": None,
        "actor_label": "api:trust-and-safety",
        "ip": "192.0.2.7",
        "case": None,
        "entity": "https://t.me/bravo_channel",
        "report": None,
        "data": entry.data,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }
    assert body["results"][1]["actor"] == "lena-lead"

    def entity_urls(**params: str) -> list[str]:
        return [e["entity"] for e in auditor_tool.get("/api/v1/audit/", params).json()["results"]]

    assert entity_urls(actor="lena-lead") == ["https://t.me/alpha_channel"]
    assert entity_urls(entity="t.me/Bravo_Channel") == ["https://t.me/bravo_channel"]
    assert entity_urls(action="entity.unblocked") == []
    assert entity_urls(since=timezone.now().isoformat()) == []
    assert len(entity_urls(until=timezone.now().isoformat())) == 2


def test_audit_log_pages_with_a_cursor(auditor_tool: Client, entities: list[Entity], lead: User) -> None:
    for entity in entities:
        _block(entity, lead)
    first = auditor_tool.get("/api/v1/audit/", {"page_size": 3}).json()
    second = auditor_tool.get(first["next"]).json()
    ids = [e["id"] for e in first["results"] + second["results"]]
    assert ids == sorted(AuditEntry.objects.values_list("id", flat=True), reverse=True)
    assert second["next"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"action": "entity.exploded"},
        {"since": "yesterday"},
        {"entity": "example.com"},
        {"cursor": "bogus"},
        {"cursor": base64.b64encode(b"o=0&r=0&p=abc").decode()},
    ],
)
def test_audit_log_rejects_bad_filters_with_400(auditor_tool: Client, params: dict[str, str]) -> None:
    response = auditor_tool.get("/api/v1/audit/", params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"invalid", "invalid_cursor"}


def test_audit_log_needs_the_audit_scope(db: None) -> None:
    _error(_key_client("no-audit", "read", "blocklist", "report", "decide").get("/api/v1/audit/"), 403, "missing_scope")


def test_audit_log_is_open_to_auditors_by_session(as_auditor: Client, as_moderator: Client) -> None:
    assert as_auditor.get("/api/v1/audit/").status_code == 200
    _error(as_moderator.get("/api/v1/audit/"), 403, "missing_scope")


def test_audit_log_without_a_key_is_401(client: Client, db: None) -> None:
    _error(client.get("/api/v1/audit/"), 401, "not_authenticated")
