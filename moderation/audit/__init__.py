"""The audit log: one entry per moderator action, hash-chained, written in the action's transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from moderation.models import AuditAction, AuditEntry
from reports.models import Case, Entity, Report

GENESIS = "0" * 64
# Any constant works: it names the one advisory lock that serialises appends on PostgreSQL.
_CHAIN_LOCK = 0x4144_4155_4449_54


def _canonical(entry: AuditEntry) -> bytes:
    payload = {
        "created_at": entry.created_at.isoformat(),
        "actor": entry.actor_id,
        "actor_label": entry.actor_label,
        "action": entry.action,
        "case": entry.case_id,
        "entity": entry.entity_id,
        "report": entry.report_id,
        "data": entry.data,
        "ip": entry.ip,
        "prev_hash": entry.prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(_canonical(entry)).hexdigest()


def _lock_chain() -> str:
    """Serialise appenders and return the hash of the newest entry."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
    # On SQLite the IMMEDIATE transaction already holds the database's write lock.
    last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
    return last or GENESIS


def record(
    action: AuditAction,
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    actor_label: str = "",
    case: Case | None = None,
    entity: Entity | None = None,
    report: Report | None = None,
    data: dict[str, Any],
    ip: str | None = None,
) -> AuditEntry:
    """Append one entry; must run inside the transaction of the change it records."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record() must be called inside the action's transaction")
    user = actor if actor is not None and actor.is_authenticated else None
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
        prev_hash=_lock_chain(),
    )
    entry.hash = entry_hash(entry)
    entry.save(force_insert=True)
    return entry


@dataclass(frozen=True)
class ChainProblem:
    entry_id: int
    problem: str


def verify_chain(batch: int = 5000) -> ChainProblem | None:
    """The first entry that was altered, or whose predecessor is missing; None if the chain holds."""
    previous = GENESIS
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=batch):
        if entry.prev_hash != previous:
            return ChainProblem(entry.pk, "the entry before it is missing or was altered")
        if entry_hash(entry) != entry.hash:
            return ChainProblem(entry.pk, "its content does not match its hash")
        previous = entry.hash
    return None
