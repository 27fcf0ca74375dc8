"""The audit log: one entry per moderator action, hash-chained, written in the action's transaction.

The chain and its verification are in moderation/audit/chain.py, the anchors kept outside the
database in anchors.py, the append-only triggers in triggers.py and the PostgreSQL role split in
grants.py.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from moderation.audit.chain import GENESIS, ChainProblem, check_chain, current_key_id, entry_hash, verify_chain
from moderation.models import AuditAction, AuditEntry
from reports.models import Case, Entity, Report

__all__ = ["GENESIS", "ChainProblem", "check_chain", "entry_hash", "record", "verify_chain"]

# Any constant works: it names the one advisory lock that serialises appends on PostgreSQL.
_CHAIN_LOCK = 0x4144_4155_4449_54


def _lock_chain() -> tuple[str, str]:
    """Serialise appenders and return the hash and key id of the newest entry."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
    # On SQLite the IMMEDIATE transaction already holds the database's write lock.
    last = AuditEntry.objects.order_by("-id").values_list("hash", "key_id").first()
    return last or (GENESIS, "")


def record(
    action: AuditAction,
    *,
    actor: User | AnonymousUser | None,
    actor_label: str = "",
    case: Case | None = None,
    entity: Entity | None = None,
    report: Report | None = None,
    data: dict[str, Any],
    ip: str | None = None,
) -> AuditEntry:
    """Append one entry, keyed with the current audit key; must run inside the transaction of the
    change it records. Without a key it refuses to follow a keyed entry (that would be a downgrade)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record() must be called inside the action's transaction")
    user = actor if actor is not None and actor.is_authenticated else None
    prev_hash, prev_key_id = _lock_chain()
    key_id = current_key_id()
    if prev_key_id and not key_id:
        raise ImproperlyConfigured("ABUSEDESK_AUDIT_KEY is not set, and the audit log is keyed")
    entry = AuditEntry(
        created_at=timezone.now(),
        actor=user,
        actor_label=actor_label or (user.get_username() if user else "system"),
        action=action,
        case=case,
        entity=entity,
        report=report,
        data=json.loads(json.dumps(data, default=str)),
        ip=ip,
        prev_hash=prev_hash,
        key_id=key_id,
    )
    entry.hash = entry_hash(entry)
    entry.save(force_insert=True)
    return entry
