"""The audit log is append-only in the database and its hash chain finds tampering."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from moderation.actions import Actor, do_change_case_priority
from moderation.audit import GENESIS, verify_chain
from moderation.audit import triggers as audit_triggers
from moderation.models import AuditAction, AuditEntry
from tests.moderation.replies.fixtures import report_from

TABLE = audit_triggers.TABLE


@pytest.fixture
def case(ingest):
    return report_from(ingest).case


@pytest.fixture
def entries(case, alice):
    actor = Actor(user=alice)
    for priority in (0, 2, 3, 1):
        do_change_case_priority(case, priority=priority, actor=actor)
    return list(AuditEntry.objects.order_by("id"))


def _raw(sql: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def test_entries_chain_from_the_genesis_hash(entries):
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert verify_chain() is None


def test_the_database_refuses_update(entries):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _raw(f"UPDATE {TABLE} SET actor_label = %s WHERE id = %s", ["mallory", entries[1].pk])
    assert AuditEntry.objects.get(pk=entries[1].pk).actor_label == "alice"


def test_the_database_refuses_delete(entries):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _raw(f"DELETE FROM {TABLE} WHERE id = %s", [entries[1].pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entries[2].pk).delete()
    assert AuditEntry.objects.count() == len(entries)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no TRUNCATE")
def test_the_database_refuses_truncate(entries):
    _raw("SET CONSTRAINTS ALL IMMEDIATE")  # run the entries' deferred FK checks, as a commit would
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _raw(f"TRUNCATE {TABLE} CASCADE")
    assert AuditEntry.objects.count() == len(entries)


def test_the_orm_refuses_update_through_querysets(entries):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entries[0].pk).update(action=AuditAction.CASE_ASSIGNED)


def test_entry_delete_raises(entries):
    with pytest.raises(PermissionError):
        entries[0].delete()
    assert AuditEntry.objects.count() == len(entries)


def test_verify_chain_finds_an_altered_entry(entries):
    audit_triggers.drop(connection)
    _raw(f"UPDATE {TABLE} SET data = %s WHERE id = %s", ['{"old": 1, "new": 0}', entries[2].pk])
    problem = verify_chain()
    assert problem is not None
    assert problem.entry_id == entries[2].pk
    assert "does not match" in problem.problem


def test_verify_chain_finds_a_deleted_middle_entry(entries):
    audit_triggers.drop(connection)
    _raw(f"DELETE FROM {TABLE} WHERE id = %s", [entries[1].pk])
    problem = verify_chain()
    assert problem is not None
    assert problem.entry_id == entries[2].pk
    assert "missing" in problem.problem


def test_verify_chain_finds_a_rehashed_entry(entries):
    """Recomputing the altered entry's own hash still breaks the link to its successor."""
    audit_triggers.drop(connection)
    _raw(f"UPDATE {TABLE} SET actor_label = %s, hash = %s WHERE id = %s", ["mallory", "f" * 64, entries[1].pk])
    assert verify_chain().entry_id == entries[1].pk


def test_verify_audit_command_prints_ok_with_count_and_last_hash(entries, capsys):
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert out.strip() == f"OK: {len(entries)} audit entries, last hash {entries[-1].hash}"


def test_verify_audit_command_on_an_empty_log(db, capsys):
    call_command("verify_audit")
    assert capsys.readouterr().out.strip() == f"OK: 0 audit entries, last hash {GENESIS}"


def test_verify_audit_command_exits_1_naming_the_first_bad_entry(entries):
    audit_triggers.drop(connection)
    _raw(f"UPDATE {TABLE} SET actor_label = %s WHERE id = %s", ["mallory", entries[1].pk])
    with pytest.raises(CommandError, match=f"audit entry {entries[1].pk}: its content") as raised:
        call_command("verify_audit")
    assert raised.value.returncode == 1
