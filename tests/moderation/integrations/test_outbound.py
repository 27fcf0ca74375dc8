"""The outbound HTTP client every integration shares: SSRF guard, signing, bearer tokens, back-off."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from moderation.integrations import outbound


def test_retry_delays_double_from_30_seconds_up_to_an_hour_with_jitter() -> None:
    for attempts, ceiling in [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (40, 3600)]:
        for _ in range(20):
            delay = outbound.retry_delay(attempts).total_seconds()
            assert 0.75 * ceiling <= delay <= ceiling


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
    ],
)
def test_only_public_addresses_count_as_public(address: str, public: bool) -> None:
    assert outbound.is_public(address) is public


# --- Requests on the wire --------------------------------------------------------------------------


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Request]]]:
    """A loopback HTTP server that records each POST and answers 200 "ok"."""
    received: list[Request] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(Request(dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/statements", received
    server.shutdown()
    server.server_close()


@pytest.mark.network
def test_post_json_sends_compact_utf8_json_with_a_bearer_token(receiver: tuple[str, list[Request]]) -> None:
    url, received = receiver
    outcome = outbound.post_json(url, {"statements": [{"puid": "ä-1", "n": 2}]}, bearer_token="tdb-Token_1.~+/=")
    assert (outcome.ok, outcome.status_code, outcome.excerpt, outcome.error) == (True, 200, "ok", "")
    [request] = received
    assert request.body == '{"statements":[{"puid":"ä-1","n":2}]}'.encode()
    assert request.headers["Authorization"] == "Bearer tdb-Token_1.~+/="
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "abusedesk"
    assert "X-Abusedesk-Signature" not in request.headers


@pytest.mark.network
def test_post_json_signs_the_exact_body_it_sends(receiver: tuple[str, list[Request]]) -> None:
    url, received = receiver
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    outbound.post_json(url, {"a": "b"}, signing_secret="s3cret", at=at, headers={"X-Abusedesk-Event": "test"})
    [request] = received
    expected = hmac.new(b"s3cret", f"{int(at.timestamp())}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Abusedesk-Signature"] == f"t={int(at.timestamp())},v1={expected}"
    assert request.headers["X-Abusedesk-Event"] == "test"
    assert "Authorization" not in request.headers


@pytest.mark.network
def test_a_bearer_token_that_could_split_a_header_is_refused_and_never_echoed(
    receiver: tuple[str, list[Request]],
) -> None:
    url, received = receiver
    outcome = outbound.post_json(url, {}, bearer_token="secret-part\r\nX-Injected: 1")
    assert outcome.status_code is None
    assert outcome.error.startswith("refused: the bearer token")
    assert "secret-part" not in outcome.error
    assert received == []


@pytest.mark.network
def test_proxies_from_the_environment_are_ignored(
    receiver: tuple[str, list[Request]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = receiver
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert outbound.post(url, b"x", {}).ok
    assert len(received) == 1


@pytest.mark.network
def test_the_host_is_resolved_once_and_the_connection_goes_to_the_checked_address(
    receiver: tuple[str, list[Request]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = receiver
    port = url.split(":")[2].split("/")[0]
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "receiver.example":
            lookups.append(host)
            # A rebinding resolver would answer differently the second time; there is none.
            return real_getaddrinfo("127.0.0.1" if len(lookups) == 1 else "192.0.2.1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert outbound.post(f"http://receiver.example:{port}/hook", b"x", {}).ok
    assert lookups == ["receiver.example"]
    assert received[0].headers["Host"] == f"receiver.example:{port}"


def test_a_name_with_any_private_address_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.ABUSEDESK_WEBHOOK_ALLOW_PRIVATE = False
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 443)) for address in ("93.184.215.14", "10.0.0.1")]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answers)
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: pytest.fail("connected"))
    outcome = outbound.post("https://receiver.example/hook", b"x", {})
    assert outcome.status_code is None
    assert outcome.error == "refused: receiver.example resolves to 10.0.0.1, which is not a public address"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://receiver.example/", "http:///no-host"])
def test_only_http_and_https_urls_are_posted_to(url: str) -> None:
    outcome = outbound.post(url, b"x", {})
    assert (outcome.status_code, outcome.error) == (None, "refused: only http and https URLs are delivered to")
