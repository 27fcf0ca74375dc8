"""The attacks of issue 11, each by a database user who does not hold the audit key: drop the
triggers, rewrite entries and re-hash the chain; delete the newest entries; delete them all.
Before the keyed chain and the anchors, `verify_audit` said OK to every one of them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from moderation.actions import Actor, do_change_case_priority
from moderation.audit import GENESIS, verify_chain
from moderation.audit import triggers as audit_triggers
from moderation.audit.anchors import write_current_anchor
from moderation.audit.chain import canonical
from moderation.models import AuditEntry
from tests.moderation.replies.fixtures import report_from

TABLE = audit_triggers.TABLE


@pytest.fixture
def anchor_file(tmp_path: Path, settings) -> Path:
    path = tmp_path / "anchors" / "audit.jsonl"
    path.parent.mkdir()
    settings.ABUSEDESK_AUDIT_ANCHORS = [f"file:{path}"]
    return path


@pytest.fixture
def entries(ingest, alice):
    case = report_from(ingest).case
    for priority in (0, 2, 3, 1, 2):
        do_change_case_priority(case, priority=priority, actor=Actor(user=alice))
    return list(AuditEntry.objects.order_by("id"))


@pytest.fixture
def anchored(entries, anchor_file):
    """The schedule ran once after the five entries were written."""
    assert write_current_anchor() == 1
    return entries


def _raw(sql: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def _verify_audit_fails(match: str) -> None:
    with pytest.raises(CommandError, match=match) as raised:
        call_command("verify_audit")
    assert raised.value.returncode == 1


def _rehash_from(position: int, *, actor_label: str) -> None:
    """What the issue's attacker did: alter entries from `position` on and re-hash the chain the
    only way open without the key (plain SHA-256, as the unkeyed chain did)."""
    audit_triggers.drop(connection)
    previous = GENESIS
    for index, entry in enumerate(AuditEntry.objects.order_by("id")):
        if index >= position:
            entry.actor_label, entry.key_id, entry.prev_hash = actor_label, "", previous
            entry.hash = hashlib.sha256(canonical(entry)).hexdigest()
            _raw(
                f"UPDATE {TABLE} SET actor_label = %s, key_id = '', prev_hash = %s, hash = %s WHERE id = %s",
                [entry.actor_label, entry.prev_hash, entry.hash, entry.pk],
            )
        previous = entry.hash


def test_rewriting_and_rehashing_the_newest_entries_is_found_by_the_key(entries):
    _rehash_from(2, actor_label="mallory")
    _verify_audit_fails(f"audit entry {entries[2].pk}: unkeyed entry after the chain switched to keyed hashes")


def test_rewriting_and_rehashing_with_a_guessed_key_is_found_by_the_key(entries):
    audit_triggers.drop(connection)
    forged = entries[4]
    forged.actor_label = "mallory"
    guessed = hashlib.sha256(b"guess" + canonical(forged)).hexdigest()
    _raw(f"UPDATE {TABLE} SET actor_label = 'mallory', hash = %s WHERE id = %s", [guessed, forged.pk])
    _verify_audit_fails(f"audit entry {forged.pk}: its content does not match its hash")


def test_rehashing_the_whole_log_without_the_key_is_found_by_the_anchor(anchored):
    """Every entry re-hashed as if the log had never been keyed: the chain alone cannot tell this
    from a log older than the key, but the anchored head is gone."""
    _rehash_from(0, actor_label="mallory")
    assert verify_chain() is None
    _verify_audit_fails(
        f"audit entry {anchored[-1].pk}: rewritten: the anchor of .* recorded {anchored[-1].hash} as entry number 5"
    )


def test_deleting_the_newest_entries_is_found_by_the_anchor(anchored):
    audit_triggers.drop(connection)
    _raw(f"DELETE FROM {TABLE} WHERE id >= %s", [anchored[3].pk])
    assert verify_chain() is None  # what remains is a perfect chain: only the anchor knows
    _verify_audit_fails("audit log: truncated: the log has 3 entries, but the anchor of .* counted 5")


def test_deleting_the_newest_entries_and_writing_new_ones_is_found_by_the_anchor(anchored, alice):
    audit_triggers.drop(connection)
    _raw(f"DELETE FROM {TABLE} WHERE id >= %s", [anchored[3].pk])
    audit_triggers.install(connection)
    for priority in (0, 3, 0):  # with the key, as the desk itself would write them
        do_change_case_priority(anchored[0].case, priority=priority, actor=Actor(user=alice))
    assert AuditEntry.objects.count() == 6 and verify_chain() is None
    fifth = AuditEntry.objects.order_by("id")[4]
    _verify_audit_fails(f"audit entry {fifth.pk}: rewritten: the anchor of .* as entry number 5")


def test_deleting_every_entry_is_found_by_the_anchor(anchored):
    audit_triggers.drop(connection)
    _raw(f"DELETE FROM {TABLE}")
    assert verify_chain() is None
    _verify_audit_fails("audit log: truncated: the log has 0 entries, but the anchor of .* counted 5")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no TRUNCATE")
def test_truncating_the_table_is_found_by_the_anchor(anchored):
    audit_triggers.drop(connection)
    _raw("SET CONSTRAINTS ALL IMMEDIATE")
    _raw(f"TRUNCATE {TABLE}")
    _verify_audit_fails("audit log: truncated: the log has 0 entries")


def test_entries_written_after_the_anchor_verify(anchored, alice, capsys, anchor_file):
    do_change_case_priority(anchored[0].case, priority=0, actor=Actor(user=alice))
    write_current_anchor()
    call_command("verify_audit")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"OK: 6 audit entries, last hash {AuditEntry.objects.order_by('id').last().hash}"
    assert out[-1] == f"anchors: 2 checked, from {anchor_file}"
