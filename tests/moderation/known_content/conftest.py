"""Banks and cases with media, built through the real intake and the real actions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from moderation.actions import Actor
from moderation.known_content.actions import do_import_hashes
from moderation.known_content.lists import read_hash_list
from moderation.models import HashBank
from reports.models import Case, InboundMessage
from tests.images import mail_with_files

CLI = Actor(user=None, label="cli:import_hashes")


@pytest.fixture
def import_list(db: None) -> Callable[..., HashBank]:
    """Import CSV text into a bank as the command would, with after-commit work run (re-matching)."""

    def _import(csv_text: str, bank: str = "tcap", **defaults: str) -> HashBank:
        listed = read_hash_list(csv_text.encode(), filename="list.csv", **defaults)
        return do_import_hashes(bank, listed, filename="list.csv", actor=CLI).bank

    return _import


@pytest.fixture
def report_media(
    ingest: Callable[..., InboundMessage], django_capture_on_commit_callbacks: Callable[..., object]
) -> Callable[..., Case]:
    """A new report with these files, processed with its after-commit signal (so it is matched)."""

    def _report(*files: tuple[bytes, str, str], message_id: str = "<media-1@example.org>", **mail: str) -> Case:
        with django_capture_on_commit_callbacks(execute=True):  # type: ignore[attr-defined]
            message = ingest(mail_with_files(*files, message_id=message_id, **mail))
        return message.report.case

    return _report
