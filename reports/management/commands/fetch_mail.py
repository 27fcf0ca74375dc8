"""Poll an IMAP mailbox and store its new mail; for desks that cannot receive SMTP or webhooks."""

from __future__ import annotations

import argparse
import contextlib
import imaplib
import signal
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from reports.imap_intake import ImapError, MailboxUrl, connect, parse_mailbox_url, poll


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the interval must be positive")
    return seconds


class Command(BaseCommand):
    help = (
        "Store every message of an IMAP folder not yet marked by us, then mark it: with \\Seen and "
        "$AbusedeskStored, or by moving it to the done folder. Polls until SIGINT/SIGTERM unless --once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            default=settings.ABUSEDESK_IMAP_URL,
            help="imap[s]://user:pass@host[:port][/FOLDER] (default: ABUSEDESK_IMAP_URL; folder: ABUSEDESK_IMAP_FOLDER)",
        )
        when = parser.add_mutually_exclusive_group()
        when.add_argument(
            "--once",
            action="store_true",
            help="poll once; exit non-zero if a message could not be stored",
        )
        when.add_argument(
            "--interval",
            type=_seconds,
            default=60.0,
            help="seconds between polls (default 60)",
        )
        parser.add_argument(
            "--done-folder",
            default=settings.ABUSEDESK_IMAP_DONE_FOLDER,
            help="move stored messages to this existing folder instead of flagging them "
            "(default: ABUSEDESK_IMAP_DONE_FOLDER)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["url"]:
            raise CommandError("fetch_mail: no mailbox; pass --url or set ABUSEDESK_IMAP_URL")
        try:
            mailbox = parse_mailbox_url(options["url"], default_folder=settings.ABUSEDESK_IMAP_FOLDER)
        except ImapError as exc:
            raise CommandError(f"fetch_mail: {exc}") from None
        done_folder: str = options["done_folder"]
        if options["once"]:
            counts = self._poll(mailbox, done_folder, should_stop=lambda: False)
            if counts["failed"]:
                raise CommandError(f"fetch_mail: {counts['failed']} message(s) could not be stored; they stay unmarked")
            return

        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.is_set():
            try:
                self._poll(mailbox, done_folder, should_stop=stop.is_set)
            except CommandError as exc:
                # A server or network outage: report it and try again at the next poll.
                self.stderr.write(str(exc))
            finally:
                # A long-lived process: drop a database connection that broke or aged out meanwhile.
                close_old_connections()
            stop.wait(options["interval"])

    def _poll(self, mailbox: MailboxUrl, done_folder: str, *, should_stop: Callable[[], bool]) -> Counter[str]:
        """One session: connect, store and mark, log out; prints one summary line."""
        try:
            client = connect(mailbox)
            try:
                counts = poll(
                    client,
                    folder=mailbox.folder,
                    done_folder=done_folder,
                    max_bytes=settings.ABUSEDESK_MAX_RAW_BYTES,
                    should_stop=should_stop,
                )
            finally:
                with contextlib.suppress(OSError, imaplib.IMAP4.error):
                    client.logout()
        except (OSError, imaplib.IMAP4.error, ImapError) as exc:
            raise CommandError(f"fetch_mail: {mailbox}: {exc}") from exc
        summary = ", ".join(f"{key} {counts[key]}" for key in ("stored", "duplicates", "too large", "failed"))
        self.stdout.write(f"fetch_mail: {mailbox}: {summary}")
        self.stdout.flush()
        return counts
