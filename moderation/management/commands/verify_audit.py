"""Check the audit log's hash chain: `python manage.py verify_audit`; exits 1 on the first problem."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.audit import GENESIS, verify_chain
from moderation.models import AuditEntry


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and report the first altered or missing entry."

    def handle(self, *args: Any, **options: Any) -> None:
        problem = verify_chain()
        if problem is not None:
            raise CommandError(f"audit entry {problem.entry_id}: {problem.problem}", returncode=1)
        count = AuditEntry.objects.count()
        last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS
        # Keep the last hash somewhere else: a deletion of the newest entries only shows against it.
        self.stdout.write(f"OK: {count} audit entries, last hash {last}")
