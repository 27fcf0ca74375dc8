"""The one outbound HTTP client of the desk's integrations: SSRF guard, signing, bounded excerpts, back-off.

Egress (SECURITY rule 6). http and https only; redirects are not followed; proxies from the
environment are ignored. The host is resolved once, every address must be public unless
ABUSEDESK_WEBHOOK_ALLOW_PRIVATE is set, and the connection goes to exactly the checked addresses,
so a DNS answer that changes between check and connect cannot reach an internal service.

Signature. `X-Abusedesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
computed over the exact body bytes. Receivers recompute it over the raw body, compare in constant
time and refuse a stale `t`. A receiver of ours gets the signature; an API of someone else's (the
DSA Transparency Database) gets its bearer token instead.

Answers. Nothing the network or the receiver does raises: every call returns an Outcome with the
status, the latency and a bounded, NUL-free excerpt of the answer, or the error. The caller keeps
it and plans the next attempt with `retry_delay`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import ipaddress
import json
import random
import re
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.utils import timezone

TIMEOUT_SECONDS = 10
EXCERPT_CHARS = 500
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
USER_AGENT = "abusedesk"
SIGNATURE_HEADER = "X-Abusedesk-Signature"
# RFC 6750's b64token: anything else could split the header or end up in an error message.
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def signature_header(secret: str, body: bytes, *, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class RefusedURL(Exception):
    """The endpoint's URL may not be fetched (scheme, or an address that is not public)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.partition("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve_receiver(host: str, port: int) -> list[str]:
    """The addresses to connect to; RefusedURL when one of them is not public and that is not allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RefusedURL(f"{host} does not resolve: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not settings.ABUSEDESK_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            if not is_public(address):
                raise RefusedURL(f"{host} resolves to {address}, which is not a public address")
    return addresses


def _connect_to_any(addresses: Sequence[str]) -> Callable[..., socket.socket]:
    """A replacement for socket.create_connection that ignores the host and uses the checked addresses."""

    def create_connection(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        last: OSError = OSError("no address to connect to")
        for candidate in addresses:
            try:
                return socket.create_connection((candidate, address[1]), timeout, source_address)
            except OSError as exc:
                last = exc
        raise last

    return create_connection


class _PinnedConnection:
    # http.client connects through self._create_connection; replacing it keeps the hostname for
    # the Host header, SNI and certificate checks while the socket goes to a checked address.
    def __init__(self, *args: Any, addresses: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_to_any(addresses)


class _PinnedHTTPConnection(_PinnedConnection, http.client.HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnection, http.client.HTTPSConnection):
    pass


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, addresses: Sequence[str]) -> None:
        super().__init__()
        self.addresses = addresses

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_PinnedHTTPConnection, addresses=self.addresses), req)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, addresses: Sequence[str]) -> None:
        self.context = ssl.create_default_context()
        super().__init__(context=self.context)
        self.addresses = addresses

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(
            functools.partial(_PinnedHTTPSConnection, addresses=self.addresses), req, context=self.context
        )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        # A 3xx is the receiver's answer, recorded as a failed attempt; following it could lead
        # anywhere, including past the address check.
        return None


def _clean(text: str) -> str:
    # PostgreSQL text refuses NUL, and the excerpt is shown to admins as data.
    return text.replace("\x00", "\ufffd")[:EXCERPT_CHARS]


def _excerpt(stream: IO[bytes] | None) -> str:
    if stream is None:
        return ""
    try:
        raw = stream.read(EXCERPT_CHARS * 4)
    except (OSError, http.client.HTTPException):
        return ""
    return _clean(raw.decode("utf-8", errors="replace"))


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def post(url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
    """POST `body` as it is, through the SSRF guard; never raises for anything the network or the
    receiver does."""
    started = time.monotonic()
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RefusedURL("only http and https URLs are delivered to")
        addresses = resolve_receiver(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            _NoRedirects(),
            _PinnedHTTPHandler(addresses),
            _PinnedHTTPSHandler(addresses),
        )
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return Outcome(response.status, _elapsed_ms(started), _excerpt(response))
    except urllib.error.HTTPError as exc:
        try:
            return Outcome(exc.code, _elapsed_ms(started), _excerpt(exc.fp))
        finally:
            exc.close()
    except RefusedURL as exc:
        return Outcome(None, _elapsed_ms(started), error=_clean(f"refused: {exc}"))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return Outcome(None, _elapsed_ms(started), error=_clean(f"{type(reason).__name__}: {reason}"))


def encode_json(payload: object) -> bytes:
    """Compact UTF-8 JSON: exactly the bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def post_json(
    url: str,
    payload: object,
    *,
    headers: Mapping[str, str] | None = None,
    signing_secret: str | None = None,
    bearer_token: str | None = None,
    at: datetime | None = None,
) -> Outcome:
    """POST `payload` as JSON through `post`, signed with `signing_secret` (timestamped `at`, by
    default now) and/or authorised with `bearer_token`; `headers` add to or override the defaults."""
    body = encode_json(payload)
    sent = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if signing_secret is not None:
        timestamp = int((at or timezone.now()).timestamp())
        sent[SIGNATURE_HEADER] = signature_header(signing_secret, body, timestamp=timestamp)
    if bearer_token is not None:
        if not _BEARER_TOKEN.fullmatch(bearer_token):
            # Never echoed: the error is kept and shown to admins.
            return Outcome(None, 0, error="refused: the bearer token has characters a header cannot carry")
        sent["Authorization"] = f"Bearer {bearer_token}"
    return post(url, body, {**sent, **(headers or {})})


def retry_delay(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: 30 s doubling to at most 1 h, less up to a quarter at
    random so that endpoints that failed together do not retry in lockstep."""
    seconds = min(FIRST_RETRY_SECONDS * 2 ** min(attempts - 1, 20), MAX_RETRY_SECONDS)
    return timedelta(seconds=seconds * random.uniform(0.75, 1.0))
