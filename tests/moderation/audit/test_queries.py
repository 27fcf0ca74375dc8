"""One audit-log query with one meaning per filter: the audit page, its CSV and the API agree."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from moderation.actions import Actor, do_add_note, do_block_entity, do_change_case_status
from moderation.audit.queries import AuditFilters, audit_entries
from moderation.integrations.apikeys import hash_secret
from moderation.models import ApiKey, AuditEntry
from reports.models import Case, Entity


@pytest.fixture
def logged(make_case: Callable[..., Case], lead: User, moderator: User) -> dict[str, Any]:
    """Two cases, two entities, three actions by two people."""
    first = make_case("Both t.me/alpha_channel and t.me/bravo_channel post propaganda.")
    second = make_case("Spam from t.me/charlie_channel", message_id="<second@example.org>")
    alpha = first.entities.get(url="https://t.me/alpha_channel")
    do_block_entity(alpha, category="terrorism", statement="Executions.", actor=Actor(lead), case=first)
    do_change_case_status(second, status=Case.Status.OPEN, actor=Actor(moderator))
    do_add_note(second, text="Looked at it.", actor=Actor(lead))
    return {"first": first, "second": second, "alpha": alpha}


@pytest.fixture
def audit_api() -> Client:
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name="auditor-tool",
        prefix=f"adk_{secrets.token_hex(4)}",
        secret_hash=hash_secret(secret),
        scopes=["audit"],
        created_at=timezone.now(),
    )
    return Client(headers={"Authorization": f"Bearer {key.prefix}.{secret}"})


def _ids(filters: AuditFilters) -> list[int]:
    return list(audit_entries(filters).values_list("id", flat=True))


def test_a_case_reference_matches_in_any_letter_case(logged: dict[str, Any]) -> None:
    second: Case = logged["second"]
    expected = list(AuditEntry.objects.filter(case=second).order_by("-id").values_list("id", flat=True))
    assert len(expected) == 2
    for spelling in (second.reference, second.reference.lower(), f" {second.reference.title()} "):
        assert _ids(AuditFilters(case=spelling)) == expected


@pytest.mark.parametrize(
    "spelling",
    [
        "https://t.me/alpha_channel",
        "t.me/Alpha_Channel",
        "@ALPHA_CHANNEL",
        "https://telegram.me/s/alpha_channel/12",
        "hxxps://t[.]me/alpha_channel",
        "tg://resolve?domain=alpha_channel",
    ],
)
def test_an_entity_matches_by_any_spelling_of_its_link(logged: dict[str, Any], spelling: str) -> None:
    alpha: Entity = logged["alpha"]
    assert _ids(AuditFilters(entity=spelling)) == [AuditEntry.objects.get(entity=alpha).pk]


@pytest.mark.parametrize("spelling", ["alpha", "example.com/alpha_channel", "t.me/+15551234567"])
def test_an_entity_filter_that_names_no_entity_is_an_error_not_an_empty_answer(db: None, spelling: str) -> None:
    with pytest.raises(ValidationError) as raised:
        audit_entries(AuditFilters(entity=spelling))
    assert list(raised.value.message_dict) == ["entity"]


def test_since_and_until_are_inclusive(logged: dict[str, Any]) -> None:
    first = AuditEntry.objects.order_by("id").first()
    assert first is not None
    at = first.created_at
    assert first.pk in _ids(AuditFilters(since=at, until=at))
    assert first.pk not in _ids(AuditFilters(since=at + timedelta(microseconds=1)))
    assert first.pk not in _ids(AuditFilters(until=at - timedelta(microseconds=1)))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"case": "{second}"},
        {"case": "{second_lower}"},
        {"entity": "T.ME/ALPHA_CHANNEL"},
        {"entity": "hxxps://t[.]me/alpha_channel"},
        {"action": "entity.blocked"},
        {"actor": "lena-lead"},
        {"actor": "lena-lead", "case": "{second_lower}"},
    ],
)
def test_the_audit_page_its_csv_and_the_api_answer_the_same_question_the_same_way(
    logged: dict[str, Any], as_lead: Client, audit_api: Client, params: dict[str, str]
) -> None:
    reference = logged["second"].reference
    params = {name: value.format(second=reference, second_lower=reference.lower()) for name, value in params.items()}
    page = as_lead.get("/audit/", params)
    assert page.status_code == 200
    on_page = [entry.pk for entry in page.context["entries"]]
    answer = audit_api.get("/api/v1/audit/", params)
    assert answer.status_code == 200
    in_api = [entry["id"] for entry in answer.json()["results"]]
    export = as_lead.get("/audit/export.csv", params)
    in_csv = [int(line.split(",", 1)[0]) for line in b"".join(export.streaming_content).decode().splitlines()[1:]]
    assert on_page == in_api == in_csv
    assert on_page, "each question has an answer here"


def test_the_audit_page_takes_whole_days_in_the_desks_time_zone(logged: dict[str, Any], as_lead: Client) -> None:
    today = timezone.localdate()
    every = list(AuditEntry.objects.order_by("-id").values_list("id", flat=True))

    def listed(**params: str) -> list[int]:
        return [entry.pk for entry in as_lead.get("/audit/", params).context["entries"]]

    assert listed(since=today.isoformat(), until=today.isoformat()) == every
    assert listed(until=(today - timedelta(days=1)).isoformat()) == []
    assert listed(since=(today + timedelta(days=1)).isoformat()) == []


def test_an_entity_that_names_nothing_is_an_error_on_the_page_its_csv_and_the_api(
    logged: dict[str, Any], as_lead: Client, audit_api: Client
) -> None:
    page = as_lead.get("/audit/", {"entity": "alpha"})
    assert page.status_code == 200
    assert page.context["entries"] == []
    assert page.context["form"].errors == {"entity": ["Not a link to a public channel, group, bot, invite or set."]}
    fragment = as_lead.get("/audit/", {"entity": "alpha"}, headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<section id="audit-results"')
    assert 'role="alert"' in fragment and "Not a link to a public channel" in fragment
    export = as_lead.get("/audit/export.csv", {"entity": "alpha"})
    assert export.status_code == 400
    assert "Not a link to a public channel" in export.content.decode()
    answer = audit_api.get("/api/v1/audit/", {"entity": "alpha"})
    assert answer.status_code == 400
    assert answer.json()["error"]["fields"] == {
        "entity": ["Not a link to a public channel, group, bot, invite or set."]
    }


def test_an_invalid_date_lists_nothing_and_says_why(logged: dict[str, Any], as_lead: Client) -> None:
    page = as_lead.get("/audit/", {"since": "yesterday"})
    assert page.status_code == 200
    assert page.context["entries"] == []
    assert "since" in page.context["form"].errors
    assert as_lead.get("/audit/export.csv", {"since": "yesterday"}).status_code == 400
