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
import hashlib
import hmac
import importlib.util
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import AsyncClient, Client
from django.test.client import FakePayload

from reports.actions import do_process_inbound
from reports.models import InboundMessage, Report
from reports.rawstore import read_blob
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
    """POST a delivery as its provider would; `body` replaces the recorded payload (re-signed)."""

    def _deliver(
        case: Delivery,
        body: bytes | None = None,
        *,
        auth: str | None = BASIC_AUTH,
        headers: Mapping[str, str] | None = None,
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
        return webhook_client.generic(
            "POST",
            f"/webhooks/anymail/{case.path}",
            body,
            content_type=case.content_type,
            headers=sent_headers,
            **extra,
        )

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
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_missing_basic_auth_is_refused_and_nothing_is_stored(case, deliver):
    # Amazon SNS sends credentials only after a 401 challenge; anymail answers 400 elsewhere.
    assert deliver(case, auth=None).status_code == case.no_auth_status
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_wrong_basic_auth_is_refused_and_nothing_is_stored(case, deliver):
    assert deliver(case, auth=WRONG_AUTH).status_code == 400
    assert not InboundMessage.objects.exists()


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
    assert not InboundMessage.objects.exists()


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
    assert not InboundMessage.objects.exists()


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
    assert not InboundMessage.objects.exists()


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
    assert not InboundMessage.objects.exists()


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
    from django.test import RequestFactory

    from reports.webhooks import _form_data

    big = "x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
    body = (
        b'--B\r\nContent-Disposition: form-data; name="body-plain"\r\n\r\n'
        + big.encode()
        + b'\r\n--B\r\nContent-Disposition: form-data; name="attachment-1"; filename="shot.png"\r\n'
        b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\x00\r\n--B--\r\n"
    )
    request = RequestFactory().post("/", body, content_type="multipart/form-data; boundary=B")
    post, files = _form_data(request, body)
    assert post["body-plain"] == big
    upload = files["attachment-1"]
    assert (upload.name, upload.content_type, upload.read()) == ("shot.png", "image/png", b"\x89PNG\r\n\x1a\n\x00")


@pytest.mark.parametrize("case", DELIVERIES, ids=str)
def test_storage_failure_answers_500_so_the_provider_retries(case, deliver, monkeypatch):
    def failing_store(*args: object, **kwargs: object) -> None:
        raise OSError("media volume full")

    monkeypatch.setattr("reports.intake.do_store_inbound", failing_store)
    assert deliver(case).status_code == 500
    assert not InboundMessage.objects.exists()


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
    assert not InboundMessage.objects.exists()


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
    assert not InboundMessage.objects.exists()


def test_resend_freshly_signed_delivery_is_accepted_and_a_bad_one_refused(deliver, settings):
    pytest.importorskip("svix")
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_INBOUND_SECRET": RESEND_SECRET}
    case = BY_NAME["resend"]
    now = str(int(time.time()))
    wrong = _svix_headers(RESEND_RECORDED_SECRET, case.headers["svix-id"], now, case.body())
    assert deliver(case, headers=wrong).status_code == 400
    assert not InboundMessage.objects.exists()
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
    assert not InboundMessage.objects.exists()


def test_nested_multipart_inside_a_large_form_field_is_just_bytes():
    from django.test import RequestFactory

    from reports.webhooks import _form_data

    nested = b"".join(b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (i, i) for i in range(5000))
    nested += b"x" * django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = b'--B\r\nContent-Disposition: form-data; name="body-mime"\r\n\r\n' + nested + b"\r\n--B--\r\n"
    request = RequestFactory().post("/", body, content_type="multipart/form-data; boundary=B")
    post, files = _form_data(request, body)
    assert post["body-mime"].encode() == nested
    assert not files
