"""Reads of known content for the workspace; nothing here loads the PDQ index."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from moderation.known_content.actions import case_is_blocked
from moderation.known_content.forms import AddToBankForm
from moderation.models import KnownContentMatch
from reports.models import Attachment, Case


@dataclass(frozen=True)
class KnownContentPanel:
    """What the case page's known-content panel shows: the add-to-bank form only for a lead on a
    blocked case (None elsewhere)."""

    matches: list[KnownContentMatch]
    unhashed: list[Attachment]
    form: AddToBankForm | None


def panel(case: Case, *, lead: bool, form: AddToBankForm | None = None) -> KnownContentPanel:
    """The case's matches and its images and videos without a PDQ hash (with why); `form` is a
    submitted form coming back with its errors."""
    unhashed = list(
        Attachment.objects.filter(report__case=case)
        .exclude(pdq_state__in=[Attachment.PdqState.HASHED, Attachment.PdqState.NOT_IMAGE])
        .order_by("pk")
    )
    if form is None and lead and case_is_blocked(case):
        form = AddToBankForm()
    return KnownContentPanel(case_matches(case), unhashed, form)


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
