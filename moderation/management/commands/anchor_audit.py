"""Anchor the audit log now: `python manage.py anchor_audit` (the q-cluster does it every 5 minutes).

Useful before a backup or an upgrade, or from cron where no q-cluster runs.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from moderation.audit.anchors import AnchorFailed, current_anchor, write_anchor


class Command(BaseCommand):
    help = "Write the audit log's count and head hash to every place in ABUSEDESK_AUDIT_ANCHORS."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.ABUSEDESK_AUDIT_ANCHORS:
            raise CommandError("ABUSEDESK_AUDIT_ANCHORS is not set: there is nowhere to write the anchor")
        anchor = current_anchor()
        try:
            written = write_anchor(anchor, settings.ABUSEDESK_AUDIT_ANCHORS)
        except AnchorFailed as exc:
            raise CommandError(f"anchor not written everywhere: {exc}") from None
        self.stdout.write(f"anchored {anchor.count} entries, head {anchor.head}, in {written} places")
