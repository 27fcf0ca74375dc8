"""Personas and mail helpers shared by the whole suite."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from moderation.audit import triggers as audit_triggers
from reports.actions import do_process_inbound, do_store_inbound
from reports.models import InboundMessage

DATA = Path(__file__).parent / "data"
_TRIGGERS_BLOCKER = pytest.StashKey[Any]()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Raw mail and attachments of a test land in its own temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _audit_triggers_around_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """A transactional test ends with Django's flush, which empties every table: with DELETE on
    SQLite and TRUNCATE on PostgreSQL, both of which the audit table refuses. Drop the append-only
    triggers just before it; `pytest_runtest_teardown` below puts them back once it is done."""
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" not in request.fixturenames and not (marker and marker.kwargs.get("transaction")):
        yield
        return
    # Requested here, so that its teardown (the flush) runs after this fixture's.
    request.getfixturevalue("transactional_db")
    audit_triggers.install(connection)
    request.node.stash[_TRIGGERS_BLOCKER] = request.getfixturevalue("django_db_blocker")
    yield
    audit_triggers.drop(connection)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    try:
        return (yield)
    finally:
        blocker = item.stash.get(_TRIGGERS_BLOCKER, None)
        # After the last test the test database is already gone with the session fixtures.
        if blocker is not None and nextitem is not None:
            with blocker.unblock():
                audit_triggers.install(connection)


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice", "alice@desk.example", "alice-password", is_staff=True)


@pytest.fixture
def bob(db: None) -> User:
    return User.objects.create_user("bob", "bob@desk.example", "bob-password", is_staff=True)


@pytest.fixture
def mallory(db: None) -> User:
    return User.objects.create_user("mallory", "mallory@evil.example", "mallory-password")


@pytest.fixture
def ingest(db: None) -> Callable[..., InboundMessage]:
    """Store raw mail through intake and process it now, as the q-cluster would."""

    def _ingest(raw: bytes, source: str = "cli") -> InboundMessage:
        stored = do_store_inbound(raw, source=source, enqueue=False)
        return do_process_inbound(stored.message.pk)

    return _ingest
