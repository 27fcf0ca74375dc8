from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.contrib.auth.models import User
from django.http import QueryDict
from django.test import Client
from django.utils import timezone

from moderation.actions import Actor, do_assign_case, do_block_entity
from moderation.models import AuditAction, AuditEntry, Decision
from reports.models import Case, Entity

HTMX = {"HX-Request": "true"}


def _many_cases(make_case: Callable[..., Case], n: int) -> list[Case]:
    return [make_case(f"Spam from t.me/spam_channel_{i:03d}", message_id=f"<many-{i}@example.org>") for i in range(n)]


def test_queue_lists_open_cases_with_entities_and_counts(as_moderator: Client, case: Case) -> None:
    response = as_moderator.get("/")
    assert response.status_code == 200
    content = response.content.decode()
    assert case.reference in content
    assert "https://t.me/example_channel" in content
    assert response.context["counts"]["open"] == 1


def test_queue_fragment_for_htmx_is_the_results_only(as_moderator: Client, case: Case) -> None:
    response = as_moderator.get("/", {"q": "example_channel"}, headers=HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="queue-results"')
    assert case.reference in content


def test_queue_search_matches_report_text_and_reporter(as_moderator: Client, make_case: Callable[..., Case]) -> None:
    wanted = make_case("Beheading videos on t.me/first_channel", message_id="<a@example.org>")
    other = make_case("Fake shop t.me/second_channel", message_id="<b@example.org>", sender="x@other.example")
    by_text = [row.case.reference for row in as_moderator.get("/", {"q": "beheading"}).context["cases"]]
    by_reporter = [row.case.reference for row in as_moderator.get("/", {"q": "other.example"}).context["cases"]]
    assert by_text == [wanted.reference]
    assert by_reporter == [other.reference]


def test_queue_filters_mine_unassigned_and_blocked(as_moderator: Client, moderator: User, make_case) -> None:
    mine = make_case("t.me/first_channel", message_id="<a@example.org>")
    blocked = make_case("t.me/second_channel", message_id="<b@example.org>")
    do_assign_case(mine, assignee=moderator, actor=Actor(moderator))
    do_block_entity(blocked.entities.get(), category="spam", statement="spam", actor=Actor(moderator))

    def refs(**params: str) -> list[str]:
        return [row.case.reference for row in as_moderator.get("/", params).context["cases"]]

    assert refs(mine="on") == [mine.reference]
    assert refs(unassigned="on") == [blocked.reference]
    assert refs(blocked="on") == [blocked.reference]
    assert refs(kind=Entity.Kind.BOT) == []


def test_queue_pages_by_keyset_without_repeating_a_case(as_moderator: Client, make_case, monkeypatch) -> None:
    monkeypatch.setattr("moderation.views.queue.PAGE_SIZE", 2)
    cases = _many_cases(make_case, 5)
    seen: list[str] = []
    params: dict[str, str] = {"sort": "oldest"}
    while True:
        response = as_moderator.get("/", params)
        seen += [row.case.reference for row in response.context["cases"]]
        if not response.context["has_next"]:
            break
        params = QueryDict(response.context["next_query"]).dict()
    assert seen == [c.reference for c in cases]


def test_queue_query_count_does_not_grow_with_the_page(
    as_moderator: Client, make_case, django_assert_max_num_queries
) -> None:
    _many_cases(make_case, 3)
    with django_assert_max_num_queries(12) as few:
        as_moderator.get("/")
    for i in range(3, 15):
        make_case(f"t.me/more_channel_{i:03d}", message_id=f"<more-{i}@example.org>")
    with django_assert_max_num_queries(len(few.captured_queries)):
        as_moderator.get("/")


def test_the_results_fragment_loads_nothing_for_the_filter_bar(
    as_moderator: Client, make_case, django_assert_num_queries
) -> None:
    """A search or a filter change re-renders the results only: the counts (a pass over every
    case) and the language menu belong to the full page."""
    _many_cases(make_case, 3)
    # Session, user, roles; the page of cases, its entities, its languages, its known-content tags.
    with django_assert_num_queries(7):
        response = as_moderator.get("/", {"q": "spam"}, headers=HTMX)
    assert response.content.decode().lstrip().startswith('<div id="queue-results"')
    assert "counts" not in response.context
    # The full page adds the counts and the language menu.
    with django_assert_num_queries(9):
        response = as_moderator.get("/", {"q": "spam"})
    assert response.context["counts"]["open"] == 3


def test_the_filter_bar_is_rendered_from_its_form_with_counts(as_moderator: Client, case: Case) -> None:
    content = as_moderator.get("/", {"status": "all", "language": "en"}).content.decode()
    assert '<label for="filter-status">Status</label>' in content
    assert '<option value="all" selected>all (1)</option>' in content
    assert '<option value="open">open (new, open, waiting) (1)</option>' in content
    assert '<option value="en" selected>en</option>' in content
    assert '<label for="filter-unassigned">unassigned (1)</label>' in content
    # The search box keeps the id the "/" shortcut focuses.
    assert 'id="queue-search"' in content
    assert '<label for="queue-search">Search <kbd>/</kbd></label>' in content


def test_queue_rejects_post(as_moderator: Client) -> None:
    assert as_moderator.post("/").status_code == 405


def test_queue_forbids_staff_without_a_role(as_mallory: Client) -> None:
    assert as_mallory.get("/").status_code == 403


def test_queue_redirects_anonymous_to_login(client: Client, db: None) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_queue_sets_a_strict_csp(as_auditor: Client) -> None:
    policy = as_auditor.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def test_new_cases_banner_counts_cases_after_the_page_was_rendered(as_moderator: Client, case: Case) -> None:
    since = int((timezone.now() - timedelta(minutes=1)).timestamp())
    response = as_moderator.get("/queue/new/", {"since": since, "query": "status=open"}, headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert "1 new case" in content
    assert 'href="/?status=open"' in content


def test_new_cases_banner_forbids_staff_without_a_role(as_mallory: Client) -> None:
    assert as_mallory.get("/queue/new/").status_code == 403


def test_bulk_assign_to_me_records_one_entry_per_case(as_lead: Client, lead: User, make_case) -> None:
    cases = _many_cases(make_case, 2)
    response = as_lead.post("/queue/bulk/", {"cases": [c.reference for c in cases], "action": "assign_me"})
    assert response.status_code == 302
    entries = list(AuditEntry.objects.order_by("id"))
    assert [(e.action, e.actor, e.case, e.data) for e in entries] == [
        (AuditAction.CASE_ASSIGNED, lead, c, {"old": None, "new": lead.pk}) for c in cases
    ]


def test_bulk_block_blocks_every_entity_with_one_statement(as_lead: Client, lead: User, two_entity_case: Case) -> None:
    response = as_lead.post(
        "/queue/bulk/",
        {"cases": [two_entity_case.reference], "action": "block", "category": "terrorism", "statement": "Propaganda."},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="queue-results"')
    assert Decision.objects.filter(kind="block", statement="Propaganda.").count() == 2
    entries = AuditEntry.objects.order_by("id")
    assert [(e.action, e.actor, e.case, e.data["category"]) for e in entries] == [
        (AuditAction.ENTITY_BLOCKED, lead, two_entity_case, "terrorism")
    ] * 2


def test_bulk_decline_without_a_statement_changes_nothing(as_lead: Client, case: Case) -> None:
    response = as_lead.post(
        "/queue/bulk/", {"cases": [case.reference], "action": "decline", "reason": "duplicate"}, headers=HTMX
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert '<label for="bulk-action">action</label>' in content
    # The error sits under the field it is about.
    assert '<ul class="errorlist" id="bulk-statement_error"><li>Required for this action.</li></ul>' in content
    assert 'aria-describedby="bulk-statement_error"' in content
    assert not AuditEntry.objects.exists()


def test_bulk_forbids_a_moderator(as_moderator: Client, case: Case) -> None:
    response = as_moderator.post("/queue/bulk/", {"cases": [case.reference], "action": "assign_me"})
    assert response.status_code == 403
    assert not AuditEntry.objects.exists()


def test_bulk_forbids_an_auditor(as_auditor: Client, case: Case) -> None:
    assert as_auditor.post("/queue/bulk/", {"cases": [case.reference], "action": "assign_me"}).status_code == 403


def test_bulk_rejects_get(as_lead: Client) -> None:
    assert as_lead.get("/queue/bulk/").status_code == 405
