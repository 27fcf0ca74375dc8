"""Database triggers that make the audit table append-only (installed by migrations 0002 and 0010;
`install` is idempotent and always installs the full set)."""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "moderation_auditentry"
MESSAGE = "audit entries are append-only"

_POSTGRES_INSTALL = [
    f"""CREATE OR REPLACE FUNCTION {TABLE}_refuse() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION '{MESSAGE}'; END
        $$ LANGUAGE plpgsql""",
    f"""CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse()""",
    # TRUNCATE fires no row trigger: without this, one statement (or a TRUNCATE ... CASCADE of a
    # table the log refers to) would empty the log, and an empty chain verifies.
    f"""CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_refuse()""",
]
_POSTGRES_DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
]
_SQLITE_INSTALL = [
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_{verb} BEFORE {verb.upper()} ON {TABLE}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"""
    for verb in ("update", "delete")
]
_SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {TABLE}_no_{verb}" for verb in ("update", "delete")]


def _run(connection: BaseDatabaseWrapper, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def install(connection: BaseDatabaseWrapper) -> None:
    if connection.vendor == "postgresql":
        _run(connection, _POSTGRES_DROP + _POSTGRES_INSTALL)
    elif connection.vendor == "sqlite":
        _run(connection, _SQLITE_INSTALL)
    else:
        raise NotImplementedError(f"no append-only triggers for {connection.vendor}")


def drop(connection: BaseDatabaseWrapper) -> None:
    """Only for test teardown, where Django's flush must empty every table."""
    _run(connection, _POSTGRES_DROP if connection.vendor == "postgresql" else _SQLITE_DROP)
