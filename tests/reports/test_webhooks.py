"""Provider webhooks: anymail's inbound views under abusedesk's URLs, driven with the test client.

The payloads in tests/data/webhooks were recorded from django-anymail's own inbound tests and are
signed with the test keys those tests use (MAILGUN_KEY, MAILERSEND_KEY, MANDRILL_KEY below).
Postal signs with an RSA key anymail's tests generate per run, and Resend's svix signatures
carry the wall-clock time of the recording, so those are re-signed here with keys made here; the
recorded Resend signature is kept to show that a stale svix timestamp is refused.
Amazon SES needs boto3, Postal needs cryptography and Resend's signature check needs svix (the
`amazon-ses`, `postal` and `resend` extras of django-anymail); their tests skip without them.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import importlib.util
import io
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.db import OperationalError, connection
from django.http import HttpResponse
from django.test import AsyncClient, Client
from django.test.client import ClientHandler, FakePayload
from django.utils import timezone

import reports.intake
from reports.actions import do_process_inbound
from reports.formdata import parse_form
from reports.intake import do_retry_failed_deliveries, do_unpack_webhook_deliveries
from reports.models import InboundMessage, InboundWebhook, Report
from reports.rawstore import read_blob
from reports.tasks import process_pending, sweep_inbound, wake_processing
from tests.mail import build_mail

# anymail warns on every SendGrid request that it dropped official support for SendGrid.
pytestmark = pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")

DATA = Path(__file__).resolve().parent.parent / "data" / "webhooks"
WEBHOOK_SECRET = "abusedesk:webhook-test-secret"
BASIC_AUTH = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
WRONG_AUTH = "Basic " + base64.b64encode(b"abusedesk:wrong-secret").decode()

# The keys django-anymail's tests signed the recorded payloads with.
MAILGUN_KEY = "TEST_WEBHOOK_SIGNING_KEY"
MAILERSEND_KEY = "TEST_WEBHOOK_SIGNING_SECRET"
MANDRILL_KEY = "TEST_WEBHOOK_KEY"
# Mandrill signs the URL it posts to; anymail's test posted to this one with this basic auth.
MANDRILL_SIGNED_URL = "http://username:password@testserver/anymail/mandrill/"
RESEND_RECORDED_SECRET = "whsec_" + base64.b64encode(b"TEST_SIGNING_SECRET").decode()
RESEND_RECORDED_TIMESTAMP = "1795877519"
RESEND_RECORDED_SIGNATURE = "v1,RZLwKVF1nQkvfpPdIJHCazTmqvbUQWOKZHra1fhUcLw="
# Keys made for this suite.
MAILTRAP_KEY = "abusedesk-mailtrap-test-key"
RESEND_SECRET = "whsec_" + base64.b64encode(b"abusedesk-resend-test-key").decode()

RESEND_EMAIL_ID = "56761188-7520-42d8-8898-ff6fc54ce618"
RESEND_API = f"https://api.resend.com/emails/receiving/{RESEND_EMAIL_ID}"
RESEND_RAW = "https://resend.invalid/raw/email.eml"
MAILTRAP_API = "https://mailtrap.io/api/inbound/inboxes/4242/messages/m-77"
MAILTRAP_RAW = "https://mailtrap.invalid/raw/m-77.eml"
# No recorded Mailtrap inbound payload exists; this notification follows anymail's
# MailtrapInboundEvent fields.
MAILTRAP_NOTIFICATION = {
    "events": [
        {
            "event": "inbound.message_received",
            "event_id": "evt-1",
            "timestamp": 1_790_000_000_000,
            "inbox_id": 4242,
            "message_id": "m-77",
        }
    ]
}
MAILTRAP_MAIL = build_mail("Please block t.me/mailtrap_case, it sells stolen accounts.")


@dataclass(frozen=True)
class Delivery:
    """One recorded provider payload and what the desk must make of it.

    `event_id` is what anymail reports as the event id ("" where the ESP sends none); `headers`
    are the recorded request headers (SNS, signatures); `marker` is text of the payload that also
    lands in the mail, changed to make "the same event with other bytes"; `needs` names the
    package anymail needs for this ESP.
    """

    name: str
    esp: str
    path: str
    payload: str
    content_type: str
    subject: str
    sender: str
    event_id: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    marker: bytes = b""
    signed: bool = False
    no_auth_status: int = 400
    needs: str = ""

    def body(self) -> bytes:
        if self.esp == "mailtrap":
            return json.dumps(MAILTRAP_NOTIFICATION).encode()
        return (DATA / self.payload).read_bytes()

    def __str__(self) -> str:
        return self.name


MAILGUN_TOKEN = "06c96bafc3f42a66b9edd546347a2fe18dc23461fe80dc52f0"
POSTMARK_ID = "22c74902-a0c1-4511-804f2-341342852c90"
SNS_HEADERS = {
    "x-amz-sns-message-id": "8f6dee70-c885-558a-be7d-bd48bbf5335e",
    "x-amz-sns-message-type": "Notification",
}
JSON = "application/json"

DELIVERIES = [
    Delivery(
        "amazon_ses-sns-utf8",
        "amazon_ses",
        "amazon_ses/inbound/",
        "amazon_ses/test_inbound_sns_utf8.webhook.json",
        "text/plain; charset=UTF-8",
        "Test inbound message",
        "from@example.org",
        event_id="jili9m351il3gkburn7o2f0u6788stij94c8ld01",
        headers=SNS_HEADERS,
        marker=b"It's a body",
        no_auth_status=401,
        needs="boto3",
    ),
    Delivery(
        "amazon_ses-sns-base64",
        "amazon_ses",
        "amazon_ses/inbound/",
        "amazon_ses/test_inbound_sns_base64.webhook.json",
        "text/plain; charset=UTF-8",
        "Test inbound message",
        "from@example.org",
        event_id="jili9m351il3gkburn7o2f0u6788stij94c8ld01",
        headers=SNS_HEADERS,
        no_auth_status=401,
        needs="boto3",
    ),
    Delivery(
        "brevo",
        "brevo",
        "brevo/inbound/",
        "brevo/test_inbound_basics.webhook.json",
        JSON,
        "Testing Brevo inbound",
        "from@example.com",
        event_id="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        marker=b"This is a *test message*",
    ),
    Delivery(
        "mailersend",
        "mailersend",
        "mailersend/inbound/",
        "mailersend/test_inbound.webhook.json",
        JSON,
        "Testing inbound \N{EARTH GLOBE AMERICAS}",
        "sender@example.org",
        event_id="6402ab57f79d39d7e10f2523",
        headers={"Signature": "40e14acfeac2ad68914fd3102cc73fb0b7dd6242e719bdd6e4a2830aea91d116"},
        marker=b"This is a *test*!",
        signed=True,
    ),
    Delivery(
        "mailgun-parsed",
        "mailgun",
        "mailgun/inbound/",
        "mailgun/test_inbound_basics.webhook.multipart",
        "multipart/form-data; boundary=BoUnDaRyStRiNg",
        "Test subject",
        "from+test@example.org",
        event_id=MAILGUN_TOKEN,
        marker=b"Test body plain",
        signed=True,
    ),
    Delivery(
        "mailgun-mime",
        "mailgun",
        "mailgun/inbound_mime/",
        "mailgun/test_inbound_mime.webhook.multipart",
        "multipart/form-data; boundary=BoUnDaRyStRiNg",
        "Raw MIME test",
        "test@example.org",
        event_id=MAILGUN_TOKEN,
        marker=b"It's a body",
        signed=True,
    ),
    Delivery(
        "mailjet",
        "mailjet",
        "mailjet/inbound/",
        "mailjet/test_inbound_basics.webhook.json",
        JSON,
        "Test subject",
        "from+test@example.org",
    ),
    Delivery(
        "mailtrap",
        "mailtrap",
        "mailtrap/inbound/",
        "",
        JSON,
        "Abuse report",
        "reporter@example.org",
        event_id="4242/m-77",
        signed=True,
    ),
    Delivery(
        "mandrill",
        "mandrill",
        "mandrill/",
        "mandrill/test_inbound_basics.webhook.multipart",
        "multipart/form-data; boundary=BoUnDaRyStRiNg",
        "Test subject",
        "test@example.org",
        headers={"X-Mandrill-Signature": "HnXdtWMaAysP7lkMBkiKCNljKJI="},
        signed=True,
    ),
    Delivery(
        "postal",
        "postal",
        "postal/inbound/",
        "postal/test_inbound_basics.webhook.json",
        JSON,
        "Test subject",
        "from+test@example.org",
        event_id="233980",
        signed=True,
        needs="cryptography",
    ),
    Delivery(
        "postmark-parsed",
        "postmark",
        "postmark/inbound/",
        "postmark/test_inbound_basics.webhook.json",
        JSON,
        "Test subject",
        "from+test@example.org",
        event_id=POSTMARK_ID,
        marker=b"Test body plain",
    ),
    Delivery(
        "postmark-raw",
        "postmark",
        "postmark/inbound/",
        "postmark/test_inbound_with_raw_email.webhook.json",
        JSON,
        "Test subject",
        "from+test@example.org",
        event_id=POSTMARK_ID,
        marker=b"Test body plain",
    ),
    Delivery(
        "resend",
        "resend",
        "resend/inbound/",
        "resend/test_inbound_basics_raw_mime.webhook.json",
        JSON,
        "Testing Resend inbound",
        "from@example.com",
        event_id="msg_abcdefghijklmnopqrst12345",
        headers={"svix-id": "msg_abcdefghijklmnopqrst12345"},
    ),
    Delivery(
        "sendgrid-parsed",
        "sendgrid",
        "sendgrid/inbound/",
        "sendgrid/test_inbound_basics.webhook.multipart",
        "multipart/form-data; boundary=BoUnDaRyStRiNg",
        "Test subject",
        "from+test@example.org",
    ),
    Delivery(
        "sendgrid-raw",
        "sendgrid",
        "sendgrid/inbound/",
        "sendgrid/test_inbound_mime.webhook.multipart",
        "multipart/form-data; boundary=BoUnDaRyStRiNg",
        "Raw MIME test",
        "test@example.org",
    ),
    Delivery(
        "sparkpost",
        "sparkpost",
        "sparkpost/inbound/",
        "sparkpost/test_inbound_basics.webhook.json",
        JSON,
        "Test subject",
        "from+test@example.org",
    ),
]
BY_NAME = {d.name: d for d in DELIVERIES}
WITH_EVENT_ID = [d for d in DELIVERIES if d.event_id and (d.marker or d.esp in ("postal", "resend", "mailtrap"))]
SIGNED = [d for d in DELIVERIES if d.signed]


def _hmac_hex(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def _svix_headers(secret: str, svix_id: str, timestamp: str, body: bytes) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{svix_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "svix-id": svix_id,
        "svix-timestamp": timestamp,
        "svix-signature": "v1," + base64.b64encode(digest).decode(),
    }


class _ProviderApi:
    """Stands in for requests.get: the Resend and Mailtrap APIs anymail fetches a message from."""

    def __init__(self) -> None:
        self.raw = {
            RESEND_RAW: (DATA / "resend/test_inbound_basics_raw_mime.parsed-raw-mime.eml").read_bytes(),
            MAILTRAP_RAW: MAILTRAP_MAIL,
        }
        self.calls: list[str] = []

    def get(self, url: str, **kwargs: Any) -> _ApiResponse:
        self.calls.append(url)
        if url == RESEND_API:
            return _ApiResponse(json.dumps({"id": RESEND_EMAIL_ID, "raw": {"download_url": RESEND_RAW}}).encode())
        if url == MAILTRAP_API:
            return _ApiResponse(json.dumps({"id": "m-77", "raw_message_url": MAILTRAP_RAW}).encode())
        if url in self.raw:
            return _ApiResponse(self.raw[url])
        raise AssertionError(f"unexpected fetch of {url}")

    def change_mail(self, old: bytes, new: bytes) -> None:
        self.raw = {url: raw.replace(old, new) for url, raw in self.raw.items()}


class _ApiResponse:
    def __init__(self, content: bytes) -> None:
        self.content = content
        self.headers: dict[str, str] = {}

    def raise_for_status(self) -> None:
        return None

    def json(self) -> Any:
        return json.loads(self.content)

    def iter_content(self, chunk_size: int = 1) -> Iterator[bytes]:
        for start in range(0, len(self.content), chunk_size):
            yield self.content[start : start + chunk_size]

    def __enter__(self) -> _ApiResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def provider_api(monkeypatch: pytest.MonkeyPatch) -> _ProviderApi:
    api = _ProviderApi()
    # anymail's Resend and Mailtrap views call requests.get; nothing here reaches the network.
    monkeypatch.setattr("requests.get", api.get)
    return api


@pytest.fixture(autouse=True)
def anymail_keys(settings: Any, provider_api: _ProviderApi) -> dict[str, Any]:
    """Every provider's key for this test; anymail reads settings.ANYMAIL on each request."""
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": [WEBHOOK_SECRET],
        # anymail's Brevo inbound view refuses to start without it (it fetches attachments).
        "BREVO_API_KEY": "brevo-test-key",
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        "MAILERSEND_INBOUND_SECRET": MAILERSEND_KEY,
        "MANDRILL_WEBHOOK_KEY": MANDRILL_KEY,
        "MANDRILL_WEBHOOK_URL": MANDRILL_SIGNED_URL,
        "MAILTRAP_API_TOKEN": "mailtrap-test-token",
        # Replaced by a real public key in the Postal tests; anymail's view needs one to start.
        "POSTAL_WEBHOOK_KEY": "placeholder",
        "MAILTRAP_INBOUND_SECRET": MAILTRAP_KEY,
        "RESEND_API_KEY": "re_test_key",
    }
    return settings.ANYMAIL


@pytest.fixture(scope="module")
def postal_key() -> Any:
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _postal_signature(private_key: Any, body: bytes) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return base64.b64encode(private_key.sign(body, padding.PKCS1v15(), hashes.SHA1())).decode()


def _postal_public_key(private_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "".join(pem.decode().splitlines()[1:-1])


@pytest.fixture
def webhook_client() -> Client:
    # Providers send no CSRF token, and they see a 500 as an answer, not as an exception.
    return Client(enforce_csrf_checks=True, raise_request_exception=False)


Deliver = Callable[..., HttpResponse]


@pytest.fixture
def deliver(db: None, webhook_client: Client, request: pytest.FixtureRequest, settings: Any) -> Deliver:
    """POST a delivery as its provider would, then unpack what was stored as the drain would
    (`unpack=False` leaves it stored as received); `body` replaces the recorded payload (re-signed)."""

    def _deliver(
        case: Delivery,
        body: bytes | None = None,
        *,
        auth: str | None = BASIC_AUTH,
        headers: Mapping[str, str] | None = None,
        unpack: bool = True,
    ) -> HttpResponse:
        if case.needs:
            pytest.importorskip(case.needs)
        recorded = case.body()
        body = recorded if body is None else body
        sent_headers = dict(case.headers)
        if case.esp == "mailersend" and body != recorded:
            sent_headers["Signature"] = _hmac_hex(MAILERSEND_KEY, body)
        if case.esp == "mailtrap":
            sent_headers["Mailtrap-Signature"] = _hmac_hex(MAILTRAP_KEY, body)
        if case.esp == "postal":
            key = request.getfixturevalue("postal_key")
            settings.ANYMAIL = {
                **settings.ANYMAIL,
                "POSTAL_WEBHOOK_KEY": _postal_public_key(key),
            }
            sent_headers["X-Postal-Signature"] = _postal_signature(key, body)
        sent_headers.update(headers or {})
        extra = {"HTTP_AUTHORIZATION": auth} if auth is not None else {}
        response = webhook_client.generic(
            "POST",
            f"/webhooks/anymail/{case.path}",
            body,
            content_type=case.content_type,
            headers=sent_headers,
            **extra,
        )
        if unpack and response.status_code == 200:
            do_unpack_webhook_deliveries(100)
        return response

    return _deliver


def _changed(case: Delivery, body: bytes, provider_api: _ProviderApi) -> bytes:
    """The same delivery (same event id) carrying other mail bytes."""
    if case.esp == "postal":
        payload = json.loads(body)
        raw = base64.b64decode(payload["message"]).replace(b"It's a body", b"It's another body")
        payload["message"] = base64.b64encode(raw).decode()
        return json.dumps(payload).encode()
    if case.esp in ("resend", "mailtrap"):
        provider_api.change_mail(b"Hello, world!", b"Hello again!")
        provider_api.change_mail(b"stolen accounts", b"stolen cards")
        return body
    assert case.marker in body
    return body.replace(case.marker, case.marker + b" (changed)")


def _assert_nothing_stored() -> None:
    assert not InboundWebhook.objects.exists()
    assert not InboundMessage.objects.exists()


def _parsed(message: InboundMessage) -> Any:
    return BytesParser(policy=policy.default).parsebytes(read_blob(message.raw.name))


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_delivery_stores_one_raw_message_that_parses_back(case, deliver):
    response = deliver(case)
    assert response.status_code == 200
    message = InboundMessage.objects.get()
    assert (message.source, message.provider_event_id) == (
        f"webhook:{case.esp}",
        case.event_id,
    )
    assert message.state == InboundMessage.State.PENDING
    mail = _parsed(message)
    assert mail["Subject"] == case.subject
    assert mail["From"].addresses[0].addr_spec == case.sender


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_stored_delivery_processes_into_a_report(case, deliver):
    assert deliver(case).status_code == 200
    message = do_process_inbound(InboundMessage.objects.get().pk)
    assert message.state == InboundMessage.State.PROCESSED
    report = Report.objects.get()
    assert (report.inbound, report.subject, report.reporter.email) == (
        message,
        case.subject,
        case.sender,
    )


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_redelivery_of_the_same_payload_stores_nothing_new(case, deliver):
    assert deliver(case).status_code == 200
    first = InboundMessage.objects.get()
    assert deliver(case).status_code == 200
    assert list(InboundMessage.objects.all()) == [first]


@pytest.mark.parametrize("case", WITH_EVENT_ID, ids=str)
def test_same_event_id_with_other_bytes_is_not_stored_again(case, deliver, provider_api):
    assert deliver(case).status_code == 200
    first = InboundMessage.objects.get()
    assert deliver(case, _changed(case, case.body(), provider_api)).status_code == 200
    assert list(InboundMessage.objects.all()) == [first]
    assert InboundMessage.objects.get().sha256 == first.sha256


@pytest.mark.parametrize("case", list({d.path: d for d in DELIVERIES}.values()), ids=str)
def test_get_is_not_allowed_and_stores_nothing(case, deliver, webhook_client):
    if case.needs:
        pytest.importorskip(case.needs)
    response = webhook_client.get(f"/webhooks/anymail/{case.path}", HTTP_AUTHORIZATION=BASIC_AUTH)
    assert response.status_code == 405
    _assert_nothing_stored()


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_missing_basic_auth_is_refused_and_nothing_is_stored(case, deliver):
    # Amazon SNS sends credentials only after a 401 challenge; anymail answers 400 elsewhere.
    assert deliver(case, auth=None).status_code == case.no_auth_status
    _assert_nothing_stored()


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_wrong_basic_auth_is_refused_and_nothing_is_stored(case, deliver):
    assert deliver(case, auth=WRONG_AUTH).status_code == 400
    _assert_nothing_stored()


def _forged(case: Delivery, body: bytes, postal_key: Callable[[], Any]) -> tuple[bytes, dict[str, str]]:
    """The delivery with a signature that does not match it."""
    if case.esp == "mailgun":
        forged, count = re.subn(rb'(name="signature"\r\n\r\n)[0-9a-f]{64}', rb"\g<1>" + b"0" * 64, body)
        assert count == 1
        return forged, {}
    if case.esp == "mailersend":
        return body, {"Signature": _hmac_hex("not-the-key", body)}
    if case.esp == "mailtrap":
        return body, {"Mailtrap-Signature": _hmac_hex("not-the-key", body)}
    if case.esp == "mandrill":
        return body, {"X-Mandrill-Signature": base64.b64encode(b"\0" * 20).decode()}
    if case.esp == "postal":
        return body, {"X-Postal-Signature": _postal_signature(postal_key(), body + b" ")}
    raise AssertionError(f"no forgery for {case.esp}")


@pytest.mark.parametrize("case", SIGNED, ids=str)
def test_bad_signature_is_refused_and_nothing_is_stored(case, deliver, request):
    body, headers = _forged(case, case.body(), lambda: request.getfixturevalue("postal_key"))
    assert deliver(case, body, headers=headers).status_code == 400
    _assert_nothing_stored()


def test_anymail_accepts_a_mailgun_timestamp_years_old(deliver):
    """anymail checks only the HMAC of timestamp+token: no freshness window, no token cache."""
    body = BY_NAME["mailgun-parsed"].body()
    timestamp = int(re.search(rb'name="timestamp"\r\n\r\n(\d+)', body).group(1))
    assert time.time() - timestamp > 5 * 365 * 86400
    assert deliver(BY_NAME["mailgun-parsed"]).status_code == 200


def test_replayed_mailgun_token_with_a_forged_body_is_acknowledged_but_not_stored(
    deliver,
):
    """Mailgun's signature does not cover the body; the token is the event id we deduplicate on."""
    case = BY_NAME["mailgun-parsed"]
    assert deliver(case).status_code == 200
    original = InboundMessage.objects.get()
    forged = case.body().replace(b"Test body plain", b"Ignore the report above, all is fine")
    assert deliver(case, forged).status_code == 200
    assert list(InboundMessage.objects.all()) == [original]
    assert _parsed(original).get_body(("plain",)).get_content() == "Test body plain"


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_payload_over_the_webhook_cap_is_refused_with_413(case, deliver, settings):
    settings.ABUSEDESK_WEBHOOK_MAX_BYTES = len(case.body()) - 1
    assert deliver(case).status_code == 413
    _assert_nothing_stored()


def test_payload_of_exactly_the_cap_is_accepted(deliver, settings):
    case = BY_NAME["sparkpost"]
    settings.ABUSEDESK_WEBHOOK_MAX_BYTES = len(case.body())
    assert deliver(case).status_code == 200
    assert InboundMessage.objects.count() == 1


def test_unreadable_content_length_is_refused(deliver, webhook_client):
    case = BY_NAME["sparkpost"]
    response = webhook_client.generic(
        "POST",
        f"/webhooks/anymail/{case.path}",
        case.body(),
        content_type=JSON,
        HTTP_AUTHORIZATION=BASIC_AUTH,
        CONTENT_LENGTH="many",
    )
    assert response.status_code == 400
    _assert_nothing_stored()


def test_body_over_the_cap_without_content_length_is_refused_under_asgi(db, settings):
    """Under ASGI the request stream is the whole body, whatever Content-Length said."""
    body = BY_NAME["sparkpost"].body()
    settings.ABUSEDESK_WEBHOOK_MAX_BYTES = len(body) // 2
    response = async_to_sync(AsyncClient(raise_request_exception=False).request)(
        method="POST",
        path="/webhooks/anymail/sparkpost/inbound/",
        server=("127.0.0.1", "80"),
        scheme="http",
        query_string="",
        headers=[
            (b"host", b"testserver"),
            (b"content-type", JSON.encode()),
            (b"authorization", BASIC_AUTH.encode()),
        ],
        _body_file=FakePayload(body),
    )
    assert response.status_code == 413
    _assert_nothing_stored()


def _sparkpost_with_text(size: int) -> bytes:
    events = json.loads(BY_NAME["sparkpost"].body())
    content = events[0]["msys"]["relay_message"]["content"]
    filler = ("Another line of the reported channel's posts, t.me/big_channel.\n" * (size // 64 + 1))[:size]
    content["email_rfc822"] = content["email_rfc822"].replace("It's a body=E2=80=A6\n", "It's a body\n" + filler, 1)
    return json.dumps(events).encode()


def test_json_payload_over_djangos_upload_limit_but_under_the_cap_is_accepted(deliver):
    body = _sparkpost_with_text(3 * 1024 * 1024)
    assert django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE < len(body) < django_settings.ABUSEDESK_WEBHOOK_MAX_BYTES
    assert deliver(BY_NAME["sparkpost"], body).status_code == 200
    message = InboundMessage.objects.get()
    assert message.raw_size > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert "t.me/big_channel" in _parsed(message).get_body(("plain",)).get_content()


@pytest.mark.parametrize("name", ["mailgun-mime", "sendgrid-raw"])
def test_multipart_raw_mail_field_over_djangos_upload_limit_is_accepted(name, deliver):
    case = BY_NAME[name]
    filler = b"More of the reported channel's posts.\n" * 80_000
    marker = b"It's a body=E2=80=A6\n"
    body = case.body().replace(marker, marker + b"\n" + filler, 1)
    assert len(body) > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert deliver(case, body).status_code == 200
    stored = read_blob(InboundMessage.objects.get().raw.name)
    assert stored == _raw_mime_sent(case).replace(marker, marker + b"\n" + filler, 1)
    assert len(stored) > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def test_a_large_parsed_mailgun_payload_keeps_its_fields_and_attachments(deliver):
    case = BY_NAME["mailgun-parsed"]
    filler = "More of the reported channel's posts.\n" * 80_000
    body = case.body().replace(case.marker, case.marker + filler.encode(), 1)
    assert len(body) > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert deliver(case, body).status_code == 200
    mail = _parsed(InboundMessage.objects.get())
    assert mail["Subject"] == case.subject
    assert filler[:200] in mail.get_body(("plain",)).get_content()


def test_large_form_payloads_keep_files_as_files():
    big = "x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
    body = (
        b'--B\r\nContent-Disposition: form-data; name="body-plain"\r\n\r\n'
        + big.encode()
        + b'\r\n--B\r\nContent-Disposition: form-data; name="attachment-1"; filename="shot.png"\r\n'
        b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\x00\r\n--B--\r\n"
    )
    post, files = parse_form(body, "B")
    assert post["body-plain"] == big
    upload = files["attachment-1"]
    assert (upload.name, upload.content_type, upload.read()) == ("shot.png", "image/png", b"\x89PNG\r\n\x1a\n\x00")


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_failure_to_store_the_request_answers_500_so_the_provider_retries(case, deliver, monkeypatch):
    def failing_insert(*args: object, **kwargs: object) -> None:
        raise OperationalError("the database is gone")

    monkeypatch.setattr("reports.intake.insert_unless_conflicting", failing_insert)
    assert deliver(case).status_code == 500
    assert not InboundWebhook.objects.exists()
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_a_storage_failure_while_unpacking_leaves_the_delivery_pending_with_its_body(case, deliver, monkeypatch):
    def failing_blob(*args: object, **kwargs: object) -> None:
        raise OSError("media volume full")

    assert deliver(case, unpack=False).status_code == 200
    with monkeypatch.context() as patched:
        patched.setattr("reports.actions.store_blob", failing_blob)
        with pytest.raises(OSError, match="media volume full"):
            do_unpack_webhook_deliveries(100)
    delivery = InboundWebhook.objects.get()
    assert (delivery.state, bytes(delivery.body)) == (InboundWebhook.State.PENDING, case.body())
    assert not InboundMessage.objects.exists()
    # The next drain, with the volume back, stores the mail.
    assert do_unpack_webhook_deliveries(100) == 1
    delivery.refresh_from_db()
    assert delivery.state == InboundWebhook.State.UNPACKED
    assert delivery.inbound_ids == [InboundMessage.objects.get().pk]


@pytest.mark.parametrize("name", ["mailgun-filtered", "sendgrid-filtered"])
def test_attachments_with_filtered_filenames_do_not_crash_intake(name, deliver):
    esp = name.split("-")[0]
    case = Delivery(
        name,
        esp,
        f"{esp}/inbound/",
        f"{esp}/test_filtered_attachment_filenames.webhook.multipart",
        "multipart/form-data; boundary=BoUnDaRy",
        "",
        "",
    )
    assert deliver(case).status_code == 200
    message = do_process_inbound(InboundMessage.objects.get().pk)
    assert message.state == InboundMessage.State.PROCESSED
    # Django drops the parts named "", "..", "path\" and so on; what is left is stored as-is.
    assert Report.objects.get().inbound == message


def test_mailtrap_integration_check_is_acknowledged_without_storing(deliver):
    """anymail signals event=None for Mailtrap's "Test your integration" payload (inbox 1)."""
    case = BY_NAME["mailtrap"]
    notification = {"events": [{**MAILTRAP_NOTIFICATION["events"][0], "inbox_id": 1}]}
    assert deliver(case, json.dumps(notification).encode()).status_code == 200
    assert not InboundMessage.objects.exists()
    assert InboundWebhook.objects.get().state == InboundWebhook.State.IGNORED


@pytest.mark.parametrize(
    ("name", "package", "keys", "headers"),
    [
        ("amazon_ses-sns-utf8", "boto3", {}, {}),
        (
            "postal",
            "cryptography",
            {},
            {"X-Postal-Signature": "AAAA"},
        ),
        ("resend", "svix", {"RESEND_INBOUND_SECRET": RESEND_SECRET}, {}),
    ],
)
def test_without_its_anymail_extra_an_esp_answers_500_to_every_delivery(
    name, package, keys, headers, deliver, webhook_client, settings
):
    if importlib.util.find_spec(package):
        pytest.skip(f"{package} is installed")
    case = BY_NAME[name]
    settings.ANYMAIL = {**settings.ANYMAIL, **keys}
    response = webhook_client.generic(
        "POST",
        f"/webhooks/anymail/{case.path}",
        case.body(),
        content_type=case.content_type,
        headers={**case.headers, **headers},
        HTTP_AUTHORIZATION=BASIC_AUTH,
    )
    assert response.status_code == 500
    _assert_nothing_stored()


def test_resend_delivery_fetches_the_mail_only_from_the_mocked_api(deliver, provider_api):
    assert deliver(BY_NAME["resend"]).status_code == 200
    assert provider_api.calls == [RESEND_API, RESEND_RAW]


def test_resend_recorded_signature_is_refused_for_its_stale_timestamp(deliver, settings):
    pytest.importorskip("svix")
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "RESEND_INBOUND_SECRET": RESEND_RECORDED_SECRET,
    }
    case = BY_NAME["resend"]
    recorded = {
        "svix-timestamp": RESEND_RECORDED_TIMESTAMP,
        "svix-signature": RESEND_RECORDED_SIGNATURE,
    }
    # The recorded signature is right for the recorded key, body and timestamp...
    expected = _svix_headers(
        RESEND_RECORDED_SECRET,
        case.headers["svix-id"],
        RESEND_RECORDED_TIMESTAMP,
        case.body(),
    )
    assert expected["svix-signature"] == RESEND_RECORDED_SIGNATURE
    # ...but svix allows five minutes of clock skew, and the recording is older than that.
    assert time.time() - int(RESEND_RECORDED_TIMESTAMP) > 300
    assert deliver(case, headers=recorded).status_code == 400
    _assert_nothing_stored()


def test_resend_freshly_signed_delivery_is_accepted_and_a_bad_one_refused(deliver, settings):
    pytest.importorskip("svix")
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_INBOUND_SECRET": RESEND_SECRET}
    case = BY_NAME["resend"]
    now = str(int(time.time()))
    wrong = _svix_headers(RESEND_RECORDED_SECRET, case.headers["svix-id"], now, case.body())
    assert deliver(case, headers=wrong).status_code == 400
    _assert_nothing_stored()
    fresh = _svix_headers(RESEND_SECRET, case.headers["svix-id"], now, case.body())
    assert deliver(case, headers=fresh).status_code == 200
    assert InboundMessage.objects.get().provider_event_id == case.headers["svix-id"]


def test_webhooks_stay_open_under_login_required_middleware(deliver, settings):
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    assert deliver(BY_NAME["sparkpost"]).status_code == 200
    assert InboundMessage.objects.count() == 1


def test_webhook_secret_is_read_on_every_request(deliver, settings):
    case = BY_NAME["sparkpost"]
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "WEBHOOK_SECRET": ["old:secret", WEBHOOK_SECRET],
    }
    assert deliver(case).status_code == 200
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ["new:secret"]}
    assert deliver(case).status_code == 400
    assert InboundMessage.objects.count() == 1


def _form_fields(case: Delivery, body: bytes) -> dict[str, bytes]:
    form = BytesParser(policy=policy.default).parsebytes(f"Content-Type: {case.content_type}\r\n\r\n".encode() + body)
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
        for part in form.iter_parts()
    }


def _raw_mime_sent(case: Delivery) -> bytes:
    """The raw MIME inside a recorded payload, as the provider received it."""
    body = case.body()
    if case.esp == "postmark":
        return json.loads(body)["RawEmail"].encode()
    if case.esp == "sparkpost":
        content = json.loads(body)[0]["msys"]["relay_message"]["content"]
        raw = content["email_rfc822"]
        return base64.b64decode(raw) if content["email_rfc822_is_base64"] else raw.encode()
    if case.esp == "postal":
        return base64.b64decode(json.loads(body)["message"])
    if case.esp == "mailersend":
        return json.loads(body)["data"]["raw"].encode()
    if case.esp == "amazon_ses":
        notification = json.loads(json.loads(body)["Message"])
        content = notification["content"]
        base64_encoded = notification["receipt"]["action"].get("encoding") == "BASE64"
        return base64.b64decode(content) if base64_encoded else content.encode()
    if case.esp == "mailgun":
        return _form_fields(case, body)["body-mime"]
    if case.esp == "sendgrid":
        return _form_fields(case, body)["email"]
    if case.esp == "mandrill":
        return json.loads(_form_fields(case, body)["mandrill_events"])[0]["msg"]["raw_msg"].encode()
    raise AssertionError(f"no raw MIME in a {case.esp} payload")


RAW_MIME_DELIVERIES = [
    case
    for case in DELIVERIES
    if case.name
    in {
        "amazon_ses-sns-utf8",
        "amazon_ses-sns-base64",
        "mailersend",
        "mailgun-mime",
        "mandrill",
        "postal",
        "postmark-raw",
        "sendgrid-raw",
        "sparkpost",
    }
]


@pytest.mark.parametrize("case", RAW_MIME_DELIVERIES, ids=str)
def test_raw_mime_from_the_provider_is_stored_byte_for_byte(case, deliver):
    """The evidence is what the provider received, not a re-serialisation (DKIM still verifies)."""
    assert deliver(case).status_code == 200
    stored = read_blob(InboundMessage.objects.get().raw.name)
    assert stored == _raw_mime_sent(case)


def test_anymail_still_parses_messages_it_constructs_in_full():
    from anymail.webhooks import postmark

    from reports.intake import RAW_MIME_PROVIDERS, _RawKeepingMessage, keep_raw_mime

    keep_raw_mime()  # what the URLconf does when it loads
    assert "postmark" in RAW_MIME_PROVIDERS
    assert postmark.AnymailInboundMessage is _RawKeepingMessage
    constructed = postmark.AnymailInboundMessage.construct(
        from_email="a@example.org",
        text="Block t.me/constructed_case",
        attachments=[
            postmark.AnymailInboundMessage.construct_attachment("message/rfc822", build_mail("t.me/inner_case"))
        ],
    )
    assert getattr(constructed, "raw_mime", None) is None
    inner = next(p for p in constructed.walk() if p.get_content_type() == "message/rfc822").get_payload(0)
    assert "t.me/inner_case" in inner.get_content()


def test_large_form_payloads_with_too_many_parts_are_refused(deliver):
    case = BY_NAME["mailgun-mime"]
    filler = b"x" * django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    parts = b"".join(b'--BoUnDaRyStRiNg\r\nContent-Disposition: form-data; name="f"\r\n\r\n1\r\n' for _ in range(1200))
    body = parts + b'--BoUnDaRyStRiNg\r\nContent-Disposition: form-data; name="big"\r\n\r\n' + filler + b"\r\n"
    body += case.body()
    response = deliver(case, body)
    assert response.status_code == 400
    assert response.json() == {"error": "more than 1100 form parts"}
    _assert_nothing_stored()


def test_nested_multipart_inside_a_large_form_field_is_just_bytes():
    nested = b"".join(b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (i, i) for i in range(5000))
    nested += b"x" * django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = b'--B\r\nContent-Disposition: form-data; name="body-mime"\r\n\r\n' + nested + b"\r\n--B--\r\n"
    post, files = parse_form(body, "B", raw_fields={"body-mime"})
    assert post["body-mime"].encode() == nested
    assert not files


# --- Issue 11: every byte as received (8-bit raw mail in form fields) ------------------------------

REPORT_TEXTS = {
    "koi8-r": "Заблокируйте канал t.me/propaganda_ru, там видео казней. Спасибо!",
    "cp1251": "Прошу заблокировать t.me/propaganda_ua: призывы к насилию.",
    "latin-1": "Bitte sperren Sie t.me/propagande_fr, déjà signalé, très grave.",
}


def _eight_bit_mail(charset: str, *, filler_bytes: int = 0) -> bytes:
    """A report in `charset` with 8-bit transfer encoding: its body bytes are not UTF-8."""
    text = REPORT_TEXTS[charset]
    line = (text + "\n").encode(charset)
    body = line + line * (filler_bytes // len(line) + 1 if filler_bytes else 0)
    return (
        b"From: Reporter <reporter@example.org>\r\n"
        b"To: abuse@abusedesk.localhost\r\n"
        b"Subject: Abuse report\r\n"
        b"Message-ID: <" + charset.encode() + b"-report@example.org>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body
    )


def _with_field(case: Delivery, name: str, value: bytes, *, part_headers: bytes = b"") -> bytes:
    """The recorded form payload with field `name` holding `value` (and extra part headers)."""
    body = case.body()
    head = f'Content-Disposition: form-data; name="{name}"\r\n'.encode()
    start = body.index(head) + len(head)
    content = body.index(b"\r\n", start) + 2
    end = body.index(b"\r\n--BoUnDaRyStRiNg", content)
    return body[:start] + part_headers + b"\r\n" + value + body[end:]


FORM_RAW_FIELDS = {"mailgun-mime": "body-mime", "sendgrid-raw": "email"}
EIGHT_BIT_MAILS = [
    pytest.param(charset, size, id=f"{charset}-{label}")
    for charset in REPORT_TEXTS
    for size, label in ((0, "small"), (3 * 1024 * 1024, "over-2.5MB"))
]


@pytest.mark.parametrize(("charset", "size"), EIGHT_BIT_MAILS)
@pytest.mark.parametrize("name", FORM_RAW_FIELDS)
def test_8bit_raw_mail_in_a_form_field_is_stored_byte_for_byte(name, charset, size, deliver):
    """Issue 11: Mailgun's body-mime and SendGrid's email lost koi8-r, cp1251 and Latin-1 bytes to
    U+FFFD, below and above Django's 2.5 MB field limit."""
    case = BY_NAME[name]
    mail = _eight_bit_mail(charset, filler_bytes=size)
    with pytest.raises(UnicodeDecodeError):
        mail.decode("utf-8")
    body = _with_field(case, FORM_RAW_FIELDS[name], mail)
    assert (len(body) > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE) == bool(size)
    assert deliver(case, body).status_code == 200
    message = InboundMessage.objects.get()
    assert read_blob(message.raw.name) == mail
    assert message.sha256 == hashlib.sha256(mail).hexdigest()
    if not size:
        # The bytes are right, so the report reads right and names its channel.
        do_process_inbound(message.pk)
        report = Report.objects.get()
        assert REPORT_TEXTS[charset] in report.text
        assert report.entities.count() == 1


@pytest.mark.parametrize("name", FORM_RAW_FIELDS)
def test_a_real_dkim_signed_8bit_mail_keeps_the_bytes_its_signature_covers(name, deliver):
    """Yahoo's DKIM-signed mail with raw 8-bit koi8-r/cp1251 bytes in a header (flanker corpus):
    stored byte for byte, its signature would verify against the evidence."""
    mail = (DATA.parent / "mail" / "flanker-messages" / "russian-attachment-yahoo.eml").read_bytes()
    assert b"DKIM-Signature:" in mail
    with pytest.raises(UnicodeDecodeError):
        mail.decode("utf-8")
    case = BY_NAME[name]
    assert deliver(case, _with_field(case, FORM_RAW_FIELDS[name], mail)).status_code == 200
    assert read_blob(InboundMessage.objects.get().raw.name) == mail


@pytest.mark.parametrize("name", ["sparkpost", "postal"])
def test_8bit_raw_mail_in_base64_json_is_stored_byte_for_byte(name, deliver):
    case = BY_NAME[name]
    mail = _eight_bit_mail("koi8-r")
    payload = json.loads(case.body())
    if name == "sparkpost":
        content = payload[0]["msys"]["relay_message"]["content"]
        content.update(email_rfc822=base64.b64encode(mail).decode(), email_rfc822_is_base64=True)
    else:
        payload["message"] = base64.b64encode(mail).decode()
    assert deliver(case, json.dumps(payload).encode()).status_code == 200
    assert read_blob(InboundMessage.objects.get().raw.name) == mail


# --- Issue 11: an unknown charset is a clear 400 -----------------------------------------------------


@pytest.mark.parametrize("size", [0, 3 * 1024 * 1024], ids=["small", "over-2.5MB"])
def test_a_form_field_with_an_unknown_charset_is_refused_with_400(size, deliver):
    """It raised an unhandled LookupError (a 500, retried for ever) on parts over 2.5 MB."""
    case = BY_NAME["mailgun-parsed"]
    text = b"Block t.me/some_channel\n" + b"x" * size
    body = _with_field(case, "body-plain", text, part_headers=b"Content-Type: text/plain; charset=x-unknown-8\r\n")
    response = deliver(case, body)
    assert response.status_code == 400
    assert response.json() == {"error": "form field 'body-plain' declares an unknown charset 'x-unknown-8'"}
    _assert_nothing_stored()


@pytest.mark.parametrize("name", FORM_RAW_FIELDS)
def test_a_raw_mail_field_with_an_unknown_charset_keeps_its_bytes(name, deliver):
    """The charset a form part claims says nothing about a raw mail, whose bytes are kept."""
    case = BY_NAME[name]
    mail = _eight_bit_mail("cp1251")
    headers = b"Content-Type: text/plain; charset=x-unknown-8\r\n"
    assert deliver(case, _with_field(case, FORM_RAW_FIELDS[name], mail, part_headers=headers)).status_code == 200
    assert read_blob(InboundMessage.objects.get().raw.name) == mail


def test_a_declared_known_charset_decodes_a_form_field():
    body = (
        b'--B\r\nContent-Disposition: form-data; name="body-plain"\r\n'
        b"Content-Type: text/plain; charset=koi8-r\r\n\r\n" + REPORT_TEXTS["koi8-r"].encode("koi8-r") + b"\r\n--B--\r\n"
    )
    post, _files = parse_form(body, "B")
    assert post["body-plain"] == REPORT_TEXTS["koi8-r"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"no boundary here", "the form's boundary never appears in the body"),
        (b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n', "the form ends without its closing boundary"),
    ],
)
def test_a_broken_form_is_refused_with_a_reason(body, error, deliver):
    response = deliver(BY_NAME["mailgun-mime"], body, headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert response.status_code == 400
    assert response.json() == {"error": error}
    _assert_nothing_stored()


# --- Issue 11: authenticate before reading the body ----------------------------------------------


class _UnreadableBody(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def __init__(self) -> None:
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        raise AssertionError("the request body was read")


def _post_unreadable(case: Delivery, auth: str | None) -> tuple[HttpResponse, _UnreadableBody]:
    """POST a 69 MB body nobody may read, through the whole middleware stack."""
    body = _UnreadableBody()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/webhooks/anymail/{case.path}",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": body,
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": case.content_type,
        "CONTENT_LENGTH": str(69 * 1024 * 1024),
        **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in case.headers.items()},
        **({"HTTP_AUTHORIZATION": auth} if auth is not None else {}),
    }
    return ClientHandler(enforce_csrf_checks=True)(environ), body


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
@pytest.mark.parametrize(
    ("auth", "wrong"),
    [(None, False), ("Basic a", False), ("Bearer abc", False), (WRONG_AUTH, True), ("Basic !!!", True)],
    ids=["none", "undecodable", "not-basic", "wrong", "empty"],
)
def test_an_unauthenticated_post_is_refused_without_reading_its_body(case, auth, wrong, db):
    """Issue 11: an anonymous 69 MB post was read and split (26 s, 140 MB) before basic auth.
    Without readable basic credentials Amazon SNS gets its 401 challenge, the others 400."""
    if case.needs:
        pytest.importorskip(case.needs)
    response, body = _post_unreadable(case, auth)
    assert response.status_code == (400 if wrong else case.no_auth_status)
    assert body.reads == 0
    _assert_nothing_stored()


def test_the_unreadable_body_would_notice_a_read(db):
    """The control for the test above: with the right auth the view reads, and the body says so."""
    response, body = _post_unreadable(BY_NAME["sparkpost"], BASIC_AUTH)
    assert body.reads > 0
    assert response.status_code == 500


def test_an_authenticated_post_over_the_cap_is_refused_without_reading_its_body(db, settings):
    settings.ABUSEDESK_WEBHOOK_MAX_BYTES = 10 * 1024 * 1024
    response, body = _post_unreadable(BY_NAME["postmark-raw"], BASIC_AUTH)
    assert response.status_code == 413
    assert body.reads == 0


def test_an_amazon_sns_post_without_auth_is_challenged(db):
    pytest.importorskip("boto3")
    response, _body = _post_unreadable(BY_NAME["amazon_ses-sns-utf8"], None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic ")


def test_basic_auth_is_compared_with_every_configured_secret(deliver, settings, monkeypatch):
    """Constant time per secret, and all of them every time, also when the first one matches."""
    import reports.webhooks

    secrets = [WEBHOOK_SECRET, "abusedesk:second-secret", "abusedesk:third-secret"]
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": secrets}
    compared: list[str] = []
    real = reports.webhooks.constant_time_compare

    def recording(supplied: str, secret: str) -> bool:
        compared.append(secret)
        return real(supplied, secret)

    monkeypatch.setattr("reports.webhooks.constant_time_compare", recording)
    assert deliver(BY_NAME["sparkpost"], unpack=False).status_code == 200
    assert compared == secrets
    compared.clear()
    assert deliver(BY_NAME["sparkpost"], auth=WRONG_AUTH, unpack=False).status_code == 400
    assert compared == secrets


def test_with_no_webhook_secret_configured_every_post_is_refused(deliver, settings):
    settings.ANYMAIL = {key: value for key, value in settings.ANYMAIL.items() if key != "WEBHOOK_SECRET"}
    assert deliver(BY_NAME["sparkpost"]).status_code == 400
    _assert_nothing_stored()


# --- The request stored as received, unpacked by the drain -------------------------------------------


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_the_request_stores_the_delivery_as_received_and_nothing_else(case, deliver):
    assert deliver(case, unpack=False).status_code == 200
    delivery = InboundWebhook.objects.get()
    assert (delivery.source, delivery.state, bytes(delivery.body)) == (
        f"webhook:{case.esp}",
        InboundWebhook.State.PENDING,
        case.body(),
    )
    assert delivery.sha256 == hashlib.sha256(case.body()).hexdigest()
    assert delivery.meta["CONTENT_TYPE"] == case.content_type
    assert delivery.meta["PATH_INFO"] == f"/webhooks/anymail/{case.path}"
    # The credentials that let it in are not part of what is kept.
    assert "HTTP_AUTHORIZATION" not in delivery.meta
    assert not InboundMessage.objects.exists()


def test_a_webhook_wakes_the_drain_once_the_delivery_is_committed(deliver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        assert deliver(BY_NAME["postmark-raw"], unpack=False).status_code == 200
    assert callbacks == [wake_processing]


def test_a_retried_request_is_acknowledged_without_storing_it_again(deliver):
    case = BY_NAME["sparkpost"]
    assert deliver(case, unpack=False).status_code == 200
    assert deliver(case, unpack=False).status_code == 200
    assert InboundWebhook.objects.count() == 1


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_unpacking_stores_the_mail_at_the_delivery_time_and_drops_the_request_body(case, deliver):
    assert deliver(case, unpack=False).status_code == 200
    assert do_unpack_webhook_deliveries(100) == 1
    delivery = InboundWebhook.objects.get()
    message = InboundMessage.objects.get()
    assert (delivery.state, delivery.inbound_ids, bytes(delivery.body)) == (
        InboundWebhook.State.UNPACKED,
        [message.pk],
        b"",
    )
    assert (message.received_at, message.state) == (delivery.received_at, InboundMessage.State.PENDING)
    assert do_unpack_webhook_deliveries(100) == 0


def test_a_redelivered_event_points_at_the_mail_already_stored(deliver, provider_api):
    case = BY_NAME["postmark-raw"]
    assert deliver(case).status_code == 200
    first = InboundMessage.objects.get()
    assert deliver(case, _changed(case, case.body(), provider_api)).status_code == 200
    assert [d.inbound_ids for d in InboundWebhook.objects.order_by("pk")] == [[first.pk], [first.pk]]
    assert list(InboundMessage.objects.all()) == [first]


def test_a_delivery_with_several_events_stores_each_mail(deliver):
    case = BY_NAME["sparkpost"]
    events = json.loads(case.body())
    second = json.loads(json.dumps(events[0]))
    content = second["msys"]["relay_message"]["content"]
    content.update(
        email_rfc822=base64.b64encode(build_mail("Block t.me/second_one")).decode(), email_rfc822_is_base64=True
    )
    assert deliver(case, json.dumps([*events, second]).encode()).status_code == 200
    delivery = InboundWebhook.objects.get()
    assert delivery.inbound_ids == list(InboundMessage.objects.order_by("pk").values_list("pk", flat=True))
    assert len(delivery.inbound_ids) == 2


@pytest.mark.parametrize(
    ("name", "body"),
    [("postmark-raw", b"this is not json"), ("sparkpost", b"<html>502 Bad Gateway</html>"), ("brevo", b"")],
)
def test_a_body_that_is_not_the_providers_json_is_refused_with_400(name, body, deliver):
    response = deliver(BY_NAME[name], body)
    assert response.status_code == 400
    assert response.json() == {"error": "this provider posts JSON; the body is not JSON"}
    _assert_nothing_stored()


def test_an_authentic_delivery_anymail_cannot_parse_is_kept_failed_and_visible(deliver):
    """Stored, never lost: marked failed with anymail's error, its body kept for a retry."""
    case = BY_NAME["sparkpost"]
    body = json.dumps([{"msys": {"track_event": {"type": "click"}}}]).encode()
    assert deliver(case, body).status_code == 200
    delivery = InboundWebhook.objects.get()
    assert delivery.state == InboundWebhook.State.FAILED
    assert delivery.error.startswith("AnymailConfigurationError: You seem to have set SparkPost's *tracking* webhook")
    assert (bytes(delivery.body), delivery.attempts) == (body, 1)
    assert not InboundMessage.objects.exists()


def test_failed_deliveries_are_retried_with_back_off_up_to_the_attempt_limit(deliver, settings, monkeypatch):
    case = BY_NAME["postmark-raw"]
    monkeypatch.setattr("reports.intake._arrivals_in", _raising(ConnectionError("provider API down")))
    assert deliver(case).status_code == 200
    delivery = InboundWebhook.objects.get()
    assert (delivery.state, delivery.error) == (InboundWebhook.State.FAILED, "ConnectionError: provider API down")
    assert do_retry_failed_deliveries(now=delivery.processed_at + timedelta(seconds=30)) == 0
    assert do_retry_failed_deliveries(now=delivery.processed_at + timedelta(minutes=3)) == 1
    assert InboundWebhook.objects.get().state == InboundWebhook.State.PENDING
    monkeypatch.undo()
    assert do_unpack_webhook_deliveries(100) == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.error, delivery.attempts) == (InboundWebhook.State.UNPACKED, "", 2)
    assert delivery.inbound_ids == [InboundMessage.objects.get().pk]


def test_a_delivery_that_failed_every_attempt_stays_failed(deliver, settings, monkeypatch):
    settings.ABUSEDESK_PROCESS_MAX_ATTEMPTS = 1
    monkeypatch.setattr("reports.intake._arrivals_in", _raising(ValueError("broken")))
    assert deliver(BY_NAME["postmark-raw"]).status_code == 200
    delivery = InboundWebhook.objects.get()
    assert do_retry_failed_deliveries(now=delivery.processed_at + timedelta(days=1)) == 0
    assert InboundWebhook.objects.get().state == InboundWebhook.State.FAILED


def test_unpacking_is_bounded_by_the_processing_time_budget(deliver, settings, monkeypatch):
    from reports.timebox import ProcessingTimeout

    monkeypatch.setattr("reports.intake._arrivals_in", _raising(ProcessingTimeout("processing took longer than 10 s")))
    assert deliver(BY_NAME["postmark-raw"]).status_code == 200
    assert InboundWebhook.objects.get().error == "ProcessingTimeout: processing took longer than 10 s"


def _raising(exc: Exception) -> Callable[..., Any]:
    def fail(*args: object, **kwargs: object) -> Any:
        raise exc

    return fail


def test_the_drain_unpacks_deliveries_then_processes_their_mail(deliver):
    assert deliver(BY_NAME["postmark-raw"], unpack=False).status_code == 200
    assert process_pending() == 1
    assert InboundWebhook.objects.get().state == InboundWebhook.State.UNPACKED
    assert InboundMessage.objects.get().state == InboundMessage.State.PROCESSED
    assert Report.objects.get().subject == "Test subject"


def test_the_sweep_wakes_a_drain_for_a_delivery_no_drain_took(deliver, monkeypatch):
    assert deliver(BY_NAME["postmark-raw"], unpack=False).status_code == 200
    woken: list[bool] = []
    monkeypatch.setattr("reports.tasks.wake_processing", lambda *, force=False: woken.append(force))
    assert sweep_inbound() == 0
    InboundWebhook.objects.update(received_at=timezone.now() - timedelta(minutes=3))
    assert sweep_inbound() == 1
    assert woken == [True]


def test_deliveries_are_listed_read_only_in_admin(deliver, admin_client):
    assert deliver(BY_NAME["postmark-raw"], unpack=False).status_code == 200
    delivery = InboundWebhook.objects.get()
    listing = admin_client.get("/admin/reports/inboundwebhook/")
    assert listing.status_code == 200
    assert b"webhook:postmark" in listing.content
    page = admin_client.get(f"/admin/reports/inboundwebhook/{delivery.pk}/change/")
    assert page.status_code == 200
    assert b'name="body"' not in page.content
    assert admin_client.post(f"/admin/reports/inboundwebhook/{delivery.pk}/delete/").status_code == 403


def test_unpacking_keeps_the_envelope_and_the_event_id(deliver):
    assert deliver(BY_NAME["mailgun-mime"]).status_code == 200
    message = InboundMessage.objects.get()
    assert (message.envelope_sender, message.envelope_recipient, message.provider_event_id) == (
        "envelope-from@example.org",
        "test@inbound.example.com",
        MAILGUN_TOKEN,
    )


def test_a_full_batch_of_deliveries_that_carried_no_mail_wakes_a_drain_for_the_rest(deliver, settings, monkeypatch):
    """The drain stops when it finds no mail to process; deliveries left behind a full batch
    (here two that fail) are not stranded: another drain is woken for them."""
    settings.ABUSEDESK_PROCESS_BATCH = 2
    case = BY_NAME["postmark-raw"]
    for n in range(3):
        assert (
            deliver(case, case.body().replace(b"Test body plain", b"Test body %d" % n), unpack=False).status_code == 200
        )
    assert deliver(BY_NAME["sparkpost"], unpack=False).status_code == 200
    real = reports.intake._arrivals_in

    def only_sparkpost(delivery: InboundWebhook) -> list[Any]:
        if delivery.source != "webhook:sparkpost":
            raise ValueError("broken")
        return real(delivery)

    monkeypatch.setattr("reports.intake._arrivals_in", only_sparkpost)
    # A full batch wakes a second drain, which under the test settings runs inside this one.
    process_pending()
    assert sorted(InboundWebhook.objects.values_list("state", flat=True)) == ["failed"] * 3 + ["unpacked"]
    assert InboundMessage.objects.get().state == InboundMessage.State.PROCESSED


def _body_files(settings: Any) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "webhooks"
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def test_a_large_body_is_kept_as_a_file_until_unpacked(
    deliver, settings, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("reports.intake.INLINE_BODY_BYTES", 100)
    case = BY_NAME["postmark-raw"]
    assert deliver(case, unpack=False).status_code == 200
    delivery = InboundWebhook.objects.get()
    assert (bytes(delivery.body), delivery.size) == (b"", len(case.body()))
    assert [path.read_bytes() for path in _body_files(settings)] == [case.body()]
    # A retry of the same request stores nothing, its own copy of the body included.
    assert deliver(case, unpack=False).status_code == 200
    assert len(_body_files(settings)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert do_unpack_webhook_deliveries(100) == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.body_file) == (InboundWebhook.State.UNPACKED, "")
    assert read_blob(InboundMessage.objects.get().raw.name) == _raw_mime_sent(case)
    assert _body_files(settings) == []


def test_a_large_body_that_fails_to_unpack_keeps_its_file(deliver, settings, monkeypatch):
    monkeypatch.setattr("reports.intake.INLINE_BODY_BYTES", 100)
    monkeypatch.setattr("reports.intake._arrivals_in", _raising(ValueError("broken")))
    assert deliver(BY_NAME["postmark-raw"]).status_code == 200
    delivery = InboundWebhook.objects.get()
    assert delivery.state == InboundWebhook.State.FAILED
    assert [path.read_bytes() for path in _body_files(settings)] == [BY_NAME["postmark-raw"].body()]


def test_an_unpack_holds_a_bounded_amount_of_request_bodies(deliver, monkeypatch):
    case = BY_NAME["sparkpost"]
    for n in range(3):
        assert deliver(case, _sparkpost_with_text(1000 + n), unpack=False).status_code == 200
    monkeypatch.setattr("reports.intake.UNPACK_BODY_BYTES", 2 * len(_sparkpost_with_text(1002)))
    assert do_unpack_webhook_deliveries(100) == 2
    assert do_unpack_webhook_deliveries(100) == 1
    # One delivery is always taken, however large.
    assert deliver(case, _sparkpost_with_text(1003), unpack=False).status_code == 200
    monkeypatch.setattr("reports.intake.UNPACK_BODY_BYTES", 10)
    assert do_unpack_webhook_deliveries(100) == 1
    assert InboundMessage.objects.count() == 4


def test_mandrill_url_encoded_form_is_stored_and_unpacked(deliver):
    """Mandrill posts application/x-www-form-urlencoded; its signature covers the parameters, not
    their encoding, so the recorded one still holds."""
    from urllib.parse import urlencode

    case = BY_NAME["mandrill"]
    events = _form_fields(case, case.body())["mandrill_events"].decode()
    form = dataclasses.replace(case, content_type="application/x-www-form-urlencoded")
    assert deliver(form, urlencode({"mandrill_events": events}).encode()).status_code == 200
    assert read_blob(InboundMessage.objects.get().raw.name) == _raw_mime_sent(case)


def test_on_sqlite_a_delivery_another_drain_unpacked_meanwhile_is_not_stored_again(deliver, monkeypatch):
    """SQLite parses before its one write lock; PostgreSQL holds row locks instead, so there no
    other drain can take a delivery in the meantime."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL locks the deliveries it unpacks")
    assert deliver(BY_NAME["postmark-raw"], unpack=False).status_code == 200
    real = reports.intake._arrivals_in

    def racing(delivery: InboundWebhook) -> list[Any]:
        arrivals = real(delivery)
        InboundWebhook.objects.filter(pk=delivery.pk).update(state=InboundWebhook.State.UNPACKED)
        return arrivals

    monkeypatch.setattr("reports.intake._arrivals_in", racing)
    assert do_unpack_webhook_deliveries(100) == 1
    assert not InboundMessage.objects.exists()
    assert InboundWebhook.objects.get().attempts == 0
