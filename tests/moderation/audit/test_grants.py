"""The PostgreSQL role split: connected as the application role, the desk appends to the audit log
and does its other work, but cannot alter, empty or unprotect the audit table."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction

from moderation.actions import Actor, do_change_case_priority
from moderation.audit import record, verify_chain
from moderation.audit import triggers as audit_triggers
from moderation.audit.grants import app_role_owns_audit_table
from moderation.models import AuditAction, AuditEntry
from reports.models import Case
from tests.moderation.replies.fixtures import report_from

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the role split is for PostgreSQL")

TABLE = audit_triggers.TABLE


def _owner_sql(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)


@pytest.fixture
def app_role(transactional_db: None) -> Iterator[str]:
    """A login role that owns nothing, granted what `audit_grants` grants. Roles belong to the whole
    cluster, so the name is unique to this run and the role is dropped afterwards."""
    name = f"abusedesk_app_test_{secrets.token_hex(4)}"
    _owner_sql(f"CREATE ROLE {name} LOGIN")
    try:
        call_command("audit_grants", app_role=name, apply=True)
        yield name
    finally:
        _owner_sql(f"DROP OWNED BY {name}")
        _owner_sql(f"DROP ROLE {name}")


@contextmanager
def connected_as(role: str) -> Iterator[None]:
    """Run the desk's code on a connection of its own, logged in as `role`."""
    owner = connections[DEFAULT_DB_ALIAS]
    app = owner.__class__({**owner.settings_dict, "USER": role, "PASSWORD": ""}, alias=DEFAULT_DB_ALIAS)
    connections[DEFAULT_DB_ALIAS] = app
    try:
        yield
    finally:
        app.close()
        connections[DEFAULT_DB_ALIAS] = owner


REFUSED = {
    "UPDATE": f"UPDATE {TABLE} SET actor_label = 'mallory'",
    "DELETE": f"DELETE FROM {TABLE}",
    "TRUNCATE": f"TRUNCATE {TABLE}",
    "DROP TRIGGER": f"DROP TRIGGER {TABLE}_append_only ON {TABLE}",
    "DISABLE TRIGGER": f"ALTER TABLE {TABLE} DISABLE TRIGGER ALL",
    "ALTER TABLE": f"ALTER TABLE {TABLE} ADD COLUMN forged text",
    "DROP TABLE": f"DROP TABLE {TABLE} CASCADE",
    "CREATE TRIGGER": (
        f"CREATE TRIGGER forged BEFORE INSERT ON {TABLE} FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse()"
    ),
}


@postgresql_only
def test_the_application_role_appends_but_cannot_alter_the_audit_log(app_role, ingest, alice):
    case = report_from(ingest).case
    do_change_case_priority(case, priority=0, actor=Actor(user=alice))  # written as the owner
    with connected_as(app_role):
        assert connection.settings_dict["USER"] == app_role
        assert not app_role_owns_audit_table()
        entry = None
        with transaction.atomic():
            entry = record(AuditAction.CASE_NOTE_ADDED, actor=None, case=case, data={"old": None, "new": "x"})
        # A whole action, with its locks and updates of other tables, works under the grants.
        do_change_case_priority(Case.objects.get(pk=case.pk), priority=3, actor=Actor(user=alice))
        refused = {}
        for name, sql in REFUSED.items():
            with pytest.raises(DatabaseError) as raised, transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql)
            refused[name] = str(raised.value).splitlines()[0]
    assert refused == {
        "UPDATE": f"permission denied for table {TABLE}",
        "DELETE": f"permission denied for table {TABLE}",
        "TRUNCATE": f"permission denied for table {TABLE}",
        "DROP TRIGGER": f"must be owner of relation {TABLE}",
        "DISABLE TRIGGER": f"must be owner of table {TABLE}",
        "ALTER TABLE": f"must be owner of table {TABLE}",
        "DROP TABLE": f"must be owner of table {TABLE}",
        "CREATE TRIGGER": f"permission denied for table {TABLE}",
    }
    assert list(AuditEntry.objects.order_by("id").values_list("action", "actor_label")) == [
        (AuditAction.CASE_PRIORITY_CHANGED, "alice"),
        (AuditAction.CASE_NOTE_ADDED, "system"),
        (AuditAction.CASE_PRIORITY_CHANGED, "alice"),
    ]
    assert entry is not None and verify_chain() is None


@postgresql_only
def test_audit_grants_prints_the_statements_for_the_owner_to_run(db, capsys):
    call_command("audit_grants", app_role="abusedesk")
    out = capsys.readouterr().out
    assert f'REVOKE ALL ON "{TABLE}" FROM "abusedesk";\nGRANT SELECT, INSERT ON "{TABLE}" TO "abusedesk";' in out
    assert 'ALTER DEFAULT PRIVILEGES FOR ROLE "' in out


@postgresql_only
def test_audit_grants_refuses_to_make_the_owner_the_application_role(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (owner,) = cursor.fetchone()
    with pytest.raises(CommandError, match="must not be the owner"):
        call_command("audit_grants", app_role=owner)


@postgresql_only
def test_verify_audit_warns_a_role_that_owns_the_audit_table(db, capsys):
    call_command("verify_audit")
    assert "warning: this database role owns the audit table" in capsys.readouterr().err


@pytest.mark.skipif(connection.vendor == "postgresql", reason="SQLite only")
def test_audit_grants_on_sqlite_says_it_is_for_postgresql(db):
    with pytest.raises(CommandError, match="the role split is for PostgreSQL; SQLite has no roles"):
        call_command("audit_grants", app_role="abusedesk")
