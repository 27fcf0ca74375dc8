"""Print or apply the PostgreSQL grants of the role split: `python manage.py audit_grants --app-role abusedesk`.

Run it connected as the owner, the role that runs migrations and owns the tables (see
moderation/audit/grants.py and the README's audit section).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from moderation.audit.grants import audit_table_owner, current_role, grant_statements


class Command(BaseCommand):
    help = "Print (or --apply) the grants that let the application role append to the audit log but not alter it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--app-role", required=True, help="The role the web and worker processes connect as.")
        parser.add_argument("--apply", action="store_true", help="Run the statements instead of printing them.")

    def handle(self, *args: Any, app_role: str, apply: bool, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("the role split is for PostgreSQL; SQLite has no roles")
        owner = current_role()
        if audit_table_owner() != owner:
            raise CommandError(
                f"connected as {owner!r}, but the audit table belongs to {audit_table_owner()!r}: run this as "
                "the owner (the role that runs migrations)"
            )
        if app_role == owner:
            raise CommandError("the application role must not be the owner: the owner can drop the audit triggers")
        statements = grant_statements(app_role=app_role, owner=owner, database=connection.settings_dict["NAME"])
        if not apply:
            self.stdout.write(";\n".join(statements) + ";")
            return
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(f"granted: {app_role} may SELECT and INSERT audit entries, and owns nothing")
