"""Feed mail into the desk: one message on stdin (MTA pipe), or .eml/.msg files, an mbox, a Maildir.

Exit status: 0 when every message was stored (or was there already), 65 when stdin holds no
mail, 75 for anything else (manage.py turns every other failure into 75, including those before
this command runs), so an MTA defers and retries instead of bouncing the report.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from reports.actions import StoreResult, do_process_inbound, do_store_inbound, do_store_inbound_many
from reports.mbox import read_mbox
from reports.outlook import CONVERTED_FROM, NotAnOutlookMessage, convert_msg, is_outlook_file
from reports.timebox import ProcessingTimeout, time_limit

# sysexits.h: what an MTA pipe transport understands.
EX_OK, EX_DATAERR, EX_TEMPFAIL = 0, 65, 75
# Mail starts with a header field ("Name: value") or an mbox "From " line.
_LOOKS_LIKE_MAIL = re.compile(rb"^(?:From |[!-9;-~]{1,200}:)")
# Without --sync, files are stored in batches of this many messages or bytes, whichever comes
# first: one transaction per batch instead of one per message.
BATCH_MESSAGES = 200
BATCH_BYTES = 16 * 1024 * 1024


def looks_like_mail(data: bytes) -> bool:
    return bool(data.strip()) and bool(_LOOKS_LIKE_MAIL.match(data.lstrip(b"\r\n")[:300]))


class Command(BaseCommand):
    help = "Store mail and queue it for processing. Without arguments, reads one message from stdin."
    # An MTA pipe starts this command once per message: the system checks import every URLconf
    # (anymail's pulls in an SDK) and took 2 of the 3 seconds it cost to store one mail.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", help=".eml files, or Outlook .msg files (converted, original attached)")
        parser.add_argument("--mbox", action="append", default=[], help="an mbox file (repeatable)")
        parser.add_argument("--maildir", action="append", default=[], help="a Maildir folder (repeatable)")
        parser.add_argument("--sync", action="store_true", help="process each message now instead of queueing it")
        parser.add_argument("--source", default="", help="source label stored with each message")
        parser.add_argument("--sender", default="", help="envelope sender of the message on stdin (Postfix ${sender})")
        parser.add_argument(
            "--recipient",
            action="append",
            default=[],
            help="envelope recipient of the message on stdin (Postfix ${recipient}); the first is kept",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not (options["paths"] or options["mbox"] or options["maildir"]):
            sys.exit(self._from_stdin(options))
        self._from_files(options)

    def _from_stdin(self, options: dict[str, Any]) -> int:
        data = sys.stdin.buffer.read()
        converted_from = ""
        if is_outlook_file(data):
            try:
                data, converted_from = _converted(data, "message.msg"), CONVERTED_FROM
            except NotAnOutlookMessage as exc:
                self.stderr.write(f"ingest_mail: input is not a mail message: {exc}")
                return EX_DATAERR
        elif not looks_like_mail(data):
            self.stderr.write("ingest_mail: input is not a mail message (no header found)")
            return EX_DATAERR
        try:
            result = do_store_inbound(
                data,
                source=options["source"] or "pipe",
                envelope_sender=options["sender"],
                envelope_recipient=next(iter(options["recipient"]), ""),
                converted_from=converted_from,
                enqueue=not options["sync"],
            )
        except Exception as exc:
            # Nothing was stored: tell the MTA to keep the message and retry later.
            self.stderr.write(f"ingest_mail: could not store the message: {exc}")
            return EX_TEMPFAIL
        if options["sync"]:
            do_process_inbound(result.message.pk)
        return EX_OK

    def _messages(self, options: dict[str, Any]) -> Iterator[tuple[str, Callable[[], bytes]]]:
        """(label, loader) pairs: bytes are read only when the loop needs them, so a large
        message is not kept alive by the iterator while it is processed."""
        for name in options["paths"]:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"{name}: no such file")
            yield name, path.read_bytes
        for name in options["mbox"]:
            if not Path(name).is_file():
                raise CommandError(f"{name}: no such mbox file")
            with open(name, "rb") as file:
                try:
                    for index, data in enumerate(read_mbox(file)):
                        yield f"{name}#{index}", _already_read(data)
                except ValueError as exc:
                    raise CommandError(f"{name}: {exc}") from exc
        for name in options["maildir"]:
            yield from _maildir_messages(Path(name))

    def _from_files(self, options: dict[str, Any]) -> None:
        self.counts: Counter[str] = Counter()
        self.source = options["source"] or "cli"
        self.sync = options["sync"]
        pending: list[tuple[str, bytes]] = []
        pending_bytes = 0
        with tqdm(self._messages(options), unit="msg", disable=None, file=sys.stderr) as progress:
            for label, load in progress:
                data = load()
                if is_outlook_file(data):
                    # One at a time: rare, and the row records the conversion.
                    self._store_outlook(label, data)
                    continue
                if not looks_like_mail(data):
                    self.counts["not mail"] += 1
                    self.stderr.write(f"{label}: not a mail message, skipped")
                    continue
                if self.sync or len(data) >= BATCH_BYTES:
                    # Processing reads the stored copy; holding this one too, or a batch around a
                    # large message, would multiply the peak memory.
                    stored = self._store([(label, data)])
                    del data
                    if self.sync and stored is not None and stored.created:
                        self.counts[f"processed: {do_process_inbound(stored.message.pk).state}"] += 1
                    continue
                pending.append((label, data))
                pending_bytes += len(data)
                if len(pending) >= BATCH_MESSAGES or pending_bytes >= BATCH_BYTES:
                    self._store(pending)
                    pending, pending_bytes = [], 0
            self._store(pending)
        summary = ", ".join(f"{key} {value}" for key, value in sorted(self.counts.items()))
        self.stdout.write(f"ingest_mail: {summary or 'nothing to do'}")
        if self.counts["failed"]:
            raise CommandError(f"{self.counts['failed']} message(s) could not be stored")

    def _store_outlook(self, label: str, original: bytes) -> None:
        try:
            data = _converted(original, Path(label).name)
        except NotAnOutlookMessage as exc:
            self.counts["unreadable .msg"] += 1
            self.stderr.write(f"{label}: Outlook file not converted, skipped: {exc}")
            return
        try:
            result = do_store_inbound(data, source=self.source, converted_from=CONVERTED_FROM, enqueue=not self.sync)
        except Exception as exc:
            self.counts["failed"] += 1
            self.stderr.write(f"{label}: could not store: {exc}")
            return
        self.counts["stored" if result.created else "duplicates"] += 1
        self.counts["converted from .msg"] += 1
        if self.sync and result.created:
            self.counts[f"processed: {do_process_inbound(result.message.pk).state}"] += 1

    def _store(self, batch: list[tuple[str, bytes]]) -> StoreResult | None:
        """Store a batch and count the outcomes; returns the last message's result, if stored."""
        if not batch:
            return None
        results: list[StoreResult | Exception] = []
        if len(batch) > 1:
            try:
                results = list(do_store_inbound_many([data for _, data in batch], source=self.source))
            except Exception:
                results = []
        if not results:
            # One message at a time, so the summary says exactly which ones failed.
            for _, data in batch:
                try:
                    results.append(do_store_inbound(data, source=self.source, enqueue=not self.sync))
                except Exception as exc:
                    results.append(exc)
        for (label, _), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                self.counts["failed"] += 1
                self.stderr.write(f"{label}: could not store: {result}")
            else:
                self.counts["stored" if result.created else "duplicates"] += 1
        return results[-1] if isinstance(results[-1], StoreResult) else None


def _already_read(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _converted(original: bytes, filename: str) -> bytes:
    """The MIME conversion of an Outlook file, within the per-message time budget."""
    try:
        with time_limit(settings.ABUSEDESK_PROCESS_SECONDS):
            return convert_msg(original, filename=filename)
    except ProcessingTimeout as exc:
        raise NotAnOutlookMessage(f"conversion took longer than {settings.ABUSEDESK_PROCESS_SECONDS:g} s") from exc


def _maildir_messages(root: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """Messages of a Maildir's new/ and cur/, never following symlinks out of it."""
    if not (root / "cur").is_dir() and not (root / "new").is_dir():
        raise CommandError(f"{root}: not a Maildir (no cur/ or new/)")
    for sub in ("new", "cur"):
        folder = root / sub
        if not folder.is_dir() or folder.is_symlink():
            continue
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_symlink() or not entry.is_file(follow_symlinks=False) or entry.name.startswith("."):
                    continue
                yield str(folder / entry.name), Path(entry.path).read_bytes
