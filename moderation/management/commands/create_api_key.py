"""Create an API key: `python manage.py create_api_key enforcement --scope blocklist`; prints it once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from moderation.actions import Actor
from moderation.integrations.apikeys import do_create_api_key
from moderation.models import ApiKey


class Command(BaseCommand):
    help = "Create a scoped API key for an integration and print it. It is stored hashed: copy it now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the integration's name, e.g. enforcement-eu")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            required=True,
            choices=ApiKey.Scope.values,
            help="repeat for several scopes",
        )
        parser.add_argument("--created-by", help="username of the staff member the audit log names")

    def handle(self, *args: Any, **options: Any) -> None:
        user = None
        if options["created_by"]:
            try:
                user = get_user_model().objects.get(username=options["created_by"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"no user {options['created_by']!r}") from None
        actor = Actor(user, label="" if user else "cli:create_api_key")
        try:
            key, plaintext = do_create_api_key(options["name"], scopes=options["scopes"], actor=actor)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stderr.write(f"Created API key {key.name!r} ({key.prefix}) with scopes {', '.join(key.scopes)}.")
        self.stderr.write("It is shown only this once; send it as 'Authorization: Bearer <key>'.")
        self.stdout.write(plaintext)
