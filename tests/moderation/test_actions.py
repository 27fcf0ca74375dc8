"""Every moderation action writes exactly one audit entry; a no-op or a refusal writes none."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from moderation.actions import (
    Actor,
    check_unblock_entity,
    do_add_note,
    do_assign_case,
    do_block_entity,
    do_change_case_category,
    do_change_case_priority,
    do_change_case_status,
    do_decline_case,
    do_merge_cases,
    do_move_report,
    do_split_entity,
    do_unblock_entity,
)
from moderation.models import AuditAction, AuditEntry, Decision, Note
from reports.models import Case, Entity, Report
from tests.moderation.replies.fixtures import (
    make_lead,
    make_moderator,
    only_entry,
    report_from,
)


@pytest.fixture
def report(ingest):
    return report_from(ingest, "Block t.me/first_channel and t.me/second_channel please.")


@pytest.fixture
def case(report):
    return report.case


@pytest.fixture
def entity(case):
    return case.entities.get(url__endswith="first_channel")


@pytest.fixture
def as_alice(alice):
    return Actor(user=make_moderator(alice), ip="192.0.2.7")


@pytest.fixture
def as_bob(bob):
    return Actor(user=make_moderator(bob), ip="192.0.2.8")


def _entry_fields(entry: AuditEntry) -> tuple:
    return entry.action, entry.actor, entry.case, entry.entity, entry.report


# --- assign ---


def test_assign_case_records_one_audit_entry(case, alice, bob, as_alice):
    assert do_assign_case(case, assignee=bob, actor=as_alice)
    entry = only_entry()
    assert _entry_fields(entry) == (AuditAction.CASE_ASSIGNED, alice, case, None, None)
    assert entry.data == {"old": None, "new": bob.pk}
    assert entry.ip == "192.0.2.7"
    assert Case.objects.get(pk=case.pk).assignee == bob


def test_assign_case_to_the_same_assignee_records_nothing(case, bob, as_alice):
    Case.objects.filter(pk=case.pk).update(assignee=bob)
    assert not do_assign_case(case, assignee=bob, actor=as_alice)
    assert not AuditEntry.objects.exists()


# --- status, priority, category ---


def test_change_case_status_records_one_audit_entry(case, alice, as_alice):
    assert do_change_case_status(case, status=Case.Status.WAITING, actor=as_alice)
    entry = only_entry()
    assert _entry_fields(entry) == (AuditAction.CASE_STATUS_CHANGED, alice, case, None, None)
    assert entry.data == {"old": "new", "new": "waiting"}


def test_change_case_status_to_the_same_status_records_nothing(case, as_alice):
    assert not do_change_case_status(case, status=Case.Status.NEW, actor=as_alice)
    assert not AuditEntry.objects.exists()


def test_change_case_status_refuses_actioned_and_declined(case, as_alice):
    for status in (Case.Status.ACTIONED, Case.Status.DECLINED):
        with pytest.raises(ValidationError):
            do_change_case_status(case, status=status, actor=as_alice)
    assert not AuditEntry.objects.exists()


def test_change_case_priority_records_one_audit_entry(case, alice, as_alice):
    assert do_change_case_priority(case, priority=Case.Priority.URGENT, actor=as_alice)
    entry = only_entry()
    assert _entry_fields(entry) == (AuditAction.CASE_PRIORITY_CHANGED, alice, case, None, None)
    assert entry.data == {"old": Case.Priority.NORMAL, "new": Case.Priority.URGENT}


def test_change_case_priority_to_the_same_priority_records_nothing(case, as_alice):
    assert not do_change_case_priority(case, priority=Case.Priority.NORMAL, actor=as_alice)
    with pytest.raises(ValidationError):
        do_change_case_priority(case, priority=9, actor=as_alice)
    assert not AuditEntry.objects.exists()


def test_change_case_category_records_one_audit_entry(case, alice, as_alice):
    assert do_change_case_category(case, category="fraud", actor=as_alice)
    entry = only_entry()
    assert _entry_fields(entry) == (AuditAction.CASE_CATEGORY_CHANGED, alice, case, None, None)
    assert entry.data == {"old": "", "new": "fraud"}


def test_change_case_category_to_the_same_category_records_nothing(case, as_alice):
    assert not do_change_case_category(case, category="", actor=as_alice)
    with pytest.raises(ValidationError):
        do_change_case_category(case, category="nonsense", actor=as_alice)
    assert not AuditEntry.objects.exists()


# --- block and unblock ---


def test_block_entity_records_one_audit_entry_and_a_decision(case, entity, alice, as_alice):
    decision = do_block_entity(
        entity, category="terrorism", statement="  Execution videos. ", case=case, actor=as_alice
    )
    assert decision is not None
    assert (decision.kind, decision.category, decision.statement, decision.actor) == (
        Decision.Kind.BLOCK,
        "terrorism",
        "Execution videos.",
        alice,
    )
    entry = only_entry()
    assert _entry_fields(entry) == (AuditAction.ENTITY_BLOCKED, alice, case, entity, None)
    assert entry.data == {
        "old": {"status": "active", "case_status": "new"},
        "new": {"status": "blocked", "case_status": "actioned"},
        "category": "terrorism",
        "statement": "Execution videos.",
        "decision": str(decision.public_id),
    }
    assert Entity.objects.get(pk=entity.pk).status == Entity.Status.BLOCKED
    assert Case.objects.get(pk=case.pk).status == Case.Status.ACTIONED


def test_block_of_a_blocked_entity_records_nothing(entity, as_alice):
    Entity.objects.filter(pk=entity.pk).update(status=Entity.Status.BLOCKED)
    assert do_block_entity(entity, category="spam", statement="again", actor=as_alice) is None
    assert not AuditEntry.objects.exists()
    assert not Decision.objects.exists()


def test_block_of_a_private_chat_is_refused(db, as_alice):
    now = timezone.now()
    chat = Entity.objects.create(
        url="https://t.me/c/1234567890", kind=Entity.Kind.PRIVATE_CHAT, first_seen=now, last_seen=now
    )
    with pytest.raises(ValidationError, match="private chats"):
        do_block_entity(chat, category="violence", statement="harassment", actor=as_alice)
    assert Entity.objects.get(pk=chat.pk).status == Entity.Status.ACTIVE
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("statement", ["", "   \n "])
def test_block_requires_a_statement_of_reasons(entity, as_alice, statement):
    with pytest.raises(ValidationError, match="statement of reasons"):
        do_block_entity(entity, category="spam", statement=statement, actor=as_alice)
    assert not AuditEntry.objects.exists()


def test_block_requires_a_known_category(entity, as_alice):
    with pytest.raises(ValidationError):
        do_block_entity(entity, category="", statement="why", actor=as_alice)
    assert not AuditEntry.objects.exists()


def _blocked_by(entity, actor):
    return do_block_entity(entity, category="spam", statement="spam", actor=actor)


def test_check_unblock_entity_allows_the_original_blocker(entity, as_alice):
    _blocked_by(entity, as_alice)
    check_unblock_entity(entity, actor=as_alice)


def test_check_unblock_entity_allows_a_lead(entity, bob, as_alice):
    _blocked_by(entity, as_alice)
    check_unblock_entity(entity, actor=Actor(user=make_lead(bob)))


def test_check_unblock_entity_refuses_another_moderator_and_the_system(entity, as_alice, as_bob):
    _blocked_by(entity, as_alice)
    with pytest.raises(PermissionDenied):
        check_unblock_entity(entity, actor=as_bob)
    with pytest.raises(PermissionDenied):
        check_unblock_entity(entity, actor=Actor(user=None, label="api"))


def test_unblock_entity_records_one_audit_entry(case, entity, alice, as_alice):
    _blocked_by(entity, as_alice)
    before = set(AuditEntry.objects.values_list("pk", flat=True))
    decision = do_unblock_entity(entity, statement="Appeal granted.", case=case, actor=as_alice)
    assert decision is not None and decision.kind == Decision.Kind.UNBLOCK
    entry = AuditEntry.objects.exclude(pk__in=before).get()
    assert _entry_fields(entry) == (AuditAction.ENTITY_UNBLOCKED, alice, case, entity, None)
    assert entry.data == {
        "old": {"status": "blocked"},
        "new": {"status": "active"},
        "statement": "Appeal granted.",
        "decision": str(decision.public_id),
    }
    assert Entity.objects.get(pk=entity.pk).status == Entity.Status.ACTIVE


def test_unblock_of_an_active_entity_records_nothing(entity, as_alice):
    assert do_unblock_entity(entity, statement="nothing to undo", actor=as_alice) is None
    assert not AuditEntry.objects.exists()


def test_unblock_by_another_moderator_is_refused_and_records_nothing(entity, as_alice, as_bob):
    _blocked_by(entity, as_alice)
    count = AuditEntry.objects.count()
    with pytest.raises(PermissionDenied):
        do_unblock_entity(entity, statement="I disagree", actor=as_bob)
    assert AuditEntry.objects.count() == count
    assert Entity.objects.get(pk=entity.pk).status == Entity.Status.BLOCKED


def test_unblock_requires_a_statement(entity, as_alice):
    _blocked_by(entity, as_alice)
    count = AuditEntry.objects.count()
    with pytest.raises(ValidationError):
        do_unblock_entity(entity, statement=" ", actor=as_alice)
    assert AuditEntry.objects.count() == count


# --- decline ---


def test_decline_case_records_one_audit_entry(case, alice, as_alice):
    decision = do_decline_case(case, reason="no_violation", statement="Satire.", actor=as_alice)
    assert decision is not None and decision.kind == Decision.Kind.DECLINE
    entry = only_entry()
    assert _entry_fields(entry) == (AuditAction.CASE_DECLINED, alice, case, None, None)
    assert entry.data == {
        "old": "new",
        "new": "declined",
        "reason": "no_violation",
        "statement": "Satire.",
        "decision": str(decision.public_id),
    }


def test_decline_of_a_declined_case_records_nothing(case, as_alice):
    Case.objects.filter(pk=case.pk).update(status=Case.Status.DECLINED)
    assert do_decline_case(case, reason="duplicate", statement="dup", actor=as_alice) is None
    assert not AuditEntry.objects.exists()


def test_decline_requires_a_statement_and_a_known_reason(case, as_alice):
    with pytest.raises(ValidationError):
        do_decline_case(case, reason="no_violation", statement="", actor=as_alice)
    with pytest.raises(ValidationError):
        do_decline_case(case, reason="bored", statement="x", actor=as_alice)
    assert not AuditEntry.objects.exists()
    assert Case.objects.get(pk=case.pk).status == Case.Status.NEW


# --- notes ---


def test_add_note_records_one_audit_entry(case, alice, as_alice):
    note = do_add_note(case, text=" Looks like the same network as AD-1. ", actor=as_alice)
    assert (note.text, note.author) == ("Looks like the same network as AD-1.", alice)
    entry = only_entry()
    assert _entry_fields(entry) == (AuditAction.CASE_NOTE_ADDED, alice, case, None, None)
    assert entry.data == {"old": None, "new": {"note": note.pk}}


def test_add_empty_note_records_nothing(case, as_alice):
    with pytest.raises(ValidationError):
        do_add_note(case, text="  ", actor=as_alice)
    with pytest.raises(ValidationError):
        do_add_note(case, text="system note", actor=Actor(user=None))
    assert not AuditEntry.objects.exists()
    assert not Note.objects.exists()


# --- move, merge, split ---


@pytest.fixture
def other_report(ingest, report):
    return report_from(
        ingest, "t.me/unrelated_channel sells drugs", sender="b@example.net", message_id="<b@example.net>"
    )


def test_move_report_records_one_audit_entry(report, other_report, alice, as_alice):
    source, target = report.case, other_report.case
    assert source != target
    assert do_move_report(other_report, to_case=source, actor=as_alice)
    entry = only_entry()
    assert _entry_fields(entry) == (AuditAction.REPORT_MOVED, alice, source, None, other_report)
    assert entry.data == {"old": target.reference, "new": source.reference}
    assert Report.objects.get(pk=other_report.pk).case == source
    assert Case.objects.get(pk=source.pk).report_count == 2
    assert Case.objects.get(pk=target.pk).report_count == 0
    assert source.entities.filter(url__endswith="unrelated_channel").exists()


def test_move_report_to_its_own_case_records_nothing(report, as_alice):
    assert not do_move_report(report, to_case=report.case, actor=as_alice)
    assert not AuditEntry.objects.exists()


def test_merge_cases_records_one_audit_entry(report, other_report, alice, as_alice):
    source, target = other_report.case, report.case
    assert do_merge_cases(source, into=target, actor=as_alice)
    entry = only_entry()
    assert _entry_fields(entry) == (AuditAction.CASE_MERGED, alice, target, None, None)
    assert entry.data == {
        "old": {"case": source.reference, "status": "new"},
        "new": {"merged_into": target.reference, "reports": [other_report.pk]},
    }
    source.refresh_from_db()
    assert (source.status, source.merged_into, source.report_count) == (Case.Status.DECLINED, target, 0)


def test_merge_cases_again_records_nothing(report, other_report, as_alice):
    do_merge_cases(other_report.case, into=report.case, actor=as_alice)
    assert not do_merge_cases(other_report.case, into=report.case, actor=as_alice)
    assert AuditEntry.objects.count() == 1


def test_merge_case_into_itself_is_refused(case, as_alice):
    with pytest.raises(ValidationError):
        do_merge_cases(case, into=case, actor=as_alice)
    assert not AuditEntry.objects.exists()


def test_split_entity_records_one_audit_entry(ingest, case, entity, alice, as_alice):
    only_first = report_from(
        ingest, "and t.me/first_channel again", sender="c@example.com", message_id="<c@example.com>"
    )
    assert only_first.case == case
    new_case = do_split_entity(case, entity=entity, actor=as_alice)
    entry = only_entry()
    assert _entry_fields(entry) == (AuditAction.ENTITY_SPLIT, alice, case, entity, None)
    assert entry.data == {"old": case.reference, "new": new_case.reference, "reports": [only_first.pk]}
    assert list(new_case.entities.all()) == [entity]
    assert not case.entities.filter(pk=entity.pk).exists()
    assert Report.objects.get(pk=only_first.pk).case == new_case


def test_split_of_the_only_entity_is_refused(ingest, as_alice):
    lone = report_from(ingest, "t.me/lonely_channel", sender="d@example.com", message_id="<d@example.com>")
    with pytest.raises(ValidationError):
        do_split_entity(lone.case, entity=lone.case.entities.get(), actor=as_alice)
    assert not AuditEntry.objects.exists()


def test_block_and_unblock_append_blocklist_changes_in_order_and_signal_after_commit(
    case, entity, lead, django_capture_on_commit_callbacks
):
    from moderation.models import BlocklistChange
    from moderation.signals import blocklist_changed

    heard: list[int] = []

    def listener(sender, change, **kwargs):
        heard.append(change.pk)

    blocklist_changed.connect(listener)
    try:
        actor = Actor(user=make_lead(lead))
        with django_capture_on_commit_callbacks(execute=True):
            do_block_entity(entity, category="terrorism", statement="propaganda", case=case, actor=actor)
        with django_capture_on_commit_callbacks(execute=True):
            do_unblock_entity(entity, statement="appeal granted", actor=actor)
    finally:
        blocklist_changed.disconnect(listener)
    changes = list(BlocklistChange.objects.values_list("pk", "kind", "category", "entity_id"))
    assert [c[1:] for c in changes] == [("block", "terrorism", entity.pk), ("unblock", "", entity.pk)]
    assert heard == [c[0] for c in changes]
