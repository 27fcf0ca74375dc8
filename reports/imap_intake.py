"""IMAP intake: store every message of a mailbox folder that we have not marked yet, then mark it.

A message is marked (keyword, or moved to the done folder) only after `do_store_inbound`
committed, so a crash at any point leaves it for the next poll; a second store of the same bytes
is a no-op, which makes redelivery harmless.
"""

from __future__ import annotations

import imaplib
import ipaddress
import logging
import re
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from reports.actions import do_store_inbound

logger = logging.getLogger(__name__)

STORED_KEYWORD = "$AbusedeskStored"
TIMEOUT_SECONDS = 60
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


class ImapError(Exception):
    """The server refused something or the mailbox cannot be used as configured."""


@dataclass(frozen=True)
class MailboxUrl:
    tls: bool
    host: str
    port: int
    username: str
    password: str
    folder: str

    def __str__(self) -> str:
        # Never print the password.
        return f"{'imaps' if self.tls else 'imap'}://{self.username}@{self.host}:{self.port}/{self.folder}"


def parse_mailbox_url(url: str, *, default_folder: str) -> MailboxUrl:
    """`imap[s]://user:pass@host[:port][/FOLDER]`; user and password may be percent-encoded."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps"):
        raise ImapError("the mailbox URL must start with imap:// or imaps://")
    try:
        port = parts.port
    except ValueError as exc:
        raise ImapError(f"bad port in the mailbox URL: {exc}") from None
    if not parts.hostname or parts.username is None or parts.password is None:
        raise ImapError("the mailbox URL needs user, password and host: imap[s]://user:pass@host/FOLDER")
    tls = parts.scheme == "imaps"
    return MailboxUrl(
        tls=tls,
        host=parts.hostname,
        port=port or (993 if tls else 143),
        username=unquote(parts.username),
        password=unquote(parts.password),
        folder=unquote(parts.path.lstrip("/")) or default_folder,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect(mailbox: MailboxUrl) -> imaplib.IMAP4:
    """Log in over TLS: imaps, or STARTTLS on imap. Plain text is allowed to loopback only."""
    context = ssl.create_default_context()
    client: imaplib.IMAP4
    if mailbox.tls:
        client = imaplib.IMAP4_SSL(mailbox.host, mailbox.port, ssl_context=context, timeout=TIMEOUT_SECONDS)
    else:
        client = imaplib.IMAP4(mailbox.host, mailbox.port, timeout=TIMEOUT_SECONDS)
        if "STARTTLS" in client.capabilities:
            client.starttls(context)
        elif not _is_loopback(mailbox.host):
            client.shutdown()
            raise ImapError(f"{mailbox.host} offers no STARTTLS; use imaps:// rather than send the password in clear")
    client.login(mailbox.username, mailbox.password)
    # Servers announce MOVE and UIDPLUS only after login, and imaplib keeps the pre-login list.
    data = _check(client.capability(), "CAPABILITY")
    client.capabilities = tuple(data[0].decode("ascii", "replace").upper().split())
    return client


def quote(name: str) -> str:
    """A mailbox name as an IMAP quoted string (imaplib sends arguments verbatim)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def has_capability(client: imaplib.IMAP4, name: str) -> bool:
    return name in client.capabilities


def _check(response: tuple[str, list], what: str) -> list:
    status, data = response
    if status != "OK":
        raise ImapError(f"{what} failed: {data!r}")
    return data


def _select(client: imaplib.IMAP4, folder: str, *, keyword_needed: bool) -> None:
    _check(client.select(quote(folder)), f"SELECT {folder}")
    if keyword_needed:
        flags = client.untagged_responses.get("PERMANENTFLAGS", [b""])[-1] or b""
        if b"\\*" not in flags:
            raise ImapError(f"{folder} cannot keep custom keywords; use a done folder instead")


def _sizes(client: imaplib.IMAP4, uids: list[bytes]) -> dict[bytes, int]:
    sizes: dict[bytes, int] = {}
    # Batches keep the command line short of server limits (Dovecot: 64 KiB).
    for start in range(0, len(uids), 500):
        message_set = b",".join(uids[start : start + 500]).decode()
        for line in _check(client.uid("FETCH", message_set, "(RFC822.SIZE)"), "FETCH RFC822.SIZE"):
            text = (line[0] if isinstance(line, tuple) else line) or b""
            uid, size = _UID.search(text), _SIZE.search(text)
            if uid and size:
                sizes[uid.group(1)] = int(size.group(1))
    return sizes


def _fetch(client: imaplib.IMAP4, uid: bytes) -> bytes | None:
    """The message's exact bytes, or None if it was expunged meanwhile."""
    # BODY.PEEK leaves \Seen alone: nothing about the message changes before it is stored.
    data = _check(client.uid("FETCH", uid.decode(), "(BODY.PEEK[])"), f"FETCH UID {uid.decode()}")
    # One UID was asked for, so the one literal is its body (servers differ in where they put UID).
    bodies = [item[1] for item in data if isinstance(item, tuple) and b"BODY[]" in item[0]]
    return bodies[0] if len(bodies) == 1 else None


def _mark(client: imaplib.IMAP4, uid: bytes, done_folder: str) -> None:
    message_set = uid.decode()
    if not done_folder:
        _check(
            client.uid("STORE", message_set, "+FLAGS.SILENT", f"(\\Seen {STORED_KEYWORD})"),
            "STORE",
        )
    elif has_capability(client, "MOVE"):
        _check(client.uid("MOVE", message_set, quote(done_folder)), "MOVE")
    else:
        _check(client.uid("COPY", message_set, quote(done_folder)), "COPY")
        _check(
            client.uid("STORE", message_set, "+FLAGS.SILENT", "(\\Deleted)"),
            "STORE \\Deleted",
        )
        if has_capability(client, "UIDPLUS"):
            _check(client.uid("EXPUNGE", message_set), "UID EXPUNGE")
        else:
            # Without UIDPLUS, EXPUNGE also removes other \Deleted messages of this folder.
            _check(client.expunge(), "EXPUNGE")


def poll(
    client: imaplib.IMAP4,
    *,
    folder: str,
    done_folder: str,
    max_bytes: int,
    should_stop: Callable[[], bool] = lambda: False,
) -> Counter[str]:
    """Store and mark every unmarked message of `folder`; count what happened to each."""
    counts: Counter[str] = Counter()
    if done_folder:
        _check(
            client.status(quote(done_folder), "(MESSAGES)"),
            f"done folder {done_folder!r} (create it first)",
        )
    _select(client, folder, keyword_needed=not done_folder)
    criteria = "UNDELETED" if done_folder else f"UNDELETED UNKEYWORD {STORED_KEYWORD}"
    uids = (_check(client.uid("SEARCH", criteria), "SEARCH")[0] or b"").split()
    sizes = _sizes(client, uids) if uids else {}
    for uid in uids:
        if should_stop():
            break
        size = sizes.get(uid, 0)
        raw = None if size > max_bytes else _fetch(client, uid)
        if raw is not None:
            size = len(raw)
        if size > max_bytes:
            logger.warning(
                "imap: %s UID %s has %d bytes (limit %d); left unmarked for a human",
                folder,
                uid.decode(),
                size,
                max_bytes,
            )
            counts["too large"] += 1
            continue
        if raw is None:
            continue  # expunged by someone else since the search
        try:
            result = do_store_inbound(raw, source="imap")
        except Exception:
            logger.exception(
                "imap: could not store %s UID %s; it stays unmarked",
                folder,
                uid.decode(),
            )
            counts["failed"] += 1
            continue
        counts["stored" if result.created else "duplicates"] += 1
        _mark(client, uid, done_folder)
    return counts
