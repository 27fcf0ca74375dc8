"""Receive mail for the abuse address over SMTP or LMTP (behind the MTA, usually on loopback)."""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports.smtp_intake import IntakeHandler, server_factory

# honcho and systemd follow SIGTERM with SIGKILL after about 5 s: finish stores in progress
# well before that. A store cut off anyway is safe, since the client never saw a 250 and retries.
GRACE_SECONDS = 3.0


class Command(BaseCommand):
    help = "Run an SMTP (or LMTP) server that stores mail for the abuse address; stops on SIGINT/SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.ABUSEDESK_SMTP_HOST, help="address to listen on")
        parser.add_argument(
            "--port",
            type=int,
            default=settings.ABUSEDESK_SMTP_PORT,
            help="port (0 picks a free one)",
        )
        parser.add_argument(
            "--lmtp",
            action="store_true",
            help="speak LMTP (one answer per recipient) instead of SMTP",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        handler = IntakeHandler(
            address=settings.ABUSEDESK_ADDRESS,
            extra_recipients=settings.ABUSEDESK_SMTP_RECIPIENTS,
        )
        try:
            asyncio.run(self._serve(handler, options["host"], options["port"], lmtp=options["lmtp"]))
        finally:
            handler.close()
        self.stdout.write("smtpd: stopped")

    async def _serve(self, handler: IntakeHandler, host: str, port: int, *, lmtp: bool) -> None:
        loop = asyncio.get_running_loop()
        # Resolved once: aiosmtpd would otherwise look the name up again for every connection.
        hostname = socket.getfqdn()
        try:
            server = await loop.create_server(
                lambda: server_factory(
                    handler,
                    lmtp=lmtp,
                    max_bytes=settings.ABUSEDESK_MAX_RAW_BYTES,
                    hostname=hostname,
                ),
                host=host,
                port=port,
            )
        except OSError as exc:
            raise CommandError(f"smtpd: cannot listen on {host}:{port}: {exc}") from exc
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        bound = server.sockets[0].getsockname()
        self.stdout.write(f"smtpd: {'LMTP' if lmtp else 'SMTP'} listening on {bound[0]}:{bound[1]}")
        self.stdout.flush()
        await stop.wait()
        server.close()
        deadline = loop.time() + GRACE_SECONDS
        while handler.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.05)
        # Returning lets asyncio.run cancel the remaining sessions; their clients retry later.
