from __future__ import annotations

from django.test import Client

from moderation.actions import Actor, do_block_entity
from reports.models import Case


def _entity_url(case: Case) -> str:
    return f"/entities/{case.entities.get().public_id}/"


def test_entity_page_lists_cases_reports_and_block_history(as_auditor: Client, case: Case, lead) -> None:
    entity = case.entities.get()
    do_block_entity(entity, category="terrorism", statement="Posts executions.", actor=Actor(lead), case=case)
    response = as_auditor.get(_entity_url(case))
    assert response.status_code == 200
    content = response.content.decode()
    assert case.reference in content
    assert "Abuse report" in content
    assert "Posts executions." in content


def test_entity_page_reports_fragment_for_htmx(as_moderator: Client, case: Case) -> None:
    response = as_moderator.get(_entity_url(case) + "?reports=1", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section id="entity-reports"')


def test_entity_page_rejects_post(as_moderator: Client, case: Case) -> None:
    assert as_moderator.post(_entity_url(case)).status_code == 405


def test_entity_page_forbids_staff_without_a_role(as_mallory: Client, case: Case) -> None:
    assert as_mallory.get(_entity_url(case)).status_code == 403


def test_entity_page_redirects_anonymous_to_login(client: Client, case: Case) -> None:
    response = client.get(_entity_url(case))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_entity_page_is_not_found_by_sequential_id(as_moderator: Client, case: Case) -> None:
    assert as_moderator.get(f"/entities/{case.entities.get().pk}/").status_code == 404
