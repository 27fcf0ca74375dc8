"""Reads of known content for the workspace; nothing here loads the PDQ index."""

from __future__ import annotations

from collections.abc import Iterable

from moderation.models import KnownContentMatch
from reports.models import Case


def case_matches(case: Case) -> list[KnownContentMatch]:
    """A case's known-content matches, newest first, with their attachments and hashes."""
    return list(
        KnownContentMatch.objects.filter(attachment__report__case=case).select_related("attachment", "banked_hash")
    )


def tags_by_case(case_ids: Iterable[int]) -> dict[int, list[str]]:
    """case id -> its distinct "bank: label" tags, for a page of the queue, in one query."""
    tags: dict[int, list[str]] = {}
    rows = (
        KnownContentMatch.objects.filter(attachment__report__case_id__in=list(case_ids))
        .values_list("attachment__report__case_id", "bank_name", "label")
        .distinct()
        .order_by("attachment__report__case_id", "bank_name", "label")
    )
    for case_id, bank_name, label in rows:
        tags.setdefault(case_id, []).append(f"{bank_name}: {label}" if label else bank_name)
    return tags
