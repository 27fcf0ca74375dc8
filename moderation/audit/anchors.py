"""Anchors: the audit log's size and head hash, written outside the database on a schedule.

The chain shows an entry altered or removed from the middle, but a log cut short at its newest
end, or emptied, still verifies. An anchor written somewhere the database's users cannot reach
pins the log as it was: later, the log must still have at least that many entries, and the
anchored head must still be the entry at that position (moderation/audit/chain.py checks both).
Entries written after the newest anchor are covered only by the key; the schedule (every 5
minutes, migration 0013) bounds that window.

Places (settings.ABUSEDESK_AUDIT_ANCHORS):
- `file:/var/lib/abusedesk/audit-anchors.jsonl`: one JSON line appended per anchor and fsynced.
  Make it append-only to the desk's user (`chattr +a`) or keep it on another host's mount.
- `syslog:` (the local /dev/log), `syslog:/path/to/socket` (a Unix datagram socket) or
  `syslog://host:514` (UDP): one message `abusedesk-audit: <JSON>`, for a log host to keep.
- `https://...`: POSTed as JSON, signed like enforcement webhooks (`X-Abusedesk-Signature`, with
  ABUSEDESK_AUDIT_ANCHOR_SECRET), through the SSRF-guarded client of moderation/integrations/outbound.py.
verify_audit reads the `file:` places itself; anchors kept elsewhere are given to it as a file of
the same JSON lines (`verify_audit --anchors FILE`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import syslog
import urllib.parse
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from moderation.audit.chain import GENESIS
from moderation.integrations.outbound import post, signature_header
from moderation.models import AuditEntry

logger = logging.getLogger(__name__)

KIND = "abusedesk.audit-anchor"
SYSLOG_TAG = "abusedesk-audit"
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Anchor:
    """The log had `count` entries; the newest, `head_id`, hashed to `head` with key `key_id`."""

    count: int
    head: str
    head_id: int | None
    key_id: str
    at: str

    def to_json(self) -> str:
        return json.dumps({"type": KIND, **asdict(self)}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Anchor:
        """Parse one anchor; ValueError when the text is not one."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("type") != KIND:
            raise ValueError("not an audit anchor")
        count, head, head_id = data.get("count"), data.get("head"), data.get("head_id")
        if not isinstance(count, int) or count < 0:
            raise ValueError("count must be a non-negative integer")
        if not isinstance(head, str) or len(head) != 64 or not set(head) <= _HEX:
            raise ValueError("head must be 64 hex digits")
        if head_id is not None and not isinstance(head_id, int):
            raise ValueError("head_id must be an integer or null")
        return cls(count, head, head_id, str(data.get("key_id", "")), str(data.get("at", "")))


def current_anchor() -> Anchor:
    """The log as it is now. Appends are serialised and their ids committed in order (record()),
    so the entries up to the head are exactly the head's position."""
    head = AuditEntry.objects.order_by("-id").values("id", "hash", "key_id").first()
    at = timezone.now().isoformat()
    if head is None:
        return Anchor(0, GENESIS, None, "", at)
    count = AuditEntry.objects.filter(id__lte=head["id"]).count()
    return Anchor(count, head["hash"], head["id"], head["key_id"], at)


class AnchorFailed(Exception):
    """An anchor could not be written to one or more places; the message names them."""


def write_anchor(anchor: Anchor, places: Iterable[str]) -> int:
    """Write `anchor` to every place; the number written. Tries them all, then raises AnchorFailed
    naming each that failed, so a broken place shows as a failed task without hiding the others."""
    written, failures = 0, []
    for place in places:
        try:
            _write(anchor, place)
        except (OSError, ValueError) as exc:
            failures.append(f"{_display(place)}: {exc}")
        else:
            written += 1
    if failures:
        raise AnchorFailed("; ".join(failures))
    return written


def _display(place: str) -> str:
    # An http place may carry credentials in its userinfo; never log them.
    parts = urllib.parse.urlsplit(place)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl() if "@" in parts.netloc else place


def _write(anchor: Anchor, place: str) -> None:
    parts = urllib.parse.urlsplit(place)
    if parts.scheme == "file":
        append_line(Path(urllib.parse.unquote(parts.path)), anchor.to_json())
    elif parts.scheme == "syslog":
        _send_syslog(parts, f"{SYSLOG_TAG}: {anchor.to_json()}")
    elif parts.scheme in ("http", "https"):
        _post(place, anchor.to_json().encode())
    else:
        raise ValueError("unknown kind of place (file:, syslog:, http:, https:)")


def append_line(path: Path, line: str) -> None:
    """Append one line and make it durable before returning (and the file's name, if it is new)."""
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _send_syslog(parts: urllib.parse.SplitResult, message: str) -> None:
    # RFC 3164 framing as syslog daemons accept it from local programs: "<PRI>tag: text".
    data = f"<{syslog.LOG_AUTH | syslog.LOG_NOTICE}>{message}".encode()
    if parts.hostname:
        family = socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.sendto(data, (parts.hostname, parts.port or 514))
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, parts.path or "/dev/log")


def _post(url: str, body: bytes) -> None:
    secret = settings.ABUSEDESK_AUDIT_ANCHOR_SECRET
    if not secret:
        raise ValueError("ABUSEDESK_AUDIT_ANCHOR_SECRET is not set")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "abusedesk",
        "X-Abusedesk-Event": KIND,
        "X-Abusedesk-Signature": signature_header(secret, body, timestamp=int(timezone.now().timestamp())),
    }
    outcome = post(url, body, headers)
    if not outcome.ok:
        raise OSError(outcome.error or f"answered {outcome.status_code}")


def file_places(places: Iterable[str]) -> list[Path]:
    """The configured places verify_audit can read back itself."""
    return [
        Path(urllib.parse.unquote(urllib.parse.urlsplit(place).path))
        for place in places
        if urllib.parse.urlsplit(place).scheme == "file"
    ]


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor in a file of anchor lines (a syslog line's prefix before the JSON is skipped).
    ValueError names the first line that is not an anchor: a damaged anchor file is itself news."""
    anchors = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            start = line.find("{")
            try:
                anchors.append(Anchor.from_json(line[start:] if start >= 0 else line))
            except ValueError as exc:
                raise ValueError(f"{path}, line {number}: {exc}") from None
    return anchors


def write_current_anchor() -> int:
    """The scheduled task's work: anchor the log as it is now in every configured place."""
    places = settings.ABUSEDESK_AUDIT_ANCHORS
    if not places and not settings.DEBUG:
        logger.warning("ABUSEDESK_AUDIT_ANCHORS is not set: the audit log is not anchored outside the database")
    return write_anchor(current_anchor(), places)
