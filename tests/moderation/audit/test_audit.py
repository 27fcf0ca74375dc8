"""The audit log is append-only in the database and its keyed hash chain finds tampering."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from moderation.actions import Actor, do_change_case_priority
from moderation.audit import GENESIS, ChainProblem, check_chain, record, verify_chain
from moderation.audit import triggers as audit_triggers
from moderation.audit.chain import canonical
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


def test_each_hash_is_an_hmac_with_the_configured_key_and_names_its_id(entries, settings):
    secret = settings.ABUSEDESK_AUDIT_KEYS[settings.ABUSEDESK_AUDIT_KEY_ID]
    for entry in entries:
        assert entry.key_id == settings.ABUSEDESK_AUDIT_KEY_ID
        assert entry.hash == hmac.new(secret.encode(), canonical(entry), hashlib.sha256).hexdigest()
        assert b'"key_id":"' + entry.key_id.encode() + b'"' in canonical(entry)


def _priority_changes(case, alice, *priorities):
    for priority in priorities:
        do_change_case_priority(case, priority=priority, actor=Actor(user=alice))


def test_the_chain_continues_keyed_after_unkeyed_entries_and_both_parts_verify(case, alice, settings):
    """The migration path: entries from before the key keep their SHA-256; the first keyed entry
    (the switch-over) covers the last unkeyed hash."""
    settings.ABUSEDESK_AUDIT_KEY_ID = ""
    _priority_changes(case, alice, 0, 2)
    settings.ABUSEDESK_AUDIT_KEY_ID, settings.ABUSEDESK_AUDIT_KEYS = "2026-12", {"2026-12": "k" * 32}
    _priority_changes(case, alice, 3, 1)
    old, old2, switch, new = AuditEntry.objects.order_by("id")
    assert [e.key_id for e in (old, old2, switch, new)] == ["", "", "2026-12", "2026-12"]
    assert old.hash == hashlib.sha256(canonical(old)).hexdigest()
    assert switch.prev_hash == old2.hash
    report = check_chain()
    assert (report.problem, report.count, report.unkeyed, report.key_ids) == (None, 4, 2, ["2026-12"])


def test_rewriting_the_unkeyed_part_after_the_switch_over_is_found(case, alice, settings):
    settings.ABUSEDESK_AUDIT_KEY_ID = ""
    _priority_changes(case, alice, 0, 2)
    settings.ABUSEDESK_AUDIT_KEY_ID, settings.ABUSEDESK_AUDIT_KEYS = "2026-12", {"2026-12": "k" * 32}
    _priority_changes(case, alice, 3)
    old, old2, switch = AuditEntry.objects.order_by("id")
    audit_triggers.drop(connection)
    # Re-hashing the unkeyed entries needs no key, but the keyed switch-over covers the old head.
    old2.actor_label = "mallory"
    _raw(
        f"UPDATE {TABLE} SET actor_label = %s, hash = %s WHERE id = %s",
        ["mallory", hashlib.sha256(canonical(old2)).hexdigest(), old2.pk],
    )
    assert verify_chain() == ChainProblem(switch.pk, "the entry before it is missing or was altered")


def test_a_rotated_key_keeps_verifying_the_entries_it_signed(case, alice, settings):
    settings.ABUSEDESK_AUDIT_KEY_ID, settings.ABUSEDESK_AUDIT_KEYS = "old", {"old": "o" * 32}
    _priority_changes(case, alice, 0)
    settings.ABUSEDESK_AUDIT_KEY_ID, settings.ABUSEDESK_AUDIT_KEYS = "new", {"old": "o" * 32, "new": "n" * 32}
    _priority_changes(case, alice, 2)
    assert list(AuditEntry.objects.order_by("id").values_list("key_id", flat=True)) == ["old", "new"]
    assert check_chain().key_ids == ["old", "new"]
    assert verify_chain() is None
    settings.ABUSEDESK_AUDIT_KEYS = {"new": "n" * 32}  # the retired key dropped from the settings
    problem = verify_chain()
    assert problem.entry_id == AuditEntry.objects.order_by("id").first().pk
    assert "key id 'old' is not configured" in problem.problem


def test_a_wrong_key_fails_every_keyed_entry(entries, settings):
    settings.ABUSEDESK_AUDIT_KEYS = {settings.ABUSEDESK_AUDIT_KEY_ID: "not-the-key-" * 3}
    assert verify_chain() == ChainProblem(entries[0].pk, "its content does not match its hash")


def test_without_a_key_record_refuses_to_follow_a_keyed_entry(entries, settings):
    settings.ABUSEDESK_AUDIT_KEY_ID = ""
    with pytest.raises(ImproperlyConfigured, match="ABUSEDESK_AUDIT_KEY"), transaction.atomic():
        record(AuditAction.CASE_PRIORITY_CHANGED, actor=None, data={"old": 1, "new": 2})
    assert AuditEntry.objects.count() == len(entries)


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


def test_verify_audit_command_prints_ok_with_count_last_hash_and_keys(entries, capsys, settings):
    call_command("verify_audit")
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"OK: {len(entries)} audit entries, last hash {entries[-1].hash}",
        f"keyed: {len(entries)} entries, key ids {settings.ABUSEDESK_AUDIT_KEY_ID}",
    ]
    assert "warning: no anchors to check" in err


def test_verify_audit_command_on_an_empty_log(db, capsys):
    call_command("verify_audit")
    assert capsys.readouterr().out.strip() == f"OK: 0 audit entries, last hash {GENESIS}"


def test_verify_audit_command_exits_1_naming_the_first_bad_entry(entries):
    audit_triggers.drop(connection)
    _raw(f"UPDATE {TABLE} SET actor_label = %s WHERE id = %s", ["mallory", entries[1].pk])
    with pytest.raises(CommandError, match=f"audit entry {entries[1].pk}: its content") as raised:
        call_command("verify_audit")
    assert raised.value.returncode == 1
