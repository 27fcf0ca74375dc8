"""The reports API: entity look-up, cases, reports, and filing a report through intake's threading."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from moderation.integrations.apikeys import hash_secret
from moderation.models import ApiKey, AuditEntry
from reports.models import Case, Entity, InboundMessage, Report
from reports.rawstore import read_blob
from tests.mail import build_mail

CHANNEL = "Please block t.me/example_channel, it posts execution videos."


def _key_client(name: str, *scopes: str) -> Client:
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name,
        prefix=f"adk_{secrets.token_hex(4)}",
        secret_hash=hash_secret(secret),
        scopes=list(scopes),
        created_at=timezone.now(),
    )
    return Client(headers={"Authorization": f"Bearer {key.prefix}.{secret}"})


@pytest.fixture
def reader(db: None) -> Client:
    return _key_client("reader", "read")


@pytest.fixture
def filer(db: None) -> Client:
    return _key_client("in-app-button", "report")


@pytest.fixture
def case(ingest: Callable[..., InboundMessage]) -> Case:
    return ingest(build_mail(CHANNEL)).report.case


@pytest.fixture
def staff_session(alice: User) -> Client:
    alice.groups.add(Group.objects.get(name="moderator"))
    client = Client()
    client.force_login(alice)
    return client


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


# --- GET entities/?url= ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "t.me/Example_Channel",
        "https://telegram.me/s/example_channel/12",
        "hxxps://t[.]me/example_channel",
        "tg://resolve?domain=example_channel",
    ],
)
def test_entity_lookup_finds_any_spelling(reader: Client, case: Case, spelling: str) -> None:
    response = reader.get("/api/v1/entities/", {"url": spelling})
    assert response.status_code == 200
    body = response.json()
    entity = case.entities.get()
    assert body["id"] == str(entity.public_id)
    assert (body["url"], body["kind"], body["status"], body["report_count"]) == (
        "https://t.me/example_channel",
        "channel_or_group",
        "active",
        1,
    )
    assert body["cases"] == [{"reference": case.reference, "status": "new"}]


def test_entity_lookup_of_an_unknown_entity_is_404(reader: Client, db: None) -> None:
    error = _error(reader.get("/api/v1/entities/", {"url": "t.me/never_reported"}), 404, "not_found")
    assert "https://t.me/never_reported" in error["message"]


def test_entity_lookup_of_a_non_platform_link_is_400(reader: Client, db: None) -> None:
    error = _error(reader.get("/api/v1/entities/", {"url": "https://example.com/x"}), 400, "invalid")
    assert list(error["fields"]) == ["url"]


def test_entity_lookup_without_url_is_400(reader: Client, db: None) -> None:
    assert _error(reader.get("/api/v1/entities/"), 400, "invalid")["fields"]["url"]


def test_entity_lookup_needs_the_read_scope(db: None) -> None:
    client = _key_client("blocklist-only", "blocklist", "report", "decide", "audit")
    _error(client.get("/api/v1/entities/", {"url": "t.me/x_channel"}), 403, "missing_scope")


def test_entity_lookup_without_a_key_is_401(client: Client, db: None) -> None:
    response = client.get("/api/v1/entities/", {"url": "t.me/x_channel"})
    _error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


# --- GET cases/ ------------------------------------------------------------------------------


def test_case_list_filters_by_status_category_and_entity(reader: Client, ingest: Callable[..., InboundMessage]) -> None:
    first = ingest(build_mail(CHANNEL, message_id="<a@example.org>")).report.case
    second = ingest(build_mail("Spam from t.me/other_channel", message_id="<b@example.org>")).report.case
    Case.objects.filter(pk=second.pk).update(category="spam", status=Case.Status.DECLINED)

    def refs(**params: str) -> list[str]:
        response = reader.get("/api/v1/cases/", params)
        assert response.status_code == 200
        return [c["reference"] for c in response.json()["results"]]

    assert refs() == [second.reference, first.reference]
    assert refs(status="open") == [first.reference]
    assert refs(status="declined") == [second.reference]
    assert refs(category="spam") == [second.reference]
    assert refs(entity="@Other_Channel") == [second.reference]
    listed = reader.get("/api/v1/cases/", {"entity": "t.me/example_channel"}).json()["results"][0]
    assert listed["entities"] == [
        {
            "id": str(first.entities.get().public_id),
            "url": "https://t.me/example_channel",
            "kind": "channel_or_group",
            "status": "active",
        }
    ]
    assert listed["merged_into"] is None


def test_the_case_list_answers_like_the_queue_page(
    reader: Client, staff_session: Client, ingest: Callable[..., InboundMessage]
) -> None:
    made = [
        ingest(build_mail(f"Posts from t.me/channel_{n}x", message_id=f"<{n}@example.org>")).report.case
        for n in range(4)
    ]
    Case.objects.filter(pk=made[1].pk).update(category="spam", status=Case.Status.DECLINED)
    Case.objects.filter(pk=made[2].pk).update(category="spam", status=Case.Status.WAITING)

    def on_queue(**params: str) -> list[str]:
        page = staff_session.get("/", params).content.decode()
        return list(dict.fromkeys(re.findall(r"AD-\d{6}", page)))

    def in_api(**params: str) -> list[str]:
        return [c["reference"] for c in reader.get("/api/v1/cases/", params).json()["results"]]

    for queue_params, api_params in [
        ({"status": "open"}, {"status": "open"}),
        ({"status": "declined"}, {"status": "declined"}),
        ({"status": "waiting", "category": "spam"}, {"status": "waiting", "category": "spam"}),
        ({"status": "all", "category": "spam"}, {"category": "spam"}),
        ({"status": "all"}, {}),
    ]:
        assert on_queue(**queue_params) == in_api(**api_params), queue_params
    assert in_api(status="open") == [made[3].reference, made[2].reference, made[0].reference]


def test_the_case_list_takes_any_spelling_of_an_entity(reader: Client, case: Case) -> None:
    for spelling in ("hxxps://t[.]me/Example_Channel", "@example_channel", "tg://resolve?domain=example_channel"):
        assert [c["reference"] for c in reader.get("/api/v1/cases/", {"entity": spelling}).json()["results"]] == [
            case.reference
        ]


def test_case_list_pages_with_an_opaque_cursor(reader: Client, ingest: Callable[..., InboundMessage]) -> None:
    made = [ingest(build_mail(f"t.me/channel_{n}x", message_id=f"<{n}@example.org>")).report.case for n in range(5)]
    first = reader.get("/api/v1/cases/", {"page_size": 2}).json()
    assert [c["reference"] for c in first["results"]] == [made[4].reference, made[3].reference]
    second = reader.get(first["next"]).json()
    assert [c["reference"] for c in second["results"]] == [made[2].reference, made[1].reference]
    third = reader.get(second["next"]).json()
    assert [c["reference"] for c in third["results"]] == [made[0].reference]
    assert third["next"] is None


@pytest.mark.parametrize("cursor", ["garbage", "cD1ub3QtYS1kYXRl", "bz0xJnA9MjAyNi0wMS0wMQ"])
def test_case_list_rejects_a_bad_cursor_with_400(reader: Client, case: Case, cursor: str) -> None:
    _error(reader.get("/api/v1/cases/", {"cursor": cursor}), 400, "invalid_cursor")


def test_case_list_rejects_an_unknown_status(reader: Client, db: None) -> None:
    assert "status" in _error(reader.get("/api/v1/cases/", {"status": "closed"}), 400, "invalid")["fields"]


def test_case_list_rejects_an_entity_filter_that_is_no_platform_link(reader: Client, db: None) -> None:
    assert "entity" in _error(reader.get("/api/v1/cases/", {"entity": "example.com"}), 400, "invalid")["fields"]


def test_case_list_needs_the_read_scope(db: None) -> None:
    _error(_key_client("filer", "report").get("/api/v1/cases/"), 403, "missing_scope")


def test_case_list_rejects_post_with_405(reader: Client, db: None) -> None:
    _error(reader.post("/api/v1/cases/", {}, content_type="application/json"), 405, "method_not_allowed")


# --- GET cases/{reference}/ -------------------------------------------------------------------


def test_case_detail_shows_entities_and_reports(reader: Client, case: Case) -> None:
    body = reader.get(f"/api/v1/cases/{case.reference}/").json()
    report = case.reports.get()
    assert body["reference"] == case.reference
    assert body["status"] == "new"
    assert body["report_count"] == 1
    assert [e["url"] for e in body["entities"]] == ["https://t.me/example_channel"]
    assert body["reports"] == [
        {
            "id": str(report.public_id),
            "kind": "report",
            "received_at": body["reports"][0]["received_at"],
            "language": report.language,
            "subject": "Abuse report",
        }
    ]


def test_case_detail_lists_the_newest_reports_first_up_to_its_limit(
    reader: Client, ingest: Callable[..., InboundMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    reports = [
        ingest(build_mail(CHANNEL, message_id=f"<{n}@example.org>", sender=f"r{n}@example.org")).report
        for n in range(3)
    ]
    monkeypatch.setattr("reports.api.MAX_REPORTS_SHOWN", 2)
    body = reader.get(f"/api/v1/cases/{reports[0].case.reference}/").json()
    assert body["report_count"] == 3
    assert [r["id"] for r in body["reports"]] == [str(reports[2].public_id), str(reports[1].public_id)]


def test_case_detail_takes_the_reference_in_any_letter_case(reader: Client, case: Case) -> None:
    assert reader.get(f"/api/v1/cases/{case.reference.lower()}/").json()["reference"] == case.reference


def test_case_detail_of_an_unknown_case_is_404(reader: Client, db: None) -> None:
    _error(reader.get("/api/v1/cases/AD-999999/"), 404, "not_found")


def test_case_detail_with_a_bad_key_is_401(case: Case) -> None:
    client = Client(headers={"Authorization": "Bearer adk_00000000.not-the-secret"})
    _error(client.get(f"/api/v1/cases/{case.reference}/"), 401, "invalid_key")


# --- GET reports/{id}/ ------------------------------------------------------------------------


def test_report_detail_hides_the_reporter_from_api_keys(reader: Client, case: Case) -> None:
    report = case.reports.get()
    response = reader.get(f"/api/v1/reports/{report.public_id}/")
    assert response.status_code == 200
    body = response.json()
    assert body["reporter"] is None
    assert "reporter@example.org" not in response.content.decode()
    assert (body["case"], body["kind"], body["subject"]) == (case.reference, "report", "Abuse report")
    assert "execution videos" in body["text"]
    assert body["entities"][0]["url"] == "https://t.me/example_channel"
    assert body["entities"][0]["seen_as"] == "t.me/example_channel"
    assert body["attachments"] == []
    assert body["from_verified"] is False


def test_report_detail_shows_the_reporter_to_signed_in_staff(staff_session: Client, case: Case) -> None:
    report = case.reports.get()
    body = staff_session.get(f"/api/v1/reports/{report.public_id}/").json()
    assert body["reporter"] == {"email": "reporter@example.org", "name": "Reporter", "trusted": False}


def test_report_detail_refuses_staff_without_a_role(mallory: User, case: Case) -> None:
    mallory.is_staff = True
    mallory.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(mallory)
    _error(client.get(f"/api/v1/reports/{case.reports.get().public_id}/"), 403, "missing_scope")


def test_report_detail_of_an_unknown_report_is_404(reader: Client, db: None) -> None:
    _error(reader.get("/api/v1/reports/00000000-0000-4000-8000-000000000000/"), 404, "not_found")


def test_report_detail_by_sequential_id_is_a_json_404(reader: Client, case: Case) -> None:
    _error(reader.get(f"/api/v1/reports/{case.reports.get().pk}/"), 404, "not_found")


def test_unknown_api_paths_answer_json_404(reader: Client, db: None) -> None:
    _error(reader.get("/api/v1/nothing/here/"), 404, "not_found")
    assert "end with" in _error(reader.get("/api/v1/cases"), 404, "not_found")["message"]
    strict = Client(enforce_csrf_checks=True)
    _error(strict.post("/api/v1/nothing/", "{}", content_type="application/json"), 404, "not_found")


def test_a_body_over_the_upload_limit_is_413(filer: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    _error(_post(filer, _report(text="x" * 2000)), 413, "too_large")
    assert not InboundMessage.objects.exists()


# --- POST reports/ ----------------------------------------------------------------------------


def _report(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "reporter": {"email": "Person@Example.org", "name": "A Person", "language": "de"},
        "subject": "In-app report",
        "text": "Dieser Kanal verbreitet Propaganda und Gewaltaufrufe gegen Menschen.",
        "urls": ["https://t.me/Bad_Channel/123"],
    }
    payload.update(overrides)
    return payload


def _post(client: Client, payload: dict[str, Any], **headers: str) -> Any:
    return client.post("/api/v1/reports/", payload, content_type="application/json", headers=headers)


def test_filing_a_report_threads_it_like_mail_and_returns_the_case(filer: Client) -> None:
    response = _post(filer, _report())
    assert response.status_code == 201, response.content
    body = response.json()
    report = Report.objects.select_related("case", "reporter", "inbound").get()
    assert body == {
        "case": report.case.reference,
        "report": str(report.public_id),
        "state": "processed",
        "entities": [
            {
                "id": str(report.entities.get().public_id),
                "url": "https://t.me/bad_channel",
                "kind": "channel_or_group",
                "status": "active",
            }
        ],
    }
    assert report.inbound.source == "api:in-app-button"
    assert report.reporter.email == "person@example.org"
    assert report.reporter.display_name == "A Person"
    assert report.subject == "In-app report"
    assert report.language == "de"
    assert not AuditEntry.objects.exists()


def test_a_filed_report_is_stored_as_a_real_mail(filer: Client) -> None:
    _post(filer, _report(reporter={"email": "x@bücher.example", "name": "Zoë"}))
    mail = message_from_bytes(read_blob(InboundMessage.objects.get().raw.name), policy=default_policy)
    assert mail["From"].addresses[0].addr_spec == "x@xn--bcher-kva.example"
    assert mail["From"].addresses[0].display_name == "Zoë"
    assert mail["Message-ID"] and mail["Date"]
    assert "https://t.me/Bad_Channel/123" in mail.get_content()
    assert mail["Content-Language"] is None
    _post(filer, _report(subject="Second"))
    second = InboundMessage.objects.order_by("id").last()
    assert message_from_bytes(read_blob(second.raw.name), policy=default_policy)["Content-Language"] == "de"


def test_a_second_report_about_the_same_entity_joins_its_open_case(filer: Client, case: Case) -> None:
    response = _post(filer, _report(urls=["t.me/example_channel"], text="Still posting executions."))
    assert response.json()["case"] == case.reference
    assert Case.objects.count() == 1


def test_a_report_without_urls_opens_a_case_with_no_entity(filer: Client) -> None:
    body = _post(filer, _report(urls=[])).json()
    assert body["entities"] == []
    assert Case.objects.get().reference == body["case"]


def test_an_idempotency_key_makes_a_retry_return_the_first_result(filer: Client) -> None:
    first = _post(filer, _report(), **{"Idempotency-Key": "req-42"})
    again = _post(filer, _report(), **{"Idempotency-Key": "req-42"})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert InboundMessage.objects.count() == 1
    assert Report.objects.count() == 1


def test_an_idempotency_key_reused_for_another_request_is_422(filer: Client) -> None:
    _post(filer, _report(), **{"Idempotency-Key": "req-43"})
    _error(
        _post(filer, _report(text="Something else entirely."), **{"Idempotency-Key": "req-43"}),
        422,
        "idempotency_key_reused",
    )
    assert Report.objects.count() == 1


def test_idempotency_keys_of_different_api_keys_do_not_collide(filer: Client, db: None) -> None:
    other = _key_client("other-button", "report")
    _post(filer, _report(), **{"Idempotency-Key": "same"})
    assert _post(other, _report(), **{"Idempotency-Key": "same"}).status_code == 201
    assert Report.objects.count() == 2


def test_an_invalid_idempotency_key_is_400(filer: Client) -> None:
    _error(_post(filer, _report(), **{"Idempotency-Key": "x" * 256}), 400, "invalid_idempotency_key")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (_report(text=""), "text"),
        ({"reporter": {"email": "a@example.org"}}, "text"),
        (_report(reporter={"email": "not-an-address"}), "reporter.email"),
        (_report(reporter={"email": '"quoted"@example.org'}), "reporter.email"),
        (_report(reporter={"email": "a@example.org", "name": "Bob\r\nBcc: victim@example.org"}), "reporter.name"),
        (_report(reporter={"email": "a@example.org", "language": "not a language"}), "reporter.language"),
        (_report(subject="Hi\nthere"), "subject"),
        (_report(urls=["t.me/good_channel", "https://example.com/"]), "urls.1"),
        (_report(urls=["t.me/+15551234567"]), "urls.0"),
        (_report(urls="t.me/not_a_list"), "urls"),
        (_report(urls=["t.me/chan_nel"] * 101), "urls"),
        (_report(text="x" * 100_001), "text"),
    ],
)
def test_invalid_reports_are_400_with_the_field(filer: Client, payload: dict[str, Any], field: str) -> None:
    error = _error(_post(filer, payload), 400, "invalid")
    assert field in error["fields"]
    assert not InboundMessage.objects.exists()


def test_a_report_body_that_is_not_json_is_400(filer: Client) -> None:
    response = filer.post("/api/v1/reports/", "{not json", content_type="application/json")
    _error(response, 400, "parse_error")


def test_a_report_body_that_is_a_list_is_400(filer: Client) -> None:
    _error(filer.post("/api/v1/reports/", [1, 2], content_type="application/json"), 400, "invalid")


def test_a_form_encoded_report_is_415(filer: Client) -> None:
    _error(filer.post("/api/v1/reports/", {"text": "x"}), 415, "unsupported_media_type")


def test_filing_needs_the_report_scope(reader: Client) -> None:
    _error(_post(reader, _report()), 403, "missing_scope")
    assert not InboundMessage.objects.exists()


def test_filing_with_a_revoked_key_is_401(db: None) -> None:
    client = _key_client("retired", "report")
    ApiKey.objects.update(revoked_at=timezone.now())
    _error(_post(client, _report()), 401, "revoked_key")


def test_entities_of_a_filed_report_keep_the_reporters_spelling(filer: Client) -> None:
    _post(filer, _report(urls=["hxxps://t[.]me/Defanged_Channel"]))
    link = Report.objects.get().reportentity_set.get()
    assert link.entity.url == "https://t.me/defanged_channel"
    assert link.defanged
    assert Entity.objects.count() == 1
