from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from itertools import chain
from typing import TYPE_CHECKING

from reports.htmltext import html_to_text
from reports.mimeparts import (
    _BINARY_MAGIC,
    _DEFAULT_NAMES,
    _IDENTITY_ENCODINGS,
    _PARSE_ERRORS,
    KiB,
    MiB,
    _clean_line,
    _clean_text,
    _codec,
    _decode_body,
    _decode_words,
    _display_text,
    _flatten_comments,
    _normalise_newlines,
    _structural_text,
    _unflow,
    _unfold,
    decode_text,
    sanitize_filename,
    sniff_type,
)

if TYPE_CHECKING:
    from reports.mediahash import MediaHashes

# Parsing of untrusted inbound mail into plain data (SECURITY.md 3.1-3.3).
#
# The stdlib parser is not used to split the MIME tree: on this Python it raises RecursionError
# at 1,000 nested multiparts or message/rfc822 parts, spends 1.7 s on 10,000 parts, and its
# policy.default structured-header parser recurses once per "(" (RecursionError on a 1,000-deep
# comment in Content-Type). So the tree is walked iteratively here, over one LF-normalised buffer,
# and the stdlib is used where it is bounded: email.message.Message (compat32) for MIME parameters,
# RFC 2231 and boundaries, email.utils for addresses and dates, and policy.default for RFC 2047
# encoded words in unstructured text. Every value reaching the stdlib is capped first.


# Caps on what is handed to the stdlib header code, whose cost grows faster than the input.
_SUBJECT_BYTES = 16 * KiB
_ADDRESS_BYTES = 16 * KiB
_MIME_HEADER_BYTES = 2 * KiB
_ID_HEADER_BYTES = 64 * KiB
_SHORT_HEADER_BYTES = 1 * KiB
_ARF_VALUE_CHARS = 2048
_ARF_FIELDS = 100


@dataclass(frozen=True)
class Limits:
    max_raw: int = 50 * MiB  # twice the 25 MiB ceiling, so base64 overhead still fits
    max_depth: int = 10
    max_parts: int = 500
    max_header_bytes: int = 256 * KiB  # per header block; all blocks together get twice this
    max_header_fields: int = 1000
    max_text_chars: int = 2 * MiB  # for `text`, and again for all `nested_texts` together
    max_subject_chars: int = 998
    max_html_chars: int = 1 * MiB  # HTML converted to text, per message: at most about 0.5 s
    max_hrefs: int = 1000
    max_attachment_bytes: int = 50 * MiB  # content kept over all attachments; size and hash always
    max_references: int = 100
    max_addresses: int = 100
    max_defects: int = 100


DEFAULT_LIMITS = Limits()


@dataclass
class ParsedAttachment:
    filename: str
    declared_type: str
    sniffed_type: str
    size: int
    sha256: str
    content: bytes = field(repr=False)
    is_inline: bool = False
    opaque_reason: str | None = None
    content_id: str = ""
    # MD5 and PDQ, set by processing after the parse (reports.mediahash); None until then.
    media: MediaHashes | None = None


@dataclass
class ParsedMail:
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_address: str = ""
    from_name: str = ""
    reply_to: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    date: datetime | None = None
    auth_results: dict[str, str] = field(default_factory=dict)
    text: str = ""
    hrefs: list[str] = field(default_factory=list)
    nested_texts: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    automatic: str | None = None
    arf: dict[str, list[str]] | None = None
    defects: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    content_sha256: str = ""


# --- header blocks ------------------------------------------------------------------------------

_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
# Fields kept beyond max_header_fields and past max_header_bytes, so that 50,000 Received lines
# cannot hide the sender, the subject, the threading headers or the MIME structure.
_ESSENTIAL = frozenset(
    {
        "from", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references",
        "reply-to", "return-path", "mime-version", "content-type", "content-transfer-encoding",
        "content-disposition", "content-id", "auto-submitted", "precedence", "x-autoreply",
        "x-autorespond", "x-autoresponder", "x-auto-response-suppress", "x-loop", "list-id",
        "x-arf", "authentication-results", "x-apple-action",
    }
)  # fmt: skip
# Found past the byte cut by one regex pass (C speed) instead of the line-by-line loop.
_ESSENTIAL_NAME = re.compile(
    rb"(" + b"|".join(re.escape(name.encode()) for name in sorted(_ESSENTIAL)) + rb")[ \t]*:", re.IGNORECASE
)
_ESSENTIAL_LINE = re.compile(rb"\n" + _ESSENTIAL_NAME.pattern, re.IGNORECASE)
_FOLDED_LINE_END = re.compile(rb"\n(?![ \t])")
# Past the cut, at most this many fields are kept, each value at most this long.
_RESCUED_FIELDS = 100
_RESCUED_VALUE_BYTES = 64 * KiB


class _Fields:
    def __init__(self, fields: list[tuple[str, bytes]]) -> None:
        self.fields = fields

    def first(self, name: str) -> bytes | None:
        return next((value for key, value in self.fields if key == name), None)

    def all(self, name: str) -> list[bytes]:
        return [value for key, value in self.fields if key == name]

    def text(self, name: str, cap: int) -> str | None:
        value = self.first(name)
        return None if value is None else _display_text(_unfold(value, cap)).strip()


@dataclass
class _MimeView:
    """A compat32 Message holding only the capped MIME headers, for the stdlib's parameter code
    (which, unlike policy.default's, neither recurses nor slows down on hostile parameters)."""

    msg: Message
    codec: str  # how Content-Type was decoded, to encode the boundary back to the same bytes
    raw_8bit: bool  # some MIME header held bytes that are not UTF-8

    @classmethod
    def of(cls, fields: _Fields, default_type: str) -> _MimeView:
        msg = Message()
        codecs_used: dict[str, str] = {}
        for name in ("Content-Type", "Content-Disposition"):
            value = fields.first(name.lower())
            if value is not None:
                text, codecs_used[name] = _structural_text(_unfold(value, _MIME_HEADER_BYTES))
                msg.set_raw(name, _flatten_comments(text))
        msg.set_default_type(default_type)
        return cls(msg, codecs_used.get("Content-Type", "utf-8"), "latin-1" in codecs_used.values())

    def filename(self) -> str:
        """The declared file name, with RFC 2231 and RFC 2047 decoded, not yet sanitised."""
        name = _safe_str(self.msg.get_filename) or ""
        if self.raw_8bit and not name.isascii() and max(name) <= "\xff":
            # Raw 8-bit UTF-8 in the header, read as Latin-1 above; tolerate a cut last character.
            repaired = name.encode("latin-1").decode("utf-8", errors="replace")
            if repaired.count("\ufffd") <= 2:
                name = repaired
        return _clean_line(_decode_words(name[:_MIME_HEADER_BYTES]))


def _safe_str(call: Callable[..., object], *args: object) -> str | None:
    try:
        value = call(*args)
    except _PARSE_ERRORS:
        return None
    return value if isinstance(value, str) else None


# --- the walk -------------------------------------------------------------------------------------


@dataclass
class _Context:
    """One message of the tree: the outer mail, or a message/rfc822 part inside it."""

    pieces: list[tuple[int | None, str, str]] = field(default_factory=list)
    summary: str = ""


@dataclass
class _Entity:
    buf: bytes
    start: int
    end: int
    depth: int
    path: str
    ctx: int
    alt: int | None = None
    default_type: str = "text/plain"
    message_root: bool = False


class _Walker:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.mail = ParsedMail()
        self.contexts: list[_Context] = [_Context()]
        self.stack: list[_Entity] = []
        self.parts = 0
        self.alt_groups = 0
        self.header_budget = 2 * limits.max_header_bytes
        self.text_left = [limits.max_text_chars, limits.max_text_chars]  # outer mail, nested mail
        self.html_left = limits.max_html_chars
        self.attachment_bytes_left = limits.max_attachment_bytes
        self.href_set: set[str] = set()
        self.root_fields = _Fields([])
        self.root_body = (b"", 0, 0)
        self.report_type = ""
        self.saw_dsn = False
        self.saw_mdn = False
        self.arf: dict[str, list[str]] | None = None
        self.xarf = False
        self.original = b""

    def defect(self, message: str) -> None:
        defects = self.mail.defects
        if len(defects) < self.limits.max_defects:
            defects.append(_clean_line(message))
        elif len(defects) == self.limits.max_defects:
            defects.append("further defects not listed")

    def truncate(self, limit: str) -> None:
        if limit not in self.mail.truncated:
            self.mail.truncated.append(limit)

    def where(self, path: str) -> str:
        return f"part {path}" if path else "message"

    # Header blocks ----------------------------------------------------------------------------

    def scan_header(self, buf: bytes, start: int, end: int, path: str) -> tuple[_Fields, int]:
        """Split a header block into (name, raw value) fields; return them and where the body starts."""
        lim = self.limits
        stop = min(end, start + max(0, min(lim.max_header_bytes, self.header_budget)))
        fields: list[tuple[str, bytes]] = []
        name: str | None = None
        value_start = value_end = 0
        dropped = 0
        pos = start
        body = end
        while True:
            if pos >= stop:
                if pos < end:
                    self.truncate("max_header_bytes")
                    blank = buf.find(b"\n\n", max(start, pos - 1), end)
                    body = end if blank == -1 else blank + 2
                    if name is not None:
                        fields.append((name, buf[value_start:value_end]))
                        name = None
                    rescued = self.rescue_fields(buf, pos, body - 1 if blank != -1 else end)
                    fields.extend(rescued)
                    self.defect(
                        f"{self.where(path)}: header block over {lim.max_header_bytes} bytes; cut, "
                        f"{len(rescued)} essential fields kept from the rest"
                    )
                break
            newline = buf.find(b"\n", pos, end)
            line_end = end if newline == -1 else newline
            if line_end == pos:
                body = pos + 1
                break
            first = buf[pos]
            if first in (32, 9):
                if name is not None:
                    value_end = min(line_end, stop)
                elif not fields and pos == start:
                    self.defect(f"{self.where(path)}: header block starts with a continuation line")
            else:
                match = _FIELD_NAME.match(buf, pos, line_end)
                if match is None:
                    if not (pos == start and buf.startswith(b"From ", pos)):  # mbox separator
                        body = pos
                        if fields or name is not None:
                            self.defect(f"{self.where(path)}: no blank line between header and body")
                        break
                else:
                    if name is not None:
                        fields.append((name, buf[value_start:value_end]))
                    name = match.group(1).decode("ascii").lower()
                    kept = len(fields)
                    if kept >= lim.max_header_fields and (
                        name not in _ESSENTIAL or kept >= lim.max_header_fields + 100
                    ):
                        name = None
                        dropped += 1
                    else:
                        value_start, value_end = match.end(), min(line_end, stop)
            pos = line_end + 1
        if name is not None:
            fields.append((name, buf[value_start:value_end]))
        self.header_budget -= max(0, min(pos, end) - start)
        if dropped:
            self.truncate("max_header_fields")
            self.defect(
                f"{self.where(path)}: {dropped} header fields over the limit of {lim.max_header_fields} dropped"
            )
        return _Fields(fields), body

    def rescue_fields(self, buf: bytes, start: int, end: int) -> list[tuple[str, bytes]]:
        """The essential fields of the header lines from `start` (a line start) to `end`."""
        rescued: list[tuple[str, bytes]] = []
        first = _ESSENTIAL_NAME.match(buf, start, end)
        for match in chain([first] if first else [], _ESSENTIAL_LINE.finditer(buf, start, end)):
            if len(rescued) >= _RESCUED_FIELDS:
                break
            stop = min(end, match.end() + _RESCUED_VALUE_BYTES)
            line_end = _FOLDED_LINE_END.search(buf, match.end(), stop)
            value_end = line_end.start() if line_end else stop
            rescued.append((match.group(1).decode("ascii").lower(), buf[match.end() : value_end]))
        return rescued

    def transfer_encoding(self, fields: _Fields, path: str) -> str:
        values = {_unfold(v, 256).strip().lower() for v in fields.all("content-transfer-encoding")}
        if len(values) > 1:
            self.defect(f"{self.where(path)}: conflicting Content-Transfer-Encoding fields; the first is used")
        first = fields.first("content-transfer-encoding")
        if first is None:
            return ""
        return _unfold(first, 256).decode("latin-1").strip().strip("\"'").split(";")[0].strip().lower()

    # The walk --------------------------------------------------------------------------------

    def run(self, data: bytes, original: bytes) -> None:
        self.original = original
        self.parts = 1
        self.stack.append(_Entity(data, 0, len(data), 0, "", 0, message_root=True))
        while self.stack:
            entity = self.stack.pop()
            try:
                self.process(entity)
            except _PARSE_ERRORS as exc:  # one broken part must not cost the others
                self.defect(f"{self.where(entity.path)} could not be parsed ({type(exc).__name__}); kept opaque")
                self.opaque(entity, f"parse error: {type(exc).__name__}")

    def add_children(self, parent: _Entity, spans: list[tuple[int, int]], buf: bytes, subtype: str) -> None:
        alt = parent.alt
        if subtype == "alternative":
            self.alt_groups += 1
            alt = self.alt_groups
        default_type = "message/rfc822" if subtype == "digest" else "text/plain"
        children = []
        for index, (start, end) in enumerate(spans, 1):
            if self.parts >= self.limits.max_parts:
                self.truncate("max_parts")
                self.defect(
                    f"{self.where(parent.path)}: more than {self.limits.max_parts} MIME parts; the rest is not parsed"
                )
                break
            self.parts += 1
            path = f"{parent.path}.{index}" if parent.path else str(index)
            children.append(_Entity(buf, start, end, parent.depth + 1, path, parent.ctx, alt, default_type))
        self.stack.extend(reversed(children))

    def process(self, entity: _Entity) -> None:
        fields, body = self.scan_header(entity.buf, entity.start, entity.end, entity.path)
        if entity.message_root:
            if entity.ctx == 0:
                self.root_fields = fields
                self.root_body = (entity.buf, body, entity.end)
            else:
                self.contexts[entity.ctx].summary = _summary(fields)
        view = _MimeView.of(fields, entity.default_type)
        mime = view.msg
        ctype = _safe_str(mime.get_content_type) or "text/plain"
        if entity.ctx == 0 and entity.message_root:
            self.report_type = (_safe_str(mime.get_param, "report-type") or "").strip().lower()
            if (fields.text("x-arf", _SHORT_HEADER_BYTES) or "").lower() == "yes":
                self.xarf = True
                self.arf = {"x-arf": ["yes"]}
        cte = self.transfer_encoding(fields, entity.path)
        buf, start, end = entity.buf, body, entity.end
        main, _, subtype = ctype.partition("/")

        if main == "multipart":
            if entity.depth >= self.limits.max_depth:
                self.depth_exceeded(entity)
                return
            boundary = _safe_str(mime.get_boundary) or ""
            if not boundary:
                self.defect(f"{self.where(entity.path)}: {ctype} without a boundary; read as text/plain")
                self.leaf(entity, fields, view, "text/plain", cte, buf, start, end)
                return
            if len(boundary) > 70:
                self.defect(f"{self.where(entity.path)}: boundary longer than 70 characters")
            if cte not in _IDENTITY_ENCODINGS:
                self.defect(f"{self.where(entity.path)}: {ctype} with transfer encoding {cte[:40]!r}")
                decoded, _ = _decode_body(buf, start, end, cte)
                buf = _normalise_newlines(decoded)
                start, end = 0, len(buf)
            spans = self.split(buf, start, end, boundary, view.codec, entity.path)
            if spans is None:
                self.defect(f"{self.where(entity.path)}: boundary never appears; read as text/plain")
                self.leaf(entity, fields, view, "text/plain", "", buf, start, end)
                return
            self.add_children(entity, spans, buf, subtype)
            return

        if ctype in ("message/rfc822", "message/global"):
            payload, problem = _decode_body(buf, start, end, cte)
            if problem:
                self.defect(f"{self.where(entity.path)}: {problem}")
            name = view.filename()
            if not name.lower().endswith(".eml"):
                name = (name + ".eml") if name else "message.eml"
            disposition = (_safe_str(mime.get_content_disposition) or "").lower()
            deep = entity.depth >= self.limits.max_depth
            # A message inside a forwarded message is already part of the outer .eml.
            if entity.ctx == 0 or deep:
                self.attach(payload, fields, ctype, name, "max_depth" if deep else None, disposition)
            if deep:
                self.truncate("max_depth")
                self.defect(f"{self.where(entity.path)}: nested deeper than {self.limits.max_depth}; kept opaque")
                return
            if self.parts >= self.limits.max_parts:
                self.truncate("max_parts")
                return
            self.parts += 1
            self.contexts.append(_Context())
            if cte not in _IDENTITY_ENCODINGS:  # base64 forwarded mail: walk the decoded copy
                buf = _normalise_newlines(payload)
                start, end = 0, len(buf)
            self.stack.append(
                _Entity(buf, start, end, entity.depth + 1, entity.path, len(self.contexts) - 1, message_root=True)
            )
            return

        if not fields.fields and entity.message_root and entity.ctx == 0 and b"\x00" in buf[start : start + 8192]:
            self.defect("no header fields and binary content: not a mail message")
            # The bytes as received: newline normalisation would have damaged the file.
            self.attach(self.original, fields, "application/octet-stream", "not-mail.bin", "not a mail message")
            return
        self.leaf(entity, fields, view, ctype, cte, buf, start, end)

    def split(
        self, buf: bytes, start: int, end: int, boundary: str, codec: str, path: str
    ) -> list[tuple[int, int]] | None:
        """Body spans between the delimiter lines of ``boundary``; None when there is none."""
        try:
            raw = boundary.encode(codec)
        except UnicodeEncodeError:
            raw = boundary.encode("utf-8")
        # A literal first character lets the regex engine skip ahead at C speed.
        line = re.escape(b"--" + raw) + rb"(--)?[ \t]*(?=\n|\Z)"
        first = re.compile(line).match(buf, start, end)
        spans: list[tuple[int, int]] = []
        part_start: int | None = None
        closed = False
        if first is not None:
            closed = bool(first.group(1))
            part_start = None if closed else min(first.end() + 1, end)
        if not closed:
            budget = self.limits.max_parts + 1
            for match in re.compile(rb"\n" + line).finditer(buf, first.end() if first else start, end):
                if part_start is not None:
                    spans.append((part_start, max(part_start, match.start())))
                    if len(spans) > budget:
                        return spans
                if match.group(1):
                    closed = True
                    break
                part_start = min(match.end() + 1, end)
        if part_start is None:
            return None
        if not closed:
            self.defect(f"{self.where(path)}: final boundary missing")
            spans.append((part_start, end))
        return spans

    # Leaves ------------------------------------------------------------------------------------

    def leaf(
        self, entity: _Entity, fields: _Fields, view: _MimeView, ctype: str, cte: str, buf: bytes, start: int, end: int
    ) -> None:
        mime = view.msg
        disposition = (_safe_str(mime.get_content_disposition) or "").lower()
        filename = view.filename()
        payload, problem = _decode_body(buf, start, end, cte)
        if problem:
            self.defect(f"{self.where(entity.path)}: {problem}")

        ctx = self.contexts[entity.ctx]
        budget_index = 0 if entity.ctx == 0 else 1
        charset = _safe_str(mime.get_content_charset)
        is_body = ctype in ("text/plain", "text/html") and disposition != "attachment"
        if (
            is_body
            and (payload[:8].startswith(_BINARY_MAGIC) or payload[:1024].count(b"\x00") > 8)
            and not (_codec(charset) or "").startswith("utf-")
        ):
            self.defect(f"{self.where(entity.path)}: declared {ctype} but holds binary content")
            is_body = False
        if is_body:
            if self.xarf and entity.ctx == 0 and (filename or "").lower() == "report.txt":
                self.add_arf_fields(payload)
            left = self.text_left[budget_index]
            if ctype == "text/plain":
                if left <= 0:
                    self.truncate("max_text_chars")
                    return
                text = decode_text(payload[: left * 4], charset)
                if len(text) > left:  # cut before unflowing, which only ever shortens
                    text = text[:left]
                    self.truncate("max_text_chars")
                text = _clean_text(text)
                if (_safe_str(mime.get_param, "format") or "").lower() == "flowed":
                    delsp = (_safe_str(mime.get_param, "delsp") or "").lower() == "yes"
                    text = _unflow(text, delsp)
                self.add_piece(ctx, entity, "plain", text, budget_index)
                return
            if self.html_left > 0 and left > 0:
                markup = decode_text(payload[: self.html_left * 4], charset)
                if len(markup) > self.html_left:
                    markup = markup[: self.html_left]
                    self.truncate("max_html_chars")
                self.html_left -= len(markup)
                converted = html_to_text(markup, max_hrefs=self.limits.max_hrefs)
                self.add_hrefs(converted.hrefs, converted.hrefs_truncated)
                self.add_piece(ctx, entity, "html", _clean_text(converted.text), budget_index)
                return
            self.truncate("max_html_chars" if left > 0 else "max_text_chars")
            self.defect(f"{self.where(entity.path)}: HTML not converted, over the size limit")

        if ctype == "message/feedback-report":
            self.add_arf_fields(payload)
        elif ctype == "text/rfc822-headers":  # the header of a bounced or reported original
            self.contexts.append(_Context())
            self.add_piece(
                self.contexts[-1],
                entity,
                "plain",
                _clean_text(decode_text(payload[: self.text_left[1] * 4], charset)),
                1,
            )
        elif entity.ctx == 0 and ctype == "message/delivery-status":
            self.saw_dsn = True
        elif entity.ctx == 0 and ctype == "message/disposition-notification":
            self.saw_mdn = True
        opaque = None
        if ctype in ("message/external-body", "message/partial"):
            opaque = f"{ctype} is never fetched or reassembled"
        elif problem and "kept raw" in problem:
            opaque = problem
        elif is_body and ctype == "text/html":
            opaque = "max_html_chars"
        self.attach(payload, fields, ctype, filename or _DEFAULT_NAMES.get(ctype, ""), opaque, disposition)

    def add_piece(self, ctx: _Context, entity: _Entity, kind: str, text: str, budget_index: int) -> None:
        left = self.text_left[budget_index]
        if len(text) > left:
            text = text[:left]
            self.truncate("max_text_chars")
        self.text_left[budget_index] = left - len(text)
        ctx.pieces.append((entity.alt, kind, text))

    def add_hrefs(self, hrefs: Iterable[str], truncated: bool) -> None:
        for href in hrefs:
            href = _clean_line(href)
            if not href or href in self.href_set:
                continue
            if len(self.mail.hrefs) >= self.limits.max_hrefs:
                truncated = True
                break
            self.href_set.add(href)
            self.mail.hrefs.append(href)
        if truncated:
            self.truncate("max_hrefs")

    def add_arf_fields(self, payload: bytes) -> None:
        data = _normalise_newlines(payload[: 64 * KiB]).lstrip(b"\n")
        walker = _Walker(Limits(max_header_fields=_ARF_FIELDS, max_header_bytes=64 * KiB))
        fields, _ = walker.scan_header(data, 0, len(data), "")
        arf = self.arf if self.arf is not None else {}
        for name, value in fields.fields:
            values = arf.setdefault(name, [])
            if len(values) < _ARF_FIELDS:
                values.append(
                    " ".join(_clean_line(_display_text(_unfold(value, 4 * _ARF_VALUE_CHARS))).split())[
                        :_ARF_VALUE_CHARS
                    ]
                )
        self.arf = arf

    def attach(
        self,
        payload: bytes,
        fields: _Fields,
        ctype: str,
        filename: str | None,
        opaque: str | None,
        disposition: str = "",
    ) -> None:
        content_id = _clean_line(fields.text("content-id", _SHORT_HEADER_BYTES) or "").strip("<> ")[:998]
        attachment = ParsedAttachment(
            filename=sanitize_filename(filename),
            declared_type=ctype,
            sniffed_type=sniff_type(payload),
            size=len(payload),
            sha256=hashlib.sha256(payload).hexdigest(),
            content=payload,
            is_inline=disposition == "inline" or (not disposition and bool(content_id)),
            opaque_reason=opaque,
            content_id=content_id,
        )
        if len(payload) > self.attachment_bytes_left:
            # Size and hash stay, so the file is still known; the raw mail keeps the bytes.
            self.truncate("max_attachment_bytes")
            self.defect(
                f"attachment {attachment.filename!r} not kept: attachments over {self.limits.max_attachment_bytes} bytes"
            )
            attachment.content = b""
            attachment.opaque_reason = attachment.opaque_reason or "max_attachment_bytes"
        else:
            self.attachment_bytes_left -= len(payload)
        self.mail.attachments.append(attachment)

    def opaque(self, entity: _Entity, reason: str) -> None:
        """Keep a whole entity, header and body, as one undecoded attachment."""
        fields = _Fields([])
        self.attach(
            entity.buf[entity.start : entity.end], fields, "message/rfc822", f"part-{entity.path or '0'}.eml", reason
        )

    def depth_exceeded(self, entity: _Entity) -> None:
        self.truncate("max_depth")
        self.defect(f"{self.where(entity.path)}: nested deeper than {self.limits.max_depth}; kept opaque")
        self.opaque(entity, "max_depth")


# --- the outer header ------------------------------------------------------------------------------

_MESSAGE_ID = re.compile(r"<([^<>\s]{1,998})>")
_ADDR_SPEC = re.compile(r"[^@\s]+@[^@\s]+")
_AR_COMMENT = re.compile(r"\([^()]*\)")
_AR_RESULT = re.compile(r"([A-Za-z][A-Za-z0-9_.-]{0,40})(?:/[0-9]+)?[ \t]*=[ \t]*([A-Za-z]{1,20})")
_AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})


def _message_ids(value: str | None, limit: int) -> list[str]:
    if not value:
        return []
    found = _MESSAGE_ID.findall(value, 0, _ID_HEADER_BYTES) if "<" in value else value.split()
    ids = [_clean_line(i).strip("<>") for i in found[:limit]]
    return [i[:998] for i in ids if i]


def _mailboxes(fields: _Fields, name: str, defect: Callable[[str], None]) -> list[tuple[str, str]]:
    """(display name, addr-spec) pairs of every ``name`` field, as written (encoded words in the
    addr-spec are not decoded: identity comes from the parsed address, not the display)."""
    pairs: list[tuple[str, str]] = []
    for value in fields.all(name):
        text = _flatten_comments(_display_text(_unfold(value, _ADDRESS_BYTES)))
        try:
            parsed = getaddresses([text], strict=True)
        except _PARSE_ERRORS:
            parsed = [("", "")]
        if parsed == [("", "")] and text.strip():
            defect(f"{name.title()} header is ambiguous or malformed: {text[:200]!r}")
        pairs.extend((display, addr) for display, addr in parsed if addr)
    return pairs


def _normalise_address(addr: str) -> str:
    addr = _clean_line(addr).lower()
    return addr if _ADDR_SPEC.fullmatch(addr) else ""


def _summary(fields: _Fields) -> str:
    lines = []
    for name in ("From", "Date", "Subject"):
        value = fields.text(name.lower(), _SUBJECT_BYTES)
        if value:
            lines.append(f"{name}: {_clean_line(_decode_words(value))[:998]}")
    return "\n".join(lines)


def _auth_results(fields: _Fields) -> dict[str, str]:
    """Verdicts of the topmost Authentication-Results field, the one our own receiver added."""
    value = fields.text("authentication-results", 8 * KiB)
    if not value:
        return {}
    for _ in range(3):
        value = _AR_COMMENT.sub(" ", value)
    authserv, *results = value.split(";")
    verdicts = {"authserv-id": _clean_line(authserv)[:255]}
    for result in results[:50]:
        match = _AR_RESULT.match(result.strip())
        if match is None:
            continue
        method, verdict = match.group(1).lower(), match.group(2).lower()
        if method not in verdicts or (verdict == "pass" and verdicts[method] != "pass"):
            verdicts[method] = verdict
    return verdicts


def _first_token(value: str | None) -> str:
    return value.split(";")[0].strip().lower().split(" ")[0] if value else ""


def _automatic(walker: _Walker, fields: _Fields, from_local: str, own: set[str], loop_marker: str) -> str | None:
    mail = walker.mail
    if mail.from_address and mail.from_address in own:
        return "loop"
    marker = loop_marker.strip().lower()
    if marker and any(marker in _display_text(_unfold(v, 4 * KiB)).lower() for v in fields.all("x-loop")):
        return "loop"
    if walker.arf is not None:
        return None  # an ARF report is automatic by nature but is evidence, not noise
    auto_submitted = _first_token(fields.text("auto-submitted", _SHORT_HEADER_BYTES))
    if auto_submitted and auto_submitted != "no":
        return f"auto-submitted: {auto_submitted[:64]}"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        value = fields.text(name, _SHORT_HEADER_BYTES)
        if value is not None and value.lower() not in ("no", "false", "0"):
            return name
    precedence = _first_token(fields.text("precedence", _SHORT_HEADER_BYTES))
    if precedence in _AUTOMATIC_PRECEDENCE:
        return f"precedence: {precedence}"
    if walker.report_type == "delivery-status" or walker.saw_dsn:
        return "dsn"
    if walker.report_type == "disposition-notification" or walker.saw_mdn:
        return "disposition-notification"
    if from_local in ("mailer-daemon", "postmaster"):
        return from_local
    suppress = (fields.text("x-auto-response-suppress", _SHORT_HEADER_BYTES) or "").lower()
    if "all" in re.split(r"[\s,]+", suppress):
        return "x-auto-response-suppress: all"
    if (fields.text("x-apple-action", _SHORT_HEADER_BYTES) or "").lower() == "vacation":
        return "x-apple-action: vacation"
    if (fields.text("return-path", _SHORT_HEADER_BYTES) or "").replace(" ", "") == "<>":
        return "null return-path"
    if fields.first("list-id") is not None:
        return "list-id"
    return None


def _read_outer_header(walker: _Walker, own_addresses: Collection[str], loop_marker: str) -> None:
    mail, fields, lim = walker.mail, walker.root_fields, walker.limits
    mail.message_id = next(iter(_message_ids(fields.text("message-id", _SHORT_HEADER_BYTES), 1)), "")
    mail.in_reply_to = next(iter(_message_ids(fields.text("in-reply-to", _ID_HEADER_BYTES), 1)), "")
    mail.references = _message_ids(fields.text("references", _ID_HEADER_BYTES), lim.max_references)

    subject = fields.text("subject", _SUBJECT_BYTES)
    if subject is not None:
        subject = _clean_line(_decode_words(subject))
        if len(subject) > lim.max_subject_chars or len(fields.first("subject") or b"") > _SUBJECT_BYTES:
            walker.truncate("max_subject_chars")
        mail.subject = subject[: lim.max_subject_chars]
    for name in ("from", "subject", "date", "message-id", "content-type"):
        if len(fields.all(name)) > 1:
            walker.defect(f"{len(fields.all(name))} {name.title()} fields; the first is used")

    senders = _mailboxes(_Fields([f for f in fields.fields if f[0] == "from"][:1]), "from", walker.defect)
    from_local = senders[0][1].split("@")[0].strip().lower() if senders else ""
    if len(senders) == 1:
        mail.from_address = _normalise_address(senders[0][1])
        mail.from_name = _clean_line(_decode_words(senders[0][0]))[:998]
        if not mail.from_address:
            walker.defect("From address is not a plain addr-spec")
        if "@" in mail.from_name:
            walker.defect("From display name contains '@'")
        if "=?" in senders[0][1]:
            walker.defect("encoded word inside the From address")
    elif len(senders) > 1:
        walker.defect("From names several mailboxes; no sender taken")
    reply_to = _mailboxes(fields, "reply-to", walker.defect)
    mail.reply_to = _normalise_address(reply_to[0][1]) if reply_to else ""
    for name, target in (("to", mail.to), ("cc", mail.cc)):
        addresses = [a for a in (_normalise_address(addr) for _, addr in _mailboxes(fields, name, walker.defect)) if a]
        if len(addresses) > lim.max_addresses:
            walker.truncate("max_addresses")
        target.extend(addresses[: lim.max_addresses])

    date = fields.text("date", 256)
    if date:
        try:
            parsed = parsedate_to_datetime(date)
            mail.date = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except _PARSE_ERRORS:
            walker.defect(f"unreadable Date {_clean_line(date)[:80]!r}")

    mail.auth_results = _auth_results(fields)
    if walker.report_type == "feedback-report" and walker.arf is None:
        walker.arf = {}
        walker.defect("feedback report without a message/feedback-report part")
    own = {a.strip().lower() for a in own_addresses}
    mail.automatic = _automatic(walker, fields, from_local, own, loop_marker)


def _assemble(ctx: _Context) -> str:
    """Plain parts win over HTML inside each multipart/alternative; elsewhere every part counts."""
    with_plain = {alt for alt, kind, _ in ctx.pieces if alt is not None and kind == "plain"}
    chosen = [text for alt, kind, text in ctx.pieces if alt is None or (kind == "plain") == (alt in with_plain)]
    return "\n\n".join(text.strip("\n") for text in chosen if text.strip())


def _body_sha256(buf: bytes, start: int, end: int) -> str:
    tail = buf[max(start, end - 4096) : end]
    stripped = tail.rstrip(b"\n")
    if stripped or end - start <= len(tail):
        end -= len(tail) - len(stripped)
    else:
        end = start + len(buf[start:end].rstrip(b"\n"))
    return hashlib.sha256(memoryview(buf)[start:end]).hexdigest()


def parse_message(
    raw: bytes,
    *,
    limits: Limits = DEFAULT_LIMITS,
    own_addresses: Collection[str] = (),
    loop_marker: str = "",
) -> ParsedMail:
    """Parse one raw inbound mail into plain data. Never raises; what could not be read is listed
    in ``defects`` and the limits that cut something in ``truncated``."""
    walker = _Walker(limits)
    try:
        data = bytes(raw)
        if len(data) > limits.max_raw:
            walker.truncate("max_raw")
            walker.defect(f"message over {limits.max_raw} bytes; the rest is not parsed")
            data = data[: limits.max_raw]
        blank = not data or data.isspace()  # no strip(): that would copy the whole message
        if blank:
            walker.defect("empty message")
        walker.run(_normalise_newlines(data), data)
        _read_outer_header(walker, own_addresses, loop_marker)
        mail = walker.mail
        if not walker.root_fields.fields and not blank:
            walker.defect("no header fields")
        mail.text = _assemble(walker.contexts[0])
        nested_left = limits.max_text_chars
        for ctx in walker.contexts[1:]:
            text = "\n\n".join(t for t in (ctx.summary, _assemble(ctx)) if t)
            if text and nested_left > 0:
                mail.nested_texts.append(text[:nested_left])
                nested_left -= len(text)
        mail.arf = walker.arf
        mail.content_sha256 = _body_sha256(*walker.root_body)
        return mail
    except _PARSE_ERRORS as exc:  # the last line of defence: intake must never crash on a mail
        walker.defect(f"parser failure ({type(exc).__name__}); partial result")
        return walker.mail
