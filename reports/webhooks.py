"""URL wrapper around anymail's webhook views: the body size cap for provider payloads."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


def capped(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 413 (which providers do not retry forever) to bodies over the webhook hard cap."""

    # wraps() also carries the view's csrf_exempt and login_required=False markers over.
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"error": "bad Content-Length"}, status=400)
        if length > settings.ABUSEDESK_WEBHOOK_MAX_BYTES:
            return _too_large(length)
        # Read the body here, bounded by the cap above, so Django's global 2.5 MB
        # DATA_UPLOAD_MAX_MEMORY_SIZE (right for every other view) does not reject a large mail
        # in a JSON or url-encoded payload. Multipart form *fields* (Mailgun's body-mime,
        # SendGrid's raw email) are still checked field by field by Django's parser.
        body = request.read(settings.ABUSEDESK_WEBHOOK_MAX_BYTES + 1)
        if len(body) > settings.ABUSEDESK_WEBHOOK_MAX_BYTES:
            # Under ASGI the stream is the whole body, whatever Content-Length claimed (or if it
            # was absent): refuse it rather than hand the view a silently truncated payload.
            return _too_large(len(body))
        request._body = body  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


def _too_large(size: int) -> JsonResponse:
    limit = settings.ABUSEDESK_WEBHOOK_MAX_BYTES
    return JsonResponse({"error": f"payload of {size} bytes or more exceeds {limit}"}, status=413)
