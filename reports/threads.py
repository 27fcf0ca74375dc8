"""Where a new report goes: DESIGN's threading rules 2-5 (rule 1, redelivery, is in actions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reports.models import Case, Entity, OutboundMessageId, Report, Reporter


@dataclass
class ThreadDecision:
    case: Case | None
    kind: Report.Kind
    notes: list[str] = field(default_factory=list)


def _case_of_reference(reporter: Reporter, refs: Sequence[str], notes: list[str]) -> Case | None:
    """Rule 2: a reference to our reply to this sender, or to this sender's own earlier report."""
    if not refs:
        return None
    # The nearest reference wins: In-Reply-To first, then References from the newest back.
    ours = {o.message_id: o for o in OutboundMessageId.objects.filter(message_id__in=refs).select_related("case")}
    theirs = {
        r.message_id: r
        for r in Report.objects.filter(message_id__in=refs, case__isnull=False).select_related("case").order_by("id")
    }
    for ref in refs:
        outbound = ours.get(ref)
        if outbound is not None:
            if outbound.reporter_id == reporter.pk:
                return outbound.case
            notes.append(f"Replies to our mail to another reporter on {outbound.case}; not attached.")
            continue
        earlier = theirs.get(ref)
        if earlier is not None:
            if earlier.reporter_id == reporter.pk:
                return earlier.case
            notes.append(f"References another reporter's mail on {earlier.case}; not attached.")
    return None


def _case_of_token(reporter: Reporter, valid: Sequence[str], invalid: Sequence[str], notes: list[str]) -> Case | None:
    """Rule 3: a signed case token, honoured only for a reporter already on that case."""
    for reference in invalid:
        notes.append(f"Ignored a case token for {reference} with a bad signature.")
    for reference in valid:
        case = Case.objects.filter(reference=reference).first()
        if case is None:
            continue
        on_case = (
            Report.objects.filter(case=case, reporter=reporter).exists()
            or OutboundMessageId.objects.filter(case=case, reporter=reporter).exists()
        )
        if on_case:
            return case
        notes.append(f"Ignored a valid token for {reference}: the sender is not a reporter on that case.")
    return None


def _open_case_of_entities(entities: Sequence[Entity]) -> Case | None:
    """Rule 4: the most recently active open case about any of the entities."""
    if not entities:
        return None
    return (
        Case.objects.filter(entities__in=entities, status__in=Case.OPEN_STATUSES)
        .order_by("-last_report_at", "-id")
        .first()
    )


def decide_thread(
    *,
    reporter: Reporter,
    refs: Sequence[str],
    valid_tokens: Sequence[str],
    invalid_tokens: Sequence[str],
    entities: Sequence[Entity],
) -> ThreadDecision:
    """Apply rules 2-5 in order; a `None` case means "open a new one"."""
    notes: list[str] = []
    case = _case_of_reference(reporter, refs, notes)
    if case is not None:
        return ThreadDecision(case, Report.Kind.FOLLOW_UP, notes)
    case = _case_of_token(reporter, valid_tokens, invalid_tokens, notes)
    if case is not None:
        return ThreadDecision(case, Report.Kind.FOLLOW_UP, notes)
    return ThreadDecision(_open_case_of_entities(entities), Report.Kind.REPORT, notes)
