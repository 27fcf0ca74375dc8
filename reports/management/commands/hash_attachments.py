"""Give attachments stored before hashing existed their MD5 and PDQ hashes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from reports.mediahash import do_hash_attachment, pending_attachments
from reports.signals import attachments_hashed

BATCH = 200


class Command(BaseCommand):
    help = (
        "Hash every attachment still pending (MD5, and PDQ for raster images), in this process; each one "
        "records why it has no PDQ hash when it has none. Safe to run again: hashed ones are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=0, help="stop after this many (0: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = pending_attachments()
        if options["limit"] > 0:
            ids = ids[: options["limit"]]
        states: Counter[str] = Counter()
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            with transaction.atomic():
                for attachment_id in batch:
                    states[do_hash_attachment(attachment_id).pdq_state] += 1

                def announce(batch: list[int] = batch) -> None:
                    # Moderation matches them against the hash banks, after this batch commits.
                    attachments_hashed.send(sender=None, attachment_ids=batch)

                transaction.on_commit(announce, robust=True)
        summary = ", ".join(f"{state} {n}" for state, n in sorted(states.items())) or "nothing pending"
        self.stdout.write(f"hashed {len(ids)} attachment(s): {summary}")
