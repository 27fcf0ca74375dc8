"""Decoding primitives for inbound mail: charsets, transfer encodings, filenames, content sniffing.

Each function is bounded and never raises on hostile input; reports.mime walks the MIME tree
and calls these on every part.
"""

from __future__ import annotations

import binascii
import codecs
import re
from email import policy
from email.errors import MessageError

import puremagic

KiB = 1024
MiB = 1024 * KiB
_FILENAME_CHARS = 255
_SNIFF_BYTES = 64 * KiB

# What hostile input can make parsing code raise. Anything else, such as the processing
# time limit's signal-raised exception, is not ours to swallow.
_PARSE_ERRORS = (
    ArithmeticError, AssertionError, AttributeError, LookupError, MemoryError, RecursionError,
    TypeError, ValueError, MessageError, re.error,
)  # fmt: skip


# --- small text helpers -------------------------------------------------------------------------

_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Single-line values also lose bidi embeddings and overrides (the "gpj.exe" trick), and the
# invisible zero-width space, word joiner and BOM that split a word so filters miss it (H4). Zero-
# width (non-)joiners stay: Persian and emoji sequences need them. Line and paragraph separators
# become spaces: a display name goes into reply headers, which must stay one line.
_LINE_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200b\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
_LINE_BREAKS = frozenset("\t\n\r\u2028\u2029")
_SURROGATES = re.compile("[\ud800-\udfff]")


def _clean_text(value: str) -> str:
    """Multi-line text safe for a PostgreSQL text column: no NUL, controls or lone surrogates, and
    line and paragraph separators written as the newlines they mean. Bidi controls stay (they are
    part of what was written); the workspace shows them instead of obeying them."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if "\u2028" in value or "\u2029" in value:
        value = value.replace("\u2028", "\n").replace("\u2029", "\n\n")
    return _SURROGATES.sub("\ufffd", _CONTROLS.sub("", value))


def _clean_line(value: str) -> str:
    value = _LINE_CONTROLS.sub(lambda m: " " if m.group() in _LINE_BREAKS else "", value)
    return _SURROGATES.sub("\ufffd", value).strip()


_HEADER_END = re.compile(rb"\r?\n\r?\n|\r\r")


def header_block(raw: bytes) -> bytes:
    """The raw header block up to the blank line that ends it (all of `raw` when there is none).
    A bare-CR blank line counts too, as it does for the parser after _normalise_newlines."""
    end = _HEADER_END.search(raw)
    return raw[: end.end()] if end else raw


def _normalise_newlines(data: bytes) -> bytes:
    """CRLF and bare CR become LF. bytes.replace allocates once; re.sub would hold every piece."""
    if b"\r" not in data:
        return data
    data = data.replace(b"\r\n", b"\n")
    return data.replace(b"\r", b"\n") if b"\r" in data else data


def _unfold(value: bytes, cap: int) -> bytes:
    return value[:cap].replace(b"\n", b"")


def _display_text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("cp1252", errors="replace")


def _structural_text(value: bytes) -> tuple[str, str]:
    """Decode a MIME header so that its boundary can be encoded back to the same bytes."""
    try:
        return value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return value.decode("latin-1"), "latin-1"


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; the input is already capped by the caller."""
    if "=?" not in value:
        return value
    try:
        return str(policy.default.header_factory("subject", value))
    except _PARSE_ERRORS:
        return value


def _flatten_comments(value: str, max_depth: int = 3) -> str:
    """Drop RFC 5322 comments when they nest deeper than the stdlib parses safely."""
    outside: list[str] = []
    depth = deepest = 0
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quoted:
            quoted = ch != '"'
        elif ch == '"' and depth == 0:
            quoted = True
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
            continue
        elif ch == ")" and depth:
            depth -= 1
            continue
        if depth == 0:
            outside.append(ch)
    return value if deepest <= max_depth else "".join(outside)


# --- filenames and content sniffing ------------------------------------------------------------

_FILENAME_DROP = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_FILENAME_REPLACE = re.compile(r'[<>:"|?*]')
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$", "clock$"}
    | {f"{dev}{n}" for dev in ("com", "lpt") for n in (*"0123456789", "¹", "²", "³")}
)


def sanitize_filename(name: str | None, default: str = "attachment") -> str:
    """A display and storage name: last path component only, no control or bidi characters,
    Windows device names prefixed, at most 255 characters and 255 UTF-8 bytes, never empty."""
    name = _FILENAME_DROP.sub("", _SURROGATES.sub("", name or ""))
    parts = [p for p in name.replace("\\", "/").split("/") if p.strip(" .")]
    name = _FILENAME_REPLACE.sub("_", parts[-1] if parts else "").strip(" .")
    if not name:
        return default
    if name.split(".")[0].rstrip(" ").lower() in _WINDOWS_RESERVED:
        name = "_" + name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 16 or not stem:
        stem, ext = name, ""
    suffix = "." + ext if ext else ""
    while len(stem + suffix) > _FILENAME_CHARS or len((stem + suffix).encode()) > _FILENAME_CHARS:
        over = max(len(stem + suffix) - _FILENAME_CHARS, 1)
        stem = stem[:-over] if len(stem) > over else stem[:-1]
        if not stem:
            return (suffix.lstrip(".") or default)[:_FILENAME_CHARS]
    return stem.rstrip(" .") + suffix if stem.rstrip(" .") else default


# Prefixes browsers treat as HTML (WHATWG MIME sniffing), checked before puremagic because a
# declared image/png holding HTML must come out as text/html.
_HTML_PREFIXES = tuple(
    f"<{tag}".encode()
    for tag in (
        "!doctype html", "html", "head", "script", "iframe", "h1", "div", "font", "table", "a",
        "style", "title", "b", "body", "br", "p", "!--", "meta", "form", "object", "embed",
    )
)  # fmt: skip
_TEXT_BYTES = bytes(range(9, 14)) + bytes(range(32, 256))
_OOXML = ((b"word/", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
          (b"xl/", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
          (b"ppt/", "application/vnd.openxmlformats-officedocument.presentationml.presentation"))  # fmt: skip


def sniff_type(content: bytes) -> str:
    """The content type judged from the bytes alone; the declared type is never consulted."""
    if not content:
        return "application/x-empty"
    head = content[:_SNIFF_BYTES]
    lead = head[:1024].lstrip(b"\xef\xbb\xbf\t\n\x0c\r ").lower()
    if lead.startswith(b"<svg") or (lead.startswith(b"<?xml") and b"<svg" in lead):
        return "image/svg+xml"
    for prefix in _HTML_PREFIXES:
        if lead.startswith(prefix) and lead[len(prefix) : len(prefix) + 1] in (b" ", b">", b"\t", b"\n", b"/"):
            return "text/html"
    if lead.startswith(b"<?xml"):
        return "application/xml"
    if head.startswith(b"PK\x03\x04"):
        names = head[:4096]
        return next((mime for marker, mime in _OOXML if marker in names), "application/zip")
    try:
        matches = puremagic.magic_string(content)
    except _PARSE_ERRORS:
        matches = []
    for match in sorted(matches, key=lambda m: -m.confidence):
        if match.mime_type:
            return str(match.mime_type)
    if b"\x00" not in head:
        sample = head[:8192]
        try:
            sample.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as exc:
            if exc.start >= len(sample) - 3:  # a character cut by the sample boundary
                return "text/plain"
        if len(sample.translate(None, _TEXT_BYTES)) * 20 < len(sample):
            return "text/plain"
    return "application/octet-stream"


# --- charsets and transfer encodings -----------------------------------------------------------

_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "ascii",
    "iso-8859-8-i": "iso-8859-8", "x-sjis": "shift_jis", "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "windows-874": "cp874",
    "x-user-defined": "cp1252", "unicode-1-1-utf-7": "utf-7", "x-unicode-1-1-utf-7": "utf-7",
}  # fmt: skip
# Codecs that are not charsets (and punycode's decoder is quadratic).
_REFUSED_CODECS = frozenset({"idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined", "mbcs", "oem"})
_UTF8_FAMILY = frozenset({"utf-8", "ascii"})


def _codec(charset: str | None) -> str | None:
    if not charset or len(charset) > 40:
        return None
    name = charset.strip().strip("\"'").lower()
    try:
        info = codecs.lookup(_CHARSET_ALIASES.get(name, name))
    except (LookupError, ValueError):
        return None
    if info.name in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode_text(data: bytes, charset: str | None) -> str:
    """Declared charset, then UTF-8, then the declared one (or cp1252) replacing what is invalid."""
    codec = _codec(charset)
    for name in (codec, "utf-8"):
        if name:
            try:
                return data.decode(name)
            except _PARSE_ERRORS:  # exotic codecs raise more than UnicodeDecodeError
                pass
    fallback = codec if codec and codec not in _UTF8_FAMILY else "cp1252"
    try:
        return data.decode(fallback, errors="replace")
    except _PARSE_ERRORS:
        return data.decode("cp1252", errors="replace")


_B64_KEEP = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_B64_VALID = _B64_KEEP + b" \t\n\r\x0b\x0c"
_B64_DELETE = bytes(b for b in range(256) if b not in _B64_KEEP)
_PADDING = re.compile(rb"=+")
_QP_SOFT_BREAK_SPACES = re.compile(rb"=[ \t]+(?=\n)")
_BINARY_MAGIC = (
    b"\x89PNG",
    b"GIF8",
    b"\xff\xd8\xff",
    b"%PDF-",
    b"PK\x03\x04",
    b"MZ\x90",
    b"\x1f\x8b\x08",
    b"Rar!\x1a",
    b"7z\xbc\xaf",
    b"\xd0\xcf\x11\xe0",
)
_DEFAULT_NAMES = {
    "message/delivery-status": "delivery-status.txt",
    "message/disposition-notification": "disposition-notification.txt",
    "message/feedback-report": "feedback-report.txt",
    "text/rfc822-headers": "headers.txt",
}
_UU_ENCODINGS = frozenset({"x-uuencode", "uuencode", "x-uue", "uue"})
_IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})


def _count_junk(buf: bytes, start: int, end: int) -> int:
    """Bytes outside the base64 alphabet and whitespace, counted a MiB at a time."""
    return sum(len(buf[i : min(i + MiB, end)].translate(None, _B64_VALID)) for i in range(start, end, MiB))


def _decode_base64(buf: bytes, start: int, end: int) -> tuple[bytes, str | None]:
    junk = _count_junk(buf, start, end)
    if junk * 50 > end - start:
        return buf[start:end], "not base64 although declared so; kept raw"
    first_pad = buf.find(b"=", start, end)
    if not junk and (first_pad == -1 or not buf[first_pad:end].strip(b"= \t\n")):
        try:
            return binascii.a2b_base64(memoryview(buf)[start:end]), None
        except binascii.Error:
            pass
    # Damaged: decode each run between padding separately (mailers that pad every line), and
    # repair lengths instead of failing.
    chunks = []
    for chunk in _PADDING.split(buf[start:end].translate(None, _B64_DELETE)):
        if len(chunk) % 4 == 1:
            chunk = chunk[:-1]
        chunks.append(binascii.a2b_base64(chunk + b"=" * (-len(chunk) % 4)))
    return b"".join(chunks), "damaged base64 decoded leniently"


def _decode_uu(data: bytes) -> tuple[bytes, str | None]:
    lines = data.split(b"\n")
    begin = next((i for i, line in enumerate(lines) if line.startswith(b"begin")), None)
    if begin is None:
        return data, "uuencoded part without a begin line; kept raw"
    out: list[bytes] = []
    damaged = False
    for line in lines[begin + 1 :]:
        if line.strip() == b"end":
            break
        if not line.strip():
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            try:
                out.append(binascii.a2b_uu(line[: (((line[0] - 32) & 63) * 4 + 5) // 3]))
            except binascii.Error:
                damaged = True
    return b"".join(out), "damaged uuencoding decoded leniently" if damaged else None


def _decode_body(buf: bytes, start: int, end: int, cte: str) -> tuple[bytes, str | None]:
    """The payload bytes of a part and, when decoding was not clean, why."""
    if cte in _IDENTITY_ENCODINGS:
        return buf[start:end], None
    if cte == "base64":
        return _decode_base64(buf, start, end)
    if cte == "quoted-printable":
        return binascii.a2b_qp(_QP_SOFT_BREAK_SPACES.sub(b"=", buf[start:end])), None
    if cte in _UU_ENCODINGS:
        return _decode_uu(buf[start:end])
    return buf[start:end], f"unknown transfer encoding {cte[:40]!r}; kept raw"


def _unflow(text: str, delsp: bool) -> str:
    """Join the soft line breaks of format=flowed text (RFC 3676)."""
    out: list[str] = []
    para: list[str] = []
    para_depth = 0
    for line in text.split("\n"):
        content = line.lstrip(">")
        depth = len(line) - len(content)
        if content.startswith(" "):
            content = content[1:]
        if para and depth != para_depth:
            out.append(">" * para_depth + (" " if para_depth else "") + "".join(para))
            para = []
        flowed = content.endswith(" ") and content != "-- "
        para.append(content[:-1] if flowed and delsp else content)
        para_depth = depth
        if not flowed:
            out.append(">" * depth + (" " if depth else "") + "".join(para))
            para = []
    if para:
        out.append(">" * para_depth + (" " if para_depth else "") + "".join(para))
    return "\n".join(out)
