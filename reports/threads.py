"""Where a new report goes: DESIGN's threading rules 2-5 (rule 1, redelivery, is in the threader).

The rules ask a ThreadIndex, which answers from rows fetched once for a whole batch of mail plus
what the batch has threaded so far, so they cost no query per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from reports.models import Case, Report


class ThreadIndex(Protocol):
    def our_mail(self, ref: str) -> tuple[int, Case] | None:
        """(reporter id, case) of a Message-ID we sent."""

    def their_mail(self, ref: str, reporter_id: int) -> tuple[int, Case] | None:
        """(reporter id, case) of this reporter's latest threaded report with this Message-ID, or
        else of the latest one by another reporter."""

    def case_by_reference(self, reference: str) -> Case | None: ...

    def is_on_case(self, case: Case, reporter_id: int) -> bool:
        """Did this reporter write to the case, or did we write to them about it?"""

    def latest_open_case(self, entity_ids: Sequence[int]) -> Case | None:
        """The most recently active open case about any of these entities."""

    def open_case_with_body(self, fingerprint: str) -> Case | None:
        """The open case that most recently got a report with this body fingerprint."""


@dataclass(frozen=True)
class CaseNote:
    """A note that names a case, rendered when it is written: a case opened earlier in the same
    batch has no reference until the batch is saved."""

    template: str
    case: Case

    def __str__(self) -> str:
        return self.template.format(case=self.case)


@dataclass
class ThreadDecision:
    case: Case | None
    kind: Report.Kind
    notes: list[str | CaseNote] = field(default_factory=list)


def _case_of_reference(
    index: ThreadIndex, reporter_id: int, refs: Sequence[str], notes: list[str | CaseNote]
) -> Case | None:
    """Rule 2: a reference to our reply to this sender, or to this sender's own earlier report."""
    # The nearest reference wins: In-Reply-To first, then References from the newest back.
    for ref in refs:
        ours = index.our_mail(ref)
        if ours is not None:
            if ours[0] == reporter_id:
                return ours[1]
            notes.append(CaseNote("Replies to our mail to another reporter on {case}; not attached.", ours[1]))
            continue
        theirs = index.their_mail(ref, reporter_id)
        if theirs is not None:
            if theirs[0] == reporter_id:
                return theirs[1]
            notes.append(CaseNote("References another reporter's mail on {case}; not attached.", theirs[1]))
    return None


def _case_of_token(
    index: ThreadIndex, reporter_id: int, valid: Sequence[str], invalid: Sequence[str], notes: list[str | CaseNote]
) -> Case | None:
    """Rule 3: a signed case token, honoured only for a reporter already on that case."""
    for reference in invalid:
        notes.append(f"Ignored a case token for {reference} with a bad signature.")
    for reference in valid:
        case = index.case_by_reference(reference)
        if case is None:
            continue
        if index.is_on_case(case, reporter_id):
            return case
        notes.append(f"Ignored a valid token for {reference}: the sender is not a reporter on that case.")
    return None


def decide_thread(
    index: ThreadIndex,
    *,
    reporter_id: int,
    refs: Sequence[str],
    valid_tokens: Sequence[str],
    invalid_tokens: Sequence[str],
    entity_ids: Sequence[int],
    body_fingerprint: str = "",
) -> ThreadDecision:
    """Apply rules 2-5 in order; a `None` case means "open a new one" (rule 5).

    Between rules 4 and 5, a report with the same body as a report in an open case joins that
    case (SECURITY T9: rotating senders with one text must not flood the queue with cases).
    """
    notes: list[str | CaseNote] = []
    case = _case_of_reference(index, reporter_id, refs, notes)
    if case is not None:
        return ThreadDecision(case, Report.Kind.FOLLOW_UP, notes)
    case = _case_of_token(index, reporter_id, valid_tokens, invalid_tokens, notes)
    if case is not None:
        return ThreadDecision(case, Report.Kind.FOLLOW_UP, notes)
    # Rule 4.
    case = index.latest_open_case(entity_ids)
    if case is None and body_fingerprint:
        case = index.open_case_with_body(body_fingerprint)
        if case is not None:
            notes.append(CaseNote("Same text as an earlier report on {case}; added to it.", case))
    return ThreadDecision(case, Report.Kind.REPORT, notes)
