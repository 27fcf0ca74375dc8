"""API keys: created once and audited, revoked, checked on every request, scoped and throttled."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from moderation.actions import Actor
from moderation.integrations.apikeys import HasRequiredScope, do_create_api_key, do_revoke_api_key, hash_secret
from moderation.models import ApiKey, AuditAction, AuditEntry


def _create(name: str = "enforcement", *scopes: str, by: User | None = None) -> tuple[ApiKey, str]:
    return do_create_api_key(name, scopes=scopes or ("blocklist",), actor=Actor(by, ip="198.51.100.1"))


def _client(plaintext: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {plaintext}"})


# --- do_create_api_key / do_revoke_api_key ----------------------------------------------------


def test_create_api_key_stores_only_a_hash_and_records_one_audit_entry(alice: User) -> None:
    key, plaintext = _create("enforcement", "blocklist", "read", by=alice)
    prefix, _, secret = plaintext.partition(".")
    assert prefix == key.prefix and prefix.startswith("adk_") and len(prefix) == 12
    assert len(secret) >= 43
    assert key.secret_hash == hash_secret(secret)
    assert secret not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert (key.scopes, key.created_by, key.revoked_at) == (["blocklist", "read"], alice, None)
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.actor_label, entry.ip) == (
        AuditAction.API_KEY_CREATED,
        alice,
        "alice",
        "198.51.100.1",
    )
    assert entry.data == {
        "old": None,
        "new": {"name": "enforcement", "prefix": key.prefix, "scopes": ["blocklist", "read"]},
    }


@pytest.mark.parametrize(
    ("name", "scopes", "problem"),
    [
        ("Bad Name", ["read"], "key name"),
        ("", ["read"], "key name"),
        ("x" * 61, ["read"], "key name"),
        ("ok", [], "at least one scope"),
        ("ok", ["read", "admin"], "unknown scopes: admin"),
    ],
)
def test_create_api_key_refuses_bad_input_and_records_nothing(
    db: None, name: str, scopes: list[str], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        do_create_api_key(name, scopes=scopes, actor=Actor(None, label="test"))
    assert not ApiKey.objects.exists()
    assert not AuditEntry.objects.exists()


def test_create_api_key_refuses_a_taken_name(db: None) -> None:
    _create("enforcement")
    with pytest.raises(ValidationError, match="exists already"):
        _create("enforcement")
    assert ApiKey.objects.count() == 1


def test_revoke_api_key_records_one_audit_entry_and_a_second_revoke_nothing(alice: User) -> None:
    key, _ = _create()
    assert do_revoke_api_key(key, actor=Actor(alice)) is True
    key.refresh_from_db()
    assert key.revoked_at is not None
    entry = AuditEntry.objects.get(action=AuditAction.API_KEY_REVOKED)
    assert (entry.actor, entry.data) == (
        alice,
        {"old": {"revoked": False}, "new": {"revoked": True}, "name": "enforcement", "prefix": key.prefix},
    )
    assert do_revoke_api_key(key, actor=Actor(alice)) is False
    assert AuditEntry.objects.filter(action=AuditAction.API_KEY_REVOKED).count() == 1


# --- Authentication ---------------------------------------------------------------------------


def _status(client: Client) -> tuple[int, str]:
    response = client.get("/api/v1/blocklist/")
    code = "" if response.status_code == 200 else response.json()["error"]["code"]
    return response.status_code, code


def test_a_valid_key_authenticates(db: None) -> None:
    _, plaintext = _create()
    assert _status(_client(plaintext)) == (200, "")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer adk_00000000.unknown-prefix", "invalid_key"),
        ("Bearer {prefix}.wrong-secret", "invalid_key"),
        ("Bearer {prefix}", "malformed_key"),
        ("Bearer .secret", "malformed_key"),
        ("Bearer {prefix}." + "x" * 200, "malformed_key"),
        ("Bearer", "malformed_key"),
        ("Basic dXNlcjpwYXNz", "not_authenticated"),
    ],
)
def test_bad_credentials_are_401_with_a_bearer_challenge(db: None, header: str, code: str) -> None:
    key, _ = _create()
    response = Client(headers={"Authorization": header.format(prefix=key.prefix)}).get("/api/v1/blocklist/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response["WWW-Authenticate"] == 'Bearer realm="abusedesk"'


def test_a_non_ascii_key_is_401(db: None) -> None:
    response = Client(HTTP_AUTHORIZATION="Bearer adk_0000.s\u00e9cret").get("/api/v1/blocklist/")
    assert response.status_code == 401


def test_a_revoked_key_is_401(db: None) -> None:
    key, plaintext = _create()
    do_revoke_api_key(key, actor=Actor(None, label="test"))
    assert _status(_client(plaintext)) == (401, "revoked_key")


def test_last_used_is_written_at_most_once_a_minute(db: None) -> None:
    key, plaintext = _create()
    client = _client(plaintext)
    client.get("/api/v1/blocklist/")
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    client.get("/api/v1/blocklist/")
    key.refresh_from_db()
    assert key.last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get("/api/v1/blocklist/")
    key.refresh_from_db()
    assert key.last_used_at > first


# --- Scopes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("/api/v1/blocklist/", "blocklist"),
        ("/api/v1/cases/", "read"),
        ("/api/v1/entities/?url=t.me/some_channel", "read"),
        ("/api/v1/audit/", "audit"),
    ],
)
def test_each_endpoint_needs_its_own_scope(db: None, path: str, scope: str) -> None:
    others = [s for s in ApiKey.Scope.values if s != scope]
    _, without = _create("without", *others)
    response = _client(without).get(path)
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "missing_scope",
        "message": f"This API key lacks the scope {scope!r}.",
        "fields": {},
    }
    _, with_scope = _create("with", scope)
    assert _client(with_scope).get(path).status_code in {200, 404}


def test_a_view_that_names_no_scope_is_refused() -> None:
    class Unscoped(APIView):
        pass

    request = Request(APIRequestFactory().get("/"))
    assert HasRequiredScope().has_permission(request, Unscoped()) is False


# --- Throttling -------------------------------------------------------------------------------


def test_requests_are_throttled_per_key(db: None, settings: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api": "2/min"}}
    _, busy = _create("busy")
    _, calm = _create("calm")
    busy_client = _client(busy)
    assert [busy_client.get("/api/v1/blocklist/").status_code for _ in range(2)] == [200, 200]
    throttled = busy_client.get("/api/v1/blocklist/")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0
    assert _client(calm).get("/api/v1/blocklist/").status_code == 200


# --- manage.py create_api_key -----------------------------------------------------------------


def test_create_api_key_command_prints_a_working_key_once(alice: User) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_key",
        "enforcement",
        "--scope",
        "blocklist",
        "--scope",
        "read",
        "--created-by",
        "alice",
        stdout=out,
        stderr=err,
    )
    plaintext = out.getvalue().strip()
    key = ApiKey.objects.get()
    assert plaintext.startswith(key.prefix + ".")
    assert "shown only this once" in err.getvalue()
    assert plaintext not in err.getvalue()
    assert key.scopes == ["blocklist", "read"]
    assert AuditEntry.objects.get().actor == alice
    assert _status(_client(plaintext)) == (200, "")


def test_create_api_key_command_without_a_user_names_the_cli_in_the_audit_log(db: None) -> None:
    call_command("create_api_key", "nightly", "--scope", "audit", stdout=io.StringIO(), stderr=io.StringIO())
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.actor_label) == (None, "cli:create_api_key")


def test_create_api_key_command_reports_a_taken_name(db: None) -> None:
    _create("enforcement")
    with pytest.raises(CommandError, match="exists already"):
        call_command("create_api_key", "enforcement", "--scope", "read", stdout=io.StringIO(), stderr=io.StringIO())


def test_create_api_key_command_refuses_an_unknown_scope(db: None) -> None:
    with pytest.raises(CommandError):
        call_command("create_api_key", "x", "--scope", "admin", stdout=io.StringIO(), stderr=io.StringIO())
    assert not ApiKey.objects.exists()


# --- manage.py revoke_api_key -----------------------------------------------------------------


def _revoked_entries() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=AuditAction.API_KEY_REVOKED))


def test_revoke_api_key_command_revokes_by_name_audits_it_and_the_key_gets_401(alice: User) -> None:
    key, plaintext = _create("enforcement")
    out = io.StringIO()
    call_command("revoke_api_key", "enforcement", "--revoked-by", "alice", stdout=out)
    assert out.getvalue() == f"Revoked API key 'enforcement' ({key.prefix}): requests with it now get 401.\n"
    [entry] = _revoked_entries()
    assert (entry.actor, entry.actor_label, entry.ip, entry.case, entry.entity, entry.report) == (
        alice,
        "alice",
        None,
        None,
        None,
        None,
    )
    assert entry.data == {
        "old": {"revoked": False},
        "new": {"revoked": True},
        "name": "enforcement",
        "prefix": key.prefix,
    }
    assert _status(_client(plaintext)) == (401, "revoked_key")


def test_revoke_api_key_command_by_prefix_without_a_user_names_the_cli(db: None) -> None:
    key, plaintext = _create("enforcement")
    call_command("revoke_api_key", key.prefix, stdout=io.StringIO())
    [entry] = _revoked_entries()
    assert (entry.actor, entry.actor_label) == (None, "cli:revoke_api_key")
    assert _status(_client(plaintext)) == (401, "revoked_key")


def test_revoking_a_revoked_key_from_the_command_changes_and_records_nothing(db: None) -> None:
    key, _ = _create("enforcement")
    call_command("revoke_api_key", "enforcement", stdout=io.StringIO())
    key.refresh_from_db()
    revoked_at, entries = key.revoked_at, AuditEntry.objects.count()
    out = io.StringIO()
    call_command("revoke_api_key", "enforcement", stdout=out)
    assert "was revoked already" in out.getvalue()
    key.refresh_from_db()
    assert key.revoked_at == revoked_at
    assert AuditEntry.objects.count() == entries


def test_revoke_api_key_command_refuses_an_unknown_key(db: None) -> None:
    _, plaintext = _create("enforcement")
    with pytest.raises(CommandError, match="no API key is named or prefixed 'enforcment'"):
        call_command("revoke_api_key", "enforcment", stdout=io.StringIO())
    assert _revoked_entries() == []
    assert _status(_client(plaintext)) == (200, "")


def test_revoke_api_key_command_refuses_a_name_that_is_another_keys_prefix(db: None) -> None:
    other, _ = _create("enforcement")
    _create(other.prefix)
    with pytest.raises(CommandError, match="names more than one key"):
        call_command("revoke_api_key", other.prefix, stdout=io.StringIO())
    assert _revoked_entries() == []
    assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()


def test_revoke_api_key_command_refuses_an_unknown_user(db: None) -> None:
    _create("enforcement")
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("revoke_api_key", "enforcement", "--revoked-by", "nobody", stdout=io.StringIO())
    assert _revoked_entries() == []


# --- Admin: list and revoke -------------------------------------------------------------------


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("root", "root@desk.example", "root-password")


@pytest.fixture
def as_admin(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def _revoke_in_admin(client: Client, *keys: ApiKey, confirm: bool) -> Any:
    form = {"action": "revoke", "_selected_action": [str(key.pk) for key in keys]}
    return client.post("/admin/moderation/apikey/", {**form, "post": "yes"} if confirm else form)


def test_admin_lists_api_keys_without_their_secret_hash(as_admin: Client) -> None:
    key, _ = _create("enforcement", "blocklist", "read")
    listing = as_admin.get("/admin/moderation/apikey/").content.decode()
    assert "enforcement" in listing and key.prefix in listing and "blocklist, read" in listing
    page = as_admin.get(f"/admin/moderation/apikey/{key.pk}/change/")
    assert page.status_code == 200
    assert key.secret_hash not in page.content.decode()


def test_admin_revoke_asks_first_then_revokes_audits_and_the_key_gets_401(as_admin: Client, admin_user: User) -> None:
    key, plaintext = _create("enforcement")
    asked = _revoke_in_admin(as_admin, key, confirm=False)
    assert asked.status_code == 200
    assert "Revoke these API keys?" in asked.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
    assert _revoked_entries() == []

    response = _revoke_in_admin(as_admin, key, confirm=True)
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    [entry] = _revoked_entries()
    assert (entry.actor, entry.actor_label, entry.ip) == (admin_user, "root", "127.0.0.1")
    assert entry.data == {
        "old": {"revoked": False},
        "new": {"revoked": True},
        "name": "enforcement",
        "prefix": key.prefix,
    }
    assert _status(_client(plaintext)) == (401, "revoked_key")


def test_admin_revoking_a_revoked_key_records_nothing(as_admin: Client, alice: User) -> None:
    revoked, _ = _create("old-one")
    do_revoke_api_key(revoked, actor=Actor(alice))
    entries = AuditEntry.objects.count()
    response = _revoke_in_admin(as_admin, revoked, confirm=True)
    assert response.status_code == 302
    assert AuditEntry.objects.count() == entries


def test_admin_neither_adds_edits_nor_deletes_api_keys(as_admin: Client) -> None:
    key, _ = _create("enforcement")
    assert as_admin.get("/admin/moderation/apikey/add/").status_code == 403
    changed = as_admin.post(f"/admin/moderation/apikey/{key.pk}/change/", {"name": "renamed", "scopes": '["audit"]'})
    assert changed.status_code == 403
    assert as_admin.post(f"/admin/moderation/apikey/{key.pk}/delete/", {"post": "yes"}).status_code == 403
    key.refresh_from_db()
    assert (key.name, key.scopes, key.revoked_at) == ("enforcement", ["blocklist"], None)


def test_staff_without_admin_rights_cannot_see_api_keys(as_moderator: Client) -> None:
    assert as_moderator.get("/admin/moderation/apikey/").status_code == 403
