"""Import a hash list into a bank: `python manage.py import_hashes tcap.json --bank tcap`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from moderation.actions import Actor
from moderation.known_content.actions import do_import_hashes
from moderation.known_content.lists import ListFormatError, read_hash_list


class Command(BaseCommand):
    help = (
        "Import a CSV, JSON or JSON Lines list of MD5, SHA-256 or PDQ hashes into a bank (created if missing). "
        "Rejected rows are listed with their line numbers; importing the same list again adds nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--bank", required=True, help="the bank's name, e.g. tcap or gifct")
        parser.add_argument("--label", default="", help="label for rows that carry none")
        parser.add_argument("--source", default="", help="source for rows that name none")
        parser.add_argument("--imported-by", help="username of the lead the audit log names")

    def handle(self, *args: Any, **options: Any) -> None:
        user = None
        if options["imported_by"]:
            try:
                user = get_user_model().objects.get(username=options["imported_by"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"no user {options['imported_by']!r}") from None
        path: Path = options["file"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        try:
            listed = read_hash_list(data, filename=path.name, label=options["label"], source=options["source"])
            result = do_import_hashes(
                options["bank"],
                listed,
                filename=path.name,
                actor=Actor(user, label="" if user else "cli:import_hashes"),
            )
        except (ListFormatError, ValidationError) as exc:
            raise CommandError(f"{path}: {exc.args[0]}") from None
        for line, why in result.problems:
            self.stderr.write(f"{path}:{line}: {why}")
        if result.rejected > len(result.problems):
            self.stderr.write(f"... and {result.rejected - len(result.problems)} more rejected row(s)")
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(result.counts.items()))
        self.stdout.write(
            f"{result.bank.name}{' (new bank)' if result.bank_created else ''}: {result.added} added"
            f"{f' ({kinds})' if kinds else ''}, {result.already} already there, {result.rejected} rejected"
        )
