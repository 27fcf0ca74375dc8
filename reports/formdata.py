"""multipart/form-data bodies of provider webhooks, parsed without losing a raw mail's bytes.

Django's parser decodes every field with the request's charset, replacing what does not decode,
and refuses any field over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB). Mailgun's `body-mime` and
SendGrid's `email` fields hold a whole raw mail, often in koi8-r, cp1251 or Latin-1: Django would
put U+FFFD in place of those bytes below 2.5 MB and refuse the mail above it. Here the fields named
as raw mail keep their exact bytes, as a str decoded with `surrogateescape` (anymail takes a str;
reports.intake encodes it back the same way), and other fields are decoded with the charset they
declare. The webhook views bound the body before this runs (ABUSEDESK_WEBHOOK_MAX_BYTES).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import io
from collections.abc import Collection
from email import policy
from email.message import Message
from email.parser import BytesParser

from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile, UploadedFile
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _

_HEADERS = BytesParser(policy=policy.HTTP)


class BadForm(ValueError):
    """The body is not a well-formed form; the message says why (a webhook answers 400 with it)."""


def parse_form(
    body: bytes, boundary: str, *, raw_fields: Collection[str] = (), encoding: str = "utf-8"
) -> tuple[QueryDict, MultiValueDict[str, UploadedFile]]:
    """request.POST and request.FILES of a multipart/form-data body.

    Fields named in `raw_fields` keep their bytes (decoded with surrogateescape); other fields are
    decoded with their declared charset or `encoding`, replacing what does not decode, and an
    unknown charset raises BadForm. RFC 7578 forms are flat, so this splits on the boundary
    instead of running a MIME parser (the stdlib's recurses into nested multiparts, and this runs
    before anything is stored). Parts are capped as Django caps them, file names cleaned as
    Django cleans them (a part whose name cleans to nothing is dropped), and base64-encoded parts
    decoded as Django decodes them.
    """
    if not boundary:
        raise BadForm(_("multipart/form-data without a boundary"))
    dash_boundary = b"--" + boundary.encode("latin-1", "replace")
    delimiter = b"\r\n" + dash_boundary
    limit = (settings.DATA_UPLOAD_MAX_NUMBER_FIELDS or 1000) + (settings.DATA_UPLOAD_MAX_NUMBER_FILES or 100)
    if body.startswith(dash_boundary):
        position = len(dash_boundary)
    else:
        found = body.find(delimiter)
        if found < 0:
            raise BadForm(_("the form's boundary never appears in the body"))
        position = found + len(delimiter)
    post = QueryDict(mutable=True, encoding=encoding)
    files: MultiValueDict[str, UploadedFile] = MultiValueDict()
    parts = 0
    # Each turn starts right after a delimiter: "--" closes the form, anything else up to the end
    # of the line is transport padding.
    while not body.startswith(b"--", position):
        line_end = body.find(b"\r\n", position)
        following = body.find(delimiter, line_end) if line_end >= 0 else -1
        if following < 0:
            raise BadForm(_("the form ends without its closing boundary"))
        parts += 1
        if parts > limit:
            raise BadForm(_("more than %(limit)d form parts") % {"limit": limit})
        _add_part(body[line_end + 2 : following], post, files, raw_fields, encoding)
        position = following + len(delimiter)
    post._mutable = False
    return post, files


def _add_part(
    part: bytes, post: QueryDict, files: MultiValueDict[str, UploadedFile], raw_fields: Collection[str], encoding: str
) -> None:
    if part.startswith(b"\r\n"):
        head, content = b"", part[2:]
    else:
        head, _separator, content = part.partition(b"\r\n\r\n")
    headers: Message = _HEADERS.parsebytes(head + b"\r\n\r\n", headersonly=True)
    name = headers.get_param("name", header="content-disposition")
    if not isinstance(name, str):
        return  # no name (or an RFC 2231 one): Django skips such parts too
    if headers.get("content-transfer-encoding", "").strip().lower() == "base64":
        try:
            content = base64.b64decode(content)
        except binascii.Error:
            pass  # kept as sent, like Django
    charset = headers.get_content_charset()
    if headers.get_param("filename", header="content-disposition") is not None:
        filename = _clean_filename(headers.get_filename() or "")
        if filename:
            upload = InMemoryUploadedFile(
                io.BytesIO(content), name, filename, headers.get_content_type(), len(content), charset
            )
            files.appendlist(name, upload)
        return
    if name in raw_fields:
        # A raw mail: its bytes, whatever charset the part claims.
        post.appendlist(name, content.decode("utf-8", "surrogateescape"))
        return
    charset = charset or encoding
    try:
        codecs.lookup(charset)
    except LookupError:
        raise BadForm(
            _("form field %(name)r declares an unknown charset %(charset)r") % {"name": name, "charset": charset}
        ) from None
    post.appendlist(name, content.decode(charset, "replace"))


def _clean_filename(name: str) -> str:
    """The last path segment, printable characters only; "" for names Django drops ("", ".", "..")."""
    name = html.unescape(name).rsplit("/")[-1].rsplit("\\")[-1]
    name = "".join(char for char in name if char.isprintable())
    return "" if name in {".", ".."} else name
