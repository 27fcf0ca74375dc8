"""Personas and mail helpers shared by the whole suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from reports.actions import do_process_inbound, do_store_inbound
from reports.models import InboundMessage

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Raw mail and attachments of a test land in its own temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


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
