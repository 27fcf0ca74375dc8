"""Check the audit log: `python manage.py verify_audit [--anchors FILE ...]`; exits 1 on the first problem.

The chain finds an entry altered, re-hashed without the key, or removed from the middle; the
anchors (every `file:` place of ABUSEDESK_AUDIT_ANCHORS, and each --anchors file) find a log cut
short at its newest end or emptied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from moderation.audit import check_chain
from moderation.audit.anchors import Anchor, file_places, read_anchors
from moderation.audit.grants import app_role_owns_audit_table


class Command(BaseCommand):
    help = "Verify the audit log's keyed hash chain against the anchors kept outside the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--anchors",
            action="append",
            default=[],
            type=Path,
            metavar="FILE",
            help="A file of anchor lines kept elsewhere (from syslog or a webhook receiver); repeatable.",
        )

    def handle(self, *args: Any, anchors: list[Path], **options: Any) -> None:
        sources = [*file_places(settings.ABUSEDESK_AUDIT_ANCHORS), *anchors]
        known: list[Anchor] = []
        for source in sources:
            try:
                known.extend(read_anchors(source))
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read anchors: {exc}", returncode=1) from None
        report = check_chain(known)
        if report.problem is not None:
            where = f"audit entry {report.problem.entry_id}" if report.problem.entry_id else "audit log"
            raise CommandError(f"{where}: {report.problem.problem}", returncode=1)
        self.stdout.write(f"OK: {report.count} audit entries, last hash {report.head}")
        keyed = report.count - report.unkeyed
        if report.key_ids:
            self.stdout.write(f"keyed: {keyed} entries, key ids {', '.join(report.key_ids)}")
        if report.unkeyed:
            self.stdout.write(f"unkeyed: {report.unkeyed} entries from before the audit key was set")
        if sources:
            self.stdout.write(f"anchors: {report.anchors_checked} checked, from {', '.join(map(str, sources))}")
        else:
            self.stderr.write(
                "warning: no anchors to check (ABUSEDESK_AUDIT_ANCHORS): a log cut short at its newest "
                "end would go unnoticed"
            )
        if app_role_owns_audit_table():
            self.stderr.write(
                "warning: this database role owns the audit table, so it can drop its triggers; "
                "see manage.py audit_grants"
            )
