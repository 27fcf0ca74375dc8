"""URL wrapper around anymail's webhook views: the body size cap for provider payloads."""

from __future__ import annotations

import functools
from collections.abc import Callable
from email import policy
from email.parser import BytesParser

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils.datastructures import MultiValueDict


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
        # in a JSON or url-encoded payload.
        body = request.read(settings.ABUSEDESK_WEBHOOK_MAX_BYTES + 1)
        if len(body) > settings.ABUSEDESK_WEBHOOK_MAX_BYTES:
            # Under ASGI the stream is the whole body, whatever Content-Length claimed (or if it
            # was absent): refuse it rather than hand the view a silently truncated payload.
            return _too_large(len(body))
        request._body = body  # type: ignore[attr-defined]
        if request.content_type == "multipart/form-data" and len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            # Django would refuse any form *field* over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), and
            # Mailgun's body-mime and SendGrid's email fields hold the whole raw mail: a report
            # with a screenshot would be lost. The body is bounded by the cap above, so parse it
            # here; request.POST and request.FILES are then what anymail reads.
            try:
                request._post, request._files = _form_data(request, body)  # type: ignore[attr-defined]
            except _BadForm as exc:
                return JsonResponse({"error": str(exc)}, status=400)
        return view(request, *args, **kwargs)

    return wrapper


class _BadForm(ValueError):
    pass


def _form_data(request: HttpRequest, body: bytes) -> tuple[QueryDict, MultiValueDict]:
    """request.POST and request.FILES of a multipart/form-data body, without a per-field limit.

    RFC 7578 forms are flat, so this splits on the boundary instead of running a MIME parser
    (the stdlib's recurses into nested multiparts, and this runs before anymail checks the
    caller's credentials). The number of parts is capped like Django's own parser caps it.
    """
    boundary = (request.content_params or {}).get("boundary", "")
    if not boundary:
        raise _BadForm("multipart/form-data without a boundary")
    parts = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1", "replace"))
    limit = (settings.DATA_UPLOAD_MAX_NUMBER_FIELDS or 1000) + (settings.DATA_UPLOAD_MAX_NUMBER_FILES or 100)
    if len(parts) > limit + 2:
        raise _BadForm(f"more than {limit} form parts")
    post = QueryDict(mutable=True)
    files: MultiValueDict[str, SimpleUploadedFile] = MultiValueDict()
    # parts[0] is the preamble; the part after the closing delimiter starts with "--".
    for part in parts[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.partition(b"\r\n\r\n")
        fields = BytesParser(policy=policy.HTTP).parsebytes(head.lstrip(b" \t\r\n") + b"\r\n\r\n", headersonly=True)
        name = fields.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = fields.get_filename()
        if filename is not None:
            files.appendlist(name, SimpleUploadedFile(filename, content, fields.get_content_type()))
        else:
            charset = fields.get_content_charset() or request.encoding or "utf-8"
            post.appendlist(name, content.decode(charset, "replace"))
    post._mutable = False
    return post, files


def _too_large(size: int) -> JsonResponse:
    limit = settings.ABUSEDESK_WEBHOOK_MAX_BYTES
    return JsonResponse({"error": f"payload of {size} bytes or more exceeds {limit}"}, status=413)
