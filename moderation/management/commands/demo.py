"""Set up a trial desk: a demo moderator and demo mail fed through the real intake."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from moderation.demo import demo_messages
from reports.actions import do_process_inbound, do_store_inbound
from reports.models import InboundMessage

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-moderator"


class Command(BaseCommand):
    help = "Create the demo moderator and load demo reports through intake (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=DEMO_USERNAME,
            defaults={"is_staff": True, "is_superuser": True, "email": "demo@abusedesk.localhost"},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        stored = 0
        # Each run builds fresh Date headers; loading the demo once is enough.
        already = InboundMessage.objects.filter(source="demo").exists()
        for raw in [] if already else demo_messages():
            result = do_store_inbound(raw, source="demo", enqueue=False)
            if result.created:
                do_process_inbound(result.message.pk)
                stored += 1
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo desk ready: sign in at http://127.0.0.1:8000/ as {DEMO_USERNAME} / {DEMO_PASSWORD} "
                f"({stored} demo mails ingested)"
            )
        )
