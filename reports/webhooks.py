"""The provider webhook routes: authenticate, check, store the request as received, answer.

Every route of django-anymail's URLconf is wrapped here (abusedesk/urls.py). A POST is refused
before its body is read unless its basic auth matches one of the configured secrets, compared in
constant time; bodies over ABUSEDESK_WEBHOOK_MAX_BYTES get 413. On the inbound routes the request
is then checked as anymail checks it (the provider's signature where it signs, with anymail's own
validators) and stored as received (reports.intake.do_store_inbound_webhook), which is all that
happens before the 200: the drain parses it with anymail and stores the mail inside. The tracking
routes, which carry no mail, go on to anymail's view.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable

from anymail.utils import get_anymail_setting, get_request_basic_auth
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from reports.formdata import BadForm, parse_form
from reports.intake import RAW_MAIL_FIELDS, do_store_inbound_webhook, is_inbound_route

logger = logging.getLogger(__name__)

View = Callable[..., HttpResponse]
# Providers whose payload is a form; every other one posts JSON (SES as text/plain).
FORM_PROVIDERS = frozenset({"webhook:mailgun", "webhook:mandrill", "webhook:sendgrid"})
_JSON_START = re.compile(rb"\s*[\[{]")


def webhook_view(view: View, route: str) -> View:
    """Wrap one of django-anymail's URL callbacks (`route` is its URL name)."""
    view_class = view.view_class  # type: ignore[attr-defined]
    source = "webhook:" + view_class.esp_name.lower().replace(" ", "_")
    # The tracking routes carry no mail: past the gate, anymail's view does all.
    handle = _inbound(view, route, source) if is_inbound_route(route) else view

    # wraps() carries anymail's csrf_exempt and login_not_required markers over; set them anyway,
    # they are what lets a provider in.
    @csrf_exempt
    @login_not_required
    @functools.wraps(view)
    def dispatch(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)  # anymail's: HEAD answered (providers probe), GET 405
        refused = _admit(request, source)
        return refused or handle(request, *args, **kwargs)

    return dispatch


def _inbound(view: View, route: str, source: str) -> View:
    view_class, initkwargs = view.view_class, view.view_initkwargs  # type: ignore[attr-defined]

    def store(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if source not in FORM_PROVIDERS and not _JSON_START.match(request.body):
            return _refusal(400, _("this provider posts JSON; the body is not JSON"))
        # anymail's checks without its parsing: basic auth again and the provider's signature
        # where it signs (a failure raises AnymailWebhookValidationFailure, which Django answers
        # with 400). A new view instance reads the keys from the settings, as anymail's does.
        view_class(**initkwargs).run_validators(request)
        do_store_inbound_webhook(request.body, source=source, route=route, meta=request.META)
        return HttpResponse()

    return store


def _admit(request: HttpRequest, source: str) -> HttpResponse | None:
    """None when the request may be read: its basic auth is right and its size within the cap.
    Then its body is read (request.body) and, for a form, parsed; otherwise the refusal."""
    supplied = get_request_basic_auth(request)
    if supplied is None:
        if source == "webhook:amazon_ses":
            # Amazon SNS sends credentials only after a 401 challenge.
            response = _refusal(401, _("basic auth required"))
            response["WWW-Authenticate"] = 'Basic realm="abusedesk webhooks"'
            return response
        return _refusal(400, _("basic auth required"))
    if not _known_secret(supplied):
        logger.warning("webhook %s refused: wrong basic auth", request.path)
        return _refusal(400, _("wrong basic auth"))
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _refusal(400, _("bad Content-Length"))
    if length > settings.ABUSEDESK_WEBHOOK_MAX_BYTES:
        return _too_large(length)
    # Read here, bounded by the cap above, so Django's global 2.5 MB DATA_UPLOAD_MAX_MEMORY_SIZE
    # (right for every other view) does not reject a large mail.
    body = request.read(settings.ABUSEDESK_WEBHOOK_MAX_BYTES + 1)
    if len(body) > settings.ABUSEDESK_WEBHOOK_MAX_BYTES:
        # Under ASGI the stream is the whole body, whatever Content-Length claimed (or if it was
        # absent): refuse it rather than store a silently truncated payload.
        return _too_large(len(body))
    request._body = body  # type: ignore[attr-defined]
    if request.content_type == "multipart/form-data":
        try:
            request._post, request._files = parse_form(  # type: ignore[attr-defined]
                body,
                (request.content_params or {}).get("boundary", ""),
                raw_fields=RAW_MAIL_FIELDS.get(source, ()),
                encoding=request.encoding or settings.DEFAULT_CHARSET,
            )
        except BadForm as exc:
            return _refusal(400, str(exc))
    return None


def _known_secret(supplied: str) -> bool:
    """Whether `supplied` ("user:password") is one of the configured webhook secrets (several
    during a rotation), read on every request. Each is compared in constant time, and all of them
    every time, so the answer's timing tells nothing about which one came close."""
    secrets = get_anymail_setting("webhook_secret", default=[])
    if isinstance(secrets, str):
        secrets = [secrets]
    matched = False
    for secret in secrets:
        matched |= constant_time_compare(supplied, secret)
    return matched


def _refusal(status: int, error: str) -> JsonResponse:
    return JsonResponse({"error": error}, status=status)


def _too_large(size: int) -> JsonResponse:
    return _refusal(
        413,
        _("payload of %(size)d bytes or more exceeds %(limit)d")
        % {"size": size, "limit": settings.ABUSEDESK_WEBHOOK_MAX_BYTES},
    )
