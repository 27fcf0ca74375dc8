"""Run processing again for failed messages or for given InboundMessage ids."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports.actions import do_process_inbound, do_reset_inbound
from reports.models import InboundMessage


class Command(BaseCommand):
    help = "Reprocess failed inbound messages (--failed) or the given ids, now, in this process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int)
        parser.add_argument("--failed", action="store_true", help="every message in state failed")

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[int] = list(options["ids"])
        if options["failed"]:
            ids += InboundMessage.objects.filter(state=InboundMessage.State.FAILED).values_list("pk", flat=True)
        if not ids:
            raise CommandError("give message ids or --failed")
        missing = set(ids) - set(InboundMessage.objects.filter(pk__in=ids).values_list("pk", flat=True))
        if missing:
            raise CommandError(f"no inbound message with id {', '.join(map(str, sorted(missing)))}")
        still_failed = 0
        for inbound_id in dict.fromkeys(ids):
            do_reset_inbound(inbound_id)
            message = do_process_inbound(inbound_id)
            self.stdout.write(f"#{inbound_id}: {message.state}{': ' + message.error if message.error else ''}")
            still_failed += message.state == InboundMessage.State.FAILED
        if still_failed:
            raise CommandError(f"{still_failed} message(s) still failed")
