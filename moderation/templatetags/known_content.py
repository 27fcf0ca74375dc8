"""Template tags of known content, for its include files (templates/moderation/includes/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import template

from moderation.known_content.actions import case_is_blocked
from moderation.known_content.forms import AddToBankForm
from moderation.known_content.queries import case_matches
from moderation.models import KnownContentMatch
from reports.models import Attachment, Case

register = template.Library()


@dataclass(frozen=True)
class KnownContent:
    """What the case page's known-content panel shows."""

    matches: list[KnownContentMatch]
    unhashed: list[Attachment]
    can_bank: bool
    form: AddToBankForm | None


@register.simple_tag(takes_context=True)
def known_content_of(context: template.Context, case: Case) -> KnownContent:
    """The case's matches and its images and videos without a PDQ hash (with why), in two queries;
    the add-to-bank form only for a lead on a blocked case."""
    can = context.get("can")
    can_bank = bool(can and can.lead) and case_is_blocked(case)
    unhashed = list(
        Attachment.objects.filter(report__case=case)
        .exclude(pdq_state__in=[Attachment.PdqState.HASHED, Attachment.PdqState.NOT_IMAGE])
        .order_by("pk")
    )
    form = context.get("add_to_bank_form") or (AddToBankForm() if can_bank else None)
    return KnownContent(case_matches(case), unhashed, can_bank, form)


@register.simple_tag
def known_content_tags(tags_by_case: dict[int, list[str]] | None, case: Case) -> list[Any]:
    """A queue row's "bank: label" tags, from the page's mapping (known_content.queries.tags_by_case)."""
    return (tags_by_case or {}).get(case.pk, [])
