"""Revoke an API key for good: `python manage.py revoke_api_key enforcement-eu` (its name or its prefix)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from moderation.actions import Actor
from moderation.integrations.apikeys import do_revoke_api_key
from moderation.models import ApiKey


class Command(BaseCommand):
    help = (
        "Revoke an API key by its name or its prefix (the part of the key before the dot). It stops "
        "working at once and cannot be restored; revoking a revoked key changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="the key's name (enforcement-eu) or prefix (adk_1a2b3c4d)")
        parser.add_argument("--revoked-by", help="username of the staff member the audit log names")

    def handle(self, *args: Any, **options: Any) -> None:
        wanted: str = options["key"].strip()
        matches = list(ApiKey.objects.filter(Q(name=wanted) | Q(prefix=wanted)).order_by("pk"))
        if not matches:
            raise CommandError(f"no API key is named or prefixed {wanted!r}")
        if len(matches) > 1:
            # A name may look like another key's prefix; revoking the wrong one would be worse than asking.
            listed = ", ".join(f"{key.name!r} ({key.prefix})" for key in matches)
            raise CommandError(f"{wanted!r} names more than one key: {listed}; revoke one in admin instead")
        [key] = matches
        user = None
        if options["revoked_by"]:
            user = User.objects.filter(username=options["revoked_by"]).first()
            if user is None:
                raise CommandError(f"no user {options['revoked_by']!r}")
        actor = Actor(user, label="" if user else "cli:revoke_api_key")
        if do_revoke_api_key(key, actor=actor):
            self.stdout.write(f"Revoked API key {key.name!r} ({key.prefix}): requests with it now get 401.")
        else:
            key.refresh_from_db(fields=["revoked_at"])
            self.stdout.write(
                f"API key {key.name!r} ({key.prefix}) was revoked already, at {key.revoked_at}; nothing changed."
            )
