"""Feed mail into the desk: one message on stdin (MTA pipe), or .eml files, an mbox, a Maildir."""

from __future__ import annotations

import mailbox
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from reports.actions import do_process_inbound, do_store_inbound

# sysexits.h: what an MTA pipe transport understands.
EX_OK, EX_DATAERR, EX_TEMPFAIL = 0, 65, 75
# Mail starts with a header field ("Name: value") or an mbox "From " line.
_LOOKS_LIKE_MAIL = re.compile(rb"^(?:From |[!-9;-~]{1,200}:)")


def looks_like_mail(data: bytes) -> bool:
    return bool(data.strip()) and bool(_LOOKS_LIKE_MAIL.match(data.lstrip(b"\r\n")[:300]))


class Command(BaseCommand):
    help = "Store mail and queue it for processing. Without arguments, reads one message from stdin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", help=".eml files")
        parser.add_argument("--mbox", action="append", default=[], help="an mbox file (repeatable)")
        parser.add_argument("--maildir", action="append", default=[], help="a Maildir folder (repeatable)")
        parser.add_argument("--sync", action="store_true", help="process each message now instead of queueing it")
        parser.add_argument("--source", default="", help="source label stored with each message")

    def handle(self, *args: Any, **options: Any) -> None:
        if not (options["paths"] or options["mbox"] or options["maildir"]):
            sys.exit(self._from_stdin(options))
        self._from_files(options)

    def _from_stdin(self, options: dict[str, Any]) -> int:
        data = sys.stdin.buffer.read()
        if not looks_like_mail(data):
            self.stderr.write("ingest_mail: input is not a mail message (no header found)")
            return EX_DATAERR
        try:
            result = do_store_inbound(data, source=options["source"] or "pipe", enqueue=not options["sync"])
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
            box = mailbox.mbox(name, create=False)
            for key in box.iterkeys():
                yield f"{name}#{key}", partial(box.get_bytes, key)
        for name in options["maildir"]:
            yield from _maildir_messages(Path(name))

    def _from_files(self, options: dict[str, Any]) -> None:
        counts: Counter[str] = Counter()
        source = options["source"] or "cli"
        with tqdm(self._messages(options), unit="msg", disable=None, file=sys.stderr) as progress:
            for label, load in progress:
                data = load()
                if not looks_like_mail(data):
                    counts["not mail"] += 1
                    self.stderr.write(f"{label}: not a mail message, skipped")
                    continue
                try:
                    result = do_store_inbound(data, source=source, enqueue=not options["sync"])
                except Exception as exc:
                    counts["failed"] += 1
                    self.stderr.write(f"{label}: could not store: {exc}")
                    continue
                counts["stored" if result.created else "duplicates"] += 1
                # Processing reads the stored copy; holding this one too would double the peak
                # memory of a large message.
                del data
                if options["sync"] and result.created:
                    state = do_process_inbound(result.message.pk).state
                    counts[f"processed: {state}"] += 1
        summary = ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))
        self.stdout.write(f"ingest_mail: {summary or 'nothing to do'}")
        if counts["failed"]:
            raise CommandError(f"{counts['failed']} message(s) could not be stored")


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
