"""The OpenAPI schema validates, the docs page is served without a CDN, and fuzzing finds no 5xx."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from moderation.actions import Actor, do_block_entity
from moderation.integrations.apikeys import do_create_api_key
from reports.models import InboundMessage
from tests.mail import build_mail


def test_schema_generation_validates_without_warnings(tmp_path: Path) -> None:
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target), stderr=io.StringIO())
    text = target.read_text()
    assert text.startswith("openapi: 3.0.3")
    for path in (
        "/api/v1/blocklist/",
        "/api/v1/entities/",
        "/api/v1/entities/{public_id}/block/",
        "/api/v1/entities/{public_id}/unblock/",
        "/api/v1/cases/",
        "/api/v1/cases/{reference}/",
        "/api/v1/reports/",
        "/api/v1/reports/{public_id}/",
        "/api/v1/audit/",
    ):
        assert f"  {path}:" in text


def test_schema_is_served_without_credentials(client: Client, db: None) -> None:
    response = client.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "<prefix>.<secret>",
        "description": schema["components"]["securitySchemes"]["apiKey"]["description"],
    }


def test_schema_ignores_a_bad_key(db: None) -> None:
    client = Client(headers={"Authorization": "Bearer adk_nope.nope"})
    assert client.get("/api/v1/schema/").status_code == 200


def test_docs_page_loads_its_script_and_styles_from_our_own_static_files(client: Client, db: None) -> None:
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-schema-url="/api/v1/schema/?format=json"' in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))]
    for asset in ("api/docs.js", "api/docs.css"):
        assert f"/static/{asset}" in sources
        assert finders.find(asset) is not None
    assert "script-src 'self'" in response["Content-Security-Policy"]


# --- schemathesis -----------------------------------------------------------------------------

EXAMPLES_PER_OPERATION = 20


@pytest.fixture
def wsgi_app(db: None) -> Iterator[WSGIHandler]:
    """The real WSGI handler, inside the test's transaction.

    Like Django's test client, stop request signals from closing the connection, which would
    end the test's transaction on PostgreSQL.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def desk_with_data(ingest: Callable[..., InboundMessage], alice: Any, settings: Any) -> dict[str, str]:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api": None}}
    case = ingest(build_mail("t.me/fuzz_channel and t.me/other_fuzz_channel")).report.case
    blocked, active = case.entities.order_by("url")
    do_block_entity(blocked, category="spam", statement="Spam.", actor=Actor(alice))
    _, plaintext = do_create_api_key(
        "fuzzer", scopes=["read", "blocklist", "report", "decide", "audit"], actor=Actor(None, label="test")
    )
    return {
        "key": plaintext,
        "reference": case.reference,
        "report": str(case.reports.get().public_id),
        "entity": str(active.public_id),
    }


def test_schemathesis_finds_no_server_error(wsgi_app: WSGIHandler, desk_with_data: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", wsgi_app)
    headers = {"Authorization": f"Bearer {desk_with_data['key']}"}
    known_ids = {
        "cases_retrieve": {"reference": desk_with_data["reference"]},
        "reports_retrieve": {"public_id": desk_with_data["report"]},
        "entities_block": {"public_id": desk_with_data["entity"]},
        "entities_unblock": {"public_id": desk_with_data["entity"]},
    }
    server_errors: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # Real ids let valid requests reach the code behind the look-up; invalid ones of a
            # body-less operation can only vary the path, so those paths stay generated.
            has_body = "requestBody" in operation.definition.raw
            fixed = mode == GenerationMode.POSITIVE or has_body
            path_parameters = known_ids.get(operation.definition.raw.get("operationId", "")) if fixed else None
            strategy = operation.as_strategy(generation_mode=mode, headers=headers, path_parameters=path_parameters)

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def call(case: schemathesis.Case) -> None:
                nonlocal calls
                calls += 1
                response = case.call()
                if response.status_code >= 500:
                    server_errors.append(
                        f"{response.status_code} {case.method} {case.formatted_path} {case.query} {case.body!r}"
                    )

            try:
                call()
            except Unsatisfiable:
                # Nothing about this operation can be made invalid (a free-form path string).
                assert mode == GenerationMode.NEGATIVE, operation.label
    assert not server_errors, "\n".join(server_errors[:20])
    assert calls >= 200
