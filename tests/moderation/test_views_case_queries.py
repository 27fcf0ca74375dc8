"""How many SQL queries each request of the case page costs: every fragment alone, every write, and
the whole page. Each fragment's context builder loads only what the fragment shows, so a refresh of
one panel, or a write and the fragment it re-renders, no longer pays for the rest of the page.

Every request starts with four: the session, the user, the user's roles and the case. On
PostgreSQL an audit entry takes one more, the advisory lock that orders the chain (audit.record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from moderation.actions import Actor, do_add_note, do_block_entity, do_change_case_status
from moderation.models import AuditEntry, ReplyTemplate
from reports.models import Case, InboundMessage
from tests.mail import build_mail

HTMX = {"HX-Request": "true"}


def _audit_lock() -> int:
    return 1 if connection.vendor == "postgresql" else 0


@pytest.fixture
def worked_case(make_case: Callable[..., Case], ingest: Callable[..., InboundMessage], moderator: User) -> Case:
    """A case with something in every panel: two entities (one blocked by the moderator), two
    reports by two reporters, two notes, a decision and audit entries; and a second case to move to."""
    case = make_case("Both t.me/first_channel and t.me/second_channel post propaganda.", message_id="<two@example.org>")
    ingest(build_mail("Again t.me/first_channel", sender="Other <other@example.net>", message_id="<two-b@example.org>"))
    first = case.entities.order_by("url").first()
    do_block_entity(first, category="terrorism", statement="Propaganda.", actor=Actor(moderator), case=case)
    do_change_case_status(Case.objects.get(pk=case.pk), status=Case.Status.OPEN, actor=Actor(moderator))
    do_add_note(case, text="A note.", actor=Actor(moderator))
    do_add_note(case, text="Another.", actor=Actor(moderator))
    make_case("t.me/target_channel", message_id="<target@example.org>")
    return Case.objects.get(pk=case.pk)


# name: (partial or path suffix, query parameters, queries, fragment the response starts with)
FRAGMENT_GETS: dict[str, tuple[str, dict[str, str], int, str]] = {
    "case-header": ("", {"partial": "case-header"}, 5, '<section id="case-header"'),
    "entities-panel": ("", {"partial": "entities-panel"}, 6, '<section id="entities-panel"'),
    "known-content": ("", {"partial": "known-content"}, 6, '<section id="known-content"'),
    "timeline": ("", {"partial": "timeline", "reports": "1"}, 7, '<section id="timeline"'),
    "decision-panel": ("", {"partial": "decision-panel"}, 5, '<section id="decision-panel"'),
    "reply-composer": ("", {"partial": "reply-composer"}, 8, '<section id="reply-composer"'),
    "notes-panel": ("", {"partial": "notes-panel"}, 5, '<section id="notes-panel"'),
    "audit-trail": ("", {"partial": "audit-trail"}, 5, '<section id="audit-trail"'),
}


@pytest.mark.parametrize("name", FRAGMENT_GETS)
def test_each_fragment_loads_only_what_it_shows(
    as_moderator: Client, worked_case: Case, django_assert_num_queries: Any, name: str
) -> None:
    suffix, params, queries, root = FRAGMENT_GETS[name]
    with django_assert_num_queries(queries):
        response = as_moderator.get(f"/cases/{worked_case.reference}/{suffix}", params, headers=HTMX)
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith(root)


def test_the_whole_page_costs_its_fragments(
    as_moderator: Client, worked_case: Case, django_assert_num_queries: Any
) -> None:
    # 4 + header 1, entities 2, known content 2, timeline 3, decisions 1, composer 4, notes 1,
    # audit trail 1.
    with django_assert_num_queries(19):
        response = as_moderator.get(f"/cases/{worked_case.reference}/")
    content = response.content.decode()
    for fragment in (
        "case-header",
        "entities-panel",
        "known-content",
        "timeline",
        "decision-panel",
        "reply-composer",
        "notes-panel",
    ):
        assert f'<section id="{fragment}"' in content
    assert '<section id="audit-trail"' in content


def test_the_reply_preview_costs_the_composer_and_the_rendering(
    as_moderator: Client, worked_case: Case, django_assert_num_queries: Any
) -> None:
    template = ReplyTemplate.objects.filter(active=True).first()
    assert template is not None
    with django_assert_num_queries(12):
        response = as_moderator.get(
            f"/cases/{worked_case.reference}/reply/preview/", {"template": template.pk, "reporter": "all"}, headers=HTMX
        )
    assert 'class="preview"' in response.content.decode()


def _writes(case: Case) -> dict[str, tuple[str, dict[str, Any], int, bool]]:
    """name: (path suffix, form data, queries without the audit lock, whether it records an entry)."""
    first, second = case.entities.order_by("url")
    report = case.reports.order_by("id").first()
    assert report is not None
    target = Case.objects.exclude(pk=case.pk).get()
    template = ReplyTemplate.objects.filter(active=True).first()
    assert template is not None
    version = case.updated_at.isoformat()
    return {
        # Header writes: the action (savepoint, lock, update, chain head, insert, release), the
        # case again with the change, and the staff list of the assignee menu.
        "assign": ("assign/", {"assignee": "alice", "version": version}, 13, True),
        "status": ("status/", {"status": "waiting", "version": version}, 12, True),
        "priority": ("priority/", {"priority": "3", "version": version}, 12, True),
        "category": ("category/", {"category": "spam", "version": version}, 12, True),
        "status, invalid": ("status/", {"status": "actioned", "version": version}, 5, False),
        "block": (
            f"entities/{second.public_id}/block/",
            {"category": "spam", "statement": "S.", "version": version},
            18,
            True,
        ),
        "block, invalid": (f"entities/{second.public_id}/block/", {"category": "spam", "version": version}, 7, False),
        "unblock": (f"entities/{first.public_id}/unblock/", {"statement": "Appeal.", "version": version}, 16, True),
        "split": (f"entities/{second.public_id}/split/", {"version": version}, 26, True),
        "decline": ("decline/", {"reason": "no_violation", "statement": "Satire.", "version": version}, 13, True),
        "note": ("notes/", {"text": "Checked.", "version": version}, 13, True),
        "merge, invalid": ("merge/", {"into": "AD-999999", "version": version}, 6, False),
        "move": (f"reports/{report.public_id}/move/", {"to": target.reference, "version": version}, 27, True),
        "reply": ("reply/", {"template": template.pk, "reporter": "all", "version": version}, 37, True),
    }


WRITES = [
    "assign",
    "status",
    "priority",
    "category",
    "status, invalid",
    "block",
    "block, invalid",
    "unblock",
    "split",
    "decline",
    "note",
    "merge, invalid",
    "move",
    "reply",
]


@pytest.mark.parametrize("name", WRITES)
def test_each_write_renders_only_its_fragment(
    as_lead: Client, worked_case: Case, django_assert_num_queries: Any, name: str
) -> None:
    suffix, data, queries, records = _writes(worked_case)[name]
    before = AuditEntry.objects.count()
    with django_assert_num_queries(queries + (_audit_lock() if records else 0)):
        response = as_lead.post(f"/cases/{worked_case.reference}/{suffix}", data, headers=HTMX)
    assert response.status_code == 200
    assert AuditEntry.objects.count() == before + (1 if records else 0)


def test_a_write_without_htmx_only_redirects(
    as_lead: Client, worked_case: Case, django_assert_num_queries: Any
) -> None:
    # The write itself, then no rendering at all: the browser reloads the page.
    with django_assert_num_queries(10 + _audit_lock()):
        response = as_lead.post(f"/cases/{worked_case.reference}/status/", {"status": "waiting"})
    assert response.status_code == 302
