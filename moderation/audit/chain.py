"""The audit log's hash chain: how an entry is hashed, and how the whole log is checked.

Each entry's `hash` covers its content and its predecessor's hash. Since the keyed chain, it is an
HMAC-SHA256 with the key named by the entry's `key_id` (settings.ABUSEDESK_AUDIT_KEYS): the key
lives in the environment, never in the database, so whoever can write the table but does not hold
the key cannot write an entry that verifies, nor re-hash the entries after one they altered.

Entries written before the switch have an empty `key_id` and a plain SHA-256. They form a prefix
of the log: the first keyed entry (the switch-over) covers the hash of the last unkeyed one, which
seals the unkeyed past under the key, and an unkeyed entry after it is refused as a downgrade.
Rotation: a new current key id makes later entries use the new key; retired keys stay configured
so that the entries they signed still verify.

What the chain alone cannot show is a log cut short at its newest end (or emptied): every entry
left still verifies. That is what the anchors (moderation/audit/anchors.py) are for.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings

from moderation.models import AuditEntry

if TYPE_CHECKING:
    from moderation.audit.anchors import Anchor

GENESIS = "0" * 64


def current_key_id() -> str:
    """The key new entries are written with; empty only where no key is configured (never in production)."""
    return str(getattr(settings, "ABUSEDESK_AUDIT_KEY_ID", ""))


def _keys() -> dict[str, str]:
    return dict(getattr(settings, "ABUSEDESK_AUDIT_KEYS", {}))


class UnknownKey(LookupError):
    """An entry names a key id that is not configured."""


def canonical(entry: AuditEntry) -> bytes:
    """The bytes an entry's hash covers: its content, its predecessor's hash and its key id."""
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
    if entry.key_id:
        # Bound into the MAC, so an entry cannot be passed off as signed by another key.
        payload["key_id"] = entry.key_id
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def entry_hash(entry: AuditEntry) -> str:
    """The hash `entry` must carry: HMAC-SHA256 with its key, or SHA-256 for an unkeyed entry.

    Raises UnknownKey when the entry's key id is not configured.
    """
    if not entry.key_id:
        return hashlib.sha256(canonical(entry)).hexdigest()
    secret = _keys().get(entry.key_id)
    if secret is None:
        raise UnknownKey(entry.key_id)
    return hmac.new(secret.encode(), canonical(entry), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    entry_id: int | None
    problem: str


@dataclass
class ChainReport:
    """What a check of the whole log found: its size and head, and the first problem if any."""

    count: int = 0
    head: str = GENESIS
    unkeyed: int = 0
    key_ids: list[str] = field(default_factory=list)
    anchors_checked: int = 0
    problem: ChainProblem | None = None


def check_chain(anchors: Iterable[Anchor] = (), *, batch: int = 5000) -> ChainReport:
    """Walk the log in id order; stop at the first altered, missing, downgraded or un-anchored entry.

    An anchor says "the log had `count` entries and the last one hashed to `head`". The log
    must still have at least that many entries, and its entry number `count` must still carry
    that hash: fewer entries is truncation, another hash there is rewriting.
    """
    # The same count and head written every few minutes while nothing happened is one claim; name
    # its first writing.
    unique: dict[tuple[int, str], Anchor] = {}
    for anchor in sorted(anchors, key=lambda a: a.at, reverse=True):
        unique[(anchor.count, anchor.head)] = anchor
    expected: dict[int, list[Anchor]] = {}
    for anchor in unique.values():
        expected.setdefault(anchor.count, []).append(anchor)
    report = ChainReport(anchors_checked=sum(len(group) for group in expected.values()))
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=batch):
        problem = _check_entry(entry, report)
        if problem is None:
            report.count += 1
            for anchor in expected.get(report.count, ()):
                if anchor.head != entry.hash:
                    problem = (
                        f"rewritten: the anchor of {anchor.at} recorded {anchor.head} as entry number "
                        f"{anchor.count}, which is no longer in the log"
                    )
                    break
        if problem is not None:
            report.problem = ChainProblem(entry.pk, problem)
            return report
        report.head = entry.hash
        if entry.key_id and entry.key_id not in report.key_ids:
            report.key_ids.append(entry.key_id)
        report.unkeyed += not entry.key_id
    beyond = [anchor for count, group in expected.items() if count > report.count for anchor in group]
    if beyond:
        anchor = max(beyond, key=lambda a: a.count)
        report.problem = ChainProblem(
            None,
            f"truncated: the log has {report.count} entries, but the anchor of {anchor.at} counted "
            f"{anchor.count} (last hash {anchor.head})",
        )
    return report


def _check_entry(entry: AuditEntry, report: ChainReport) -> str | None:
    if entry.prev_hash != report.head:
        return "the entry before it is missing or was altered"
    if not entry.key_id and report.key_ids:
        return "unkeyed entry after the chain switched to keyed hashes (a downgrade)"
    try:
        expected = entry_hash(entry)
    except UnknownKey:
        return f"its key id {entry.key_id!r} is not configured (ABUSEDESK_AUDIT_RETIRED_KEYS), so it cannot be verified"
    if not hmac.compare_digest(expected, entry.hash):
        return "its content does not match its hash"
    return None


def verify_chain(batch: int = 5000) -> ChainProblem | None:
    """The first entry that was altered, or whose predecessor is missing; None if the chain holds."""
    return check_chain(batch=batch).problem
