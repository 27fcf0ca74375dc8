"""SMTP/LMTP intake: an aiosmtpd handler that stores each message before acknowledging it.

The raw bytes are stored exactly as aiosmtpd hands them over (dot-unstuffed, CRLF line ends). We
add no Received or Return-Path header: the envelope goes into its own columns, and a prepended
header with a timestamp would change the sha256 of every retry, so a client that resends after a
lost 250 would create a second message instead of hitting the dedupe in `do_store_inbound`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.db import close_old_connections, connections

from reports.actions import do_store_inbound

logger = logging.getLogger(__name__)

# RFC 5321 4.5.3.1.8: servers must accept at least 100 recipients; we never need more.
MAX_RECIPIENTS = 100


def _normalise(address: str) -> str:
    return address.strip().casefold()


class IntakeHandler:
    """Accepts mail for the abuse address and stores it through `do_store_inbound`.

    Storage runs on one dedicated thread, so the Django connection it opens has a known owner
    that `close()` can shut at exit, and SQLite sees one writer at a time.
    """

    def __init__(self, *, address: str, extra_recipients: Iterable[str] = ()) -> None:
        local, _, domain = _normalise(address).rpartition("@")
        self._local, self._domain = local, domain
        self._extra = {_normalise(a) for a in extra_recipients if a.strip()}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp-store")
        self.in_flight = 0

    def accepts(self, recipient: str) -> bool:
        """The abuse address, its plus-addresses (`abuse+token@`) and the configured extras."""
        address = _normalise(recipient)
        if address in self._extra:
            return True
        local, _, domain = address.rpartition("@")
        return domain == self._domain and (local == self._local or local.startswith(self._local + "+"))

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not self.accepts(address):
            return "550 5.1.1 No such mailbox here"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        sender = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        recipient = envelope.rcpt_tos[0]
        self.in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            message_id = await loop.run_in_executor(self._executor, _store, raw, sender, recipient)
        except Exception:
            logger.exception("smtp: could not store a message from %r for %r", sender, recipient)
            status = "451 4.3.0 Could not store the message, try again later"
        else:
            logger.info(
                "smtp: stored %d bytes from %r (peer %s) for %r as inbound %s",
                len(raw),
                sender,
                session.peer,
                recipient,
                message_id,
            )
            status = f"250 2.0.0 OK stored as {message_id}"
        finally:
            self.in_flight -= 1
        if isinstance(server, LMTP):
            # LMTP answers once per accepted recipient (RFC 2033 4.2); all share the one stored copy.
            return "\r\n".join([status] * len(envelope.rcpt_tos))
        return status

    def close(self) -> None:
        """Wait for a store in progress, then close the storage thread's database connection."""
        self._executor.submit(connections.close_all).result()
        self._executor.shutdown(wait=True)


def _store(raw: bytes, sender: str, recipient: str) -> int:
    # Like a request cycle: drop a connection that is broken or past CONN_MAX_AGE on both sides,
    # so a database restart costs one 451, not every message until the process restarts.
    close_old_connections()
    try:
        result = do_store_inbound(raw, source="smtp", envelope_sender=sender, envelope_recipient=recipient)
    finally:
        close_old_connections()
    return result.message.pk


class _LongLines:
    """aiosmtpd answers "500 Line too long" to a DATA line over 1,000 bytes (RFC 5321's limit,
    which real mail breaks: HTML-only 8-bit bodies, long headers); the webhook path accepts such
    mail, so here the size limit alone bounds a line. aiosmtpd sizes its stream reader from
    `line_length_limit` in __init__, so it is set before that runs; the reader buffers at most
    this much of a line, as it buffers the message up to the size limit anyway."""

    line_length_limit: int

    def __init__(self, *args: Any, max_line: int, **kwargs: Any) -> None:
        self.line_length_limit = max_line
        super().__init__(*args, **kwargs)


class IntakeSMTP(_LongLines, SMTP):
    pass


class IntakeLMTP(_LongLines, LMTP):
    pass


def server_factory(handler: IntakeHandler, *, lmtp: bool, max_bytes: int, hostname: str) -> SMTP:
    """One protocol instance per connection; `data_size_limit` gives both SIZE and the 552."""
    server_class = IntakeLMTP if lmtp else IntakeSMTP
    return server_class(
        handler,
        max_line=max_bytes + len(b"\r\n"),
        data_size_limit=max_bytes,
        enable_SMTPUTF8=True,
        hostname=hostname,
        ident="abusedesk",
    )
