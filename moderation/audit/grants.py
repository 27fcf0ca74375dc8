"""The PostgreSQL role split that makes the audit log append-only against the desk itself.

The triggers refuse UPDATE, DELETE and TRUNCATE, but a table's owner may drop them, alter the
table or drop it. So two roles: the owner runs the migrations and owns every table; the desk's
web and worker processes connect as the application role, which may read and write the other
tables but may only INSERT and SELECT audit entries, and owns nothing. `manage.py audit_grants
--app-role ROLE` prints the statements (run as the owner), or applies them with --apply.
"""

from __future__ import annotations

from django.db import connection

from moderation.audit import triggers as audit_triggers

AUDIT_TABLE = audit_triggers.TABLE


def grant_statements(*, app_role: str, owner: str, database: str, schema: str = "public") -> list[str]:
    """What the owner runs once, and again after a migration that replaces the audit table."""
    quote = connection.ops.quote_name
    app, own, db, sch, audit = quote(app_role), quote(owner), quote(database), quote(schema), quote(AUDIT_TABLE)
    return [
        f"GRANT CONNECT ON DATABASE {db} TO {app}",
        f"GRANT USAGE ON SCHEMA {sch} TO {app}",
        # A role that may create objects in the schema could shadow a table; PostgreSQL 15 revokes
        # this from PUBLIC by default, older versions do not.
        f"REVOKE CREATE ON SCHEMA {sch} FROM PUBLIC",
        f"REVOKE CREATE ON SCHEMA {sch} FROM {app}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {sch} TO {app}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {sch} TO {app}",
        f"REVOKE ALL ON {audit} FROM {app}",
        f"GRANT SELECT, INSERT ON {audit} TO {app}",
        # Tables that later migrations create are granted the same way, without a rerun.
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {own} IN SCHEMA {sch} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {own} IN SCHEMA {sch} GRANT USAGE, SELECT ON SEQUENCES TO {app}",
    ]


def current_role() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        return str(cursor.fetchone()[0])


def audit_table_owner() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableowner FROM pg_tables WHERE tablename = %s", [AUDIT_TABLE])
        row = cursor.fetchone()
    return str(row[0]) if row else ""


def app_role_owns_audit_table() -> bool:
    """Whether this connection's role could drop the audit triggers: it owns the table, is a member
    of its owner, or is a superuser. Always False on SQLite, which has no roles."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = %s::regclass",
            [AUDIT_TABLE],
        )
        row = cursor.fetchone()
    return bool(row and row[0])
