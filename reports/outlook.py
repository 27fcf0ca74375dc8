"""Outlook .msg files (reporters and colleagues save mail that way) turned into MIME mail.

The desk stores and parses MIME, so a .msg given to `ingest_mail` is converted before it is
stored, and the converted mail carries the original file as its last attachment
(application/vnd.ms-outlook, byte for byte): nothing of what was given is lost, and the
InboundMessage says it was converted (`converted_from`). The conversion is deterministic (the
boundaries derive from the file's hash), so importing the same file twice stores it once.

What is read, from the file's own streams only: the transport header block Outlook kept from the
original delivery (or, when it has none, From, To, Cc, Subject, Date and Message-ID from the
message's properties), the plain-text body, the HTML body, and every attachment. An embedded
message (a forwarded mail) becomes a message/rfc822 part converted the same way, so its links are
read as forwarded evidence. Nothing is derived: no RTF de-encapsulation and no HTML rewriting,
both of which run third-party parsers over hostile input; an RTF-only body is attached as
body.rtf.
"""

from __future__ import annotations

import hashlib
import logging
import re
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from reports.mimeparts import _PARSE_ERRORS

logger = logging.getLogger(__name__)

# Compound File Binary signature: every .msg (and .doc, .xls...) starts with it.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
CONVERTED_FROM = "outlook-msg"
MSG_CONTENT_TYPE = "application/vnd.ms-outlook"
# Embedded messages deeper than this stay .msg attachments (the parser's own depth limit is 10).
MAX_EMBEDDED_DEPTH = 3

# Header fields of the transport block that describe the original MIME structure, which the
# converted mail replaces with its own.
_MIME_FIELDS = frozenset({"mime-version", "content-type", "content-transfer-encoding", "content-disposition"})
_OUTLOOK_PREAMBLE = "Microsoft Mail Internet Headers Version 2.0"
_FIELD = re.compile(r"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,127}")
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


class NotAnOutlookMessage(ValueError):
    """The bytes are not an Outlook message extract-msg can read (a .doc, a damaged file...)."""


def is_outlook_file(data: bytes) -> bool:
    return data.startswith(OLE_MAGIC)


def convert_msg(data: bytes, *, filename: str = "message.msg") -> bytes:
    """MIME mail (CRLF line ends) holding what the .msg says, with the .msg itself attached.

    Raises NotAnOutlookMessage when the file cannot be read as an Outlook message.
    """
    import extract_msg  # imported here: only an import of .msg files needs it
    from extract_msg.msg_classes.message_base import MessageBase

    # It logs every stream it looks for and does not find at INFO: a dozen lines per file.
    logging.getLogger("extract_msg").setLevel(logging.WARNING)

    digest = hashlib.sha256(data).hexdigest()
    try:
        item = extract_msg.openMsg(data, delayAttachments=False)
    except Exception as exc:
        raise NotAnOutlookMessage(f"not a readable Outlook file: {type(exc).__name__}: {exc}") from exc
    try:
        if not isinstance(item, MessageBase):
            raise NotAnOutlookMessage(f"an Outlook {type(item).__name__}, not a message")
        original = EmailMessage(policy=policy.SMTP)
        original.set_content(data, maintype="application", subtype="vnd.ms-outlook", filename=filename or "message.msg")
        note = f"X-Abusedesk-Converted-From: Outlook .msg, sha256 {digest}; the original is attached\r\n"
        try:
            return _convert(item, digest, extra_header=note, extra_part=original)
        except Exception as exc:
            raise NotAnOutlookMessage(f"could not read the message: {type(exc).__name__}: {exc}") from exc
    finally:
        item.close()


def _convert(
    item: Any, digest: str, *, depth: int = 0, extra_header: str = "", extra_part: EmailMessage | None = None
) -> bytes:
    """One message of the file as MIME bytes; `digest` names its boundaries."""
    mail = _mime_body(item, digest, depth)
    if extra_part is not None:
        mail.attach(extra_part)
    for part in mail.walk():
        del part["MIME-Version"]
    mail["MIME-Version"] = "1.0"
    return _header_block(item) + extra_header.encode("ascii") + mail.as_bytes(policy=policy.SMTP)


def _header_block(item: Any) -> bytes:
    """The transport headers as Outlook kept them, without the MIME fields; else a synthesised block."""
    text = item.headerText or ""
    if text.startswith(_OUTLOOK_PREAMBLE):
        text = text[len(_OUTLOOK_PREAMBLE) :]
    lines = text.replace("\r\n", "\n").lstrip("\n").split("\n\n", 1)[0].split("\n")
    kept: list[str] = []
    skipping = False
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not skipping and kept:
                kept.append(line)
            continue
        field = _FIELD.match(line)
        skipping = field is None or field.group(1).lower() in _MIME_FIELDS
        if not skipping:
            kept.append(line)
    if kept:
        return "".join(line + "\r\n" for line in kept).encode("utf-8", errors="surrogateescape")
    return _synthesised_header(item)


def _synthesised_header(item: Any) -> bytes:
    head = EmailMessage(policy=policy.SMTP)
    for name, value in (
        ("From", _sender(item)),
        ("To", item.to),
        ("Cc", item.cc),
        ("Subject", item.subject),
        ("Message-ID", item.messageId),
    ):
        value = _LINE_BREAKS.sub(" ", value or "").strip()
        if not value:
            continue
        try:
            head[name] = value
        except _PARSE_ERRORS:
            # Kept where the desk still shows it, not where it would be trusted.
            head[f"X-Outlook-{name}"] = value.encode("ascii", errors="replace").decode()
    if item.date is not None:
        head["Date"] = format_datetime(item.date)
    return bytes(head)[: -len(b"\r\n")] if len(head) else b""


def _sender(item: Any) -> str:
    """Name and SMTP address from the sender properties; extract-msg's own `sender` reads only
    PR_SENDER_SMTP_ADDRESS, which many writers leave out for the typed PR_SENDER_EMAIL_ADDRESS."""
    name = item.getStringStream("__substg1.0_0C1A") or item.getStringStream("__substg1.0_0042") or ""
    address = item.getStringStream("__substg1.0_5D01") or item.getStringStream("__substg1.0_5D02")
    for address_type, typed_address in (("0C1E", "0C1F"), ("0064", "0065")):
        if not address and (item.getStringStream(f"__substg1.0_{address_type}") or "").upper() == "SMTP":
            address = item.getStringStream(f"__substg1.0_{typed_address}")
    if not address:
        return item.sender or ""
    return formataddr((_LINE_BREAKS.sub(" ", name).strip(), _LINE_BREAKS.sub("", address)))


def _mime_body(item: Any, digest: str, depth: int) -> EmailMessage:
    mail = EmailMessage(policy=policy.SMTP)
    mail.make_mixed()
    mail.set_boundary(f"=_abusedesk_{depth}_{digest[:32]}")
    plain = item.getStringStream("__substg1.0_1000")
    html = item.getStream("__substg1.0_10130102")
    bodies = []
    if plain:
        part = EmailMessage(policy=policy.SMTP)
        part.set_content(plain, subtype="plain", charset="utf-8", cte="quoted-printable")
        bodies.append(part)
    if html:
        # The HTML stream's charset is whatever Outlook wrote; the parser reads it leniently, so
        # it goes in as the bytes it is.
        part = EmailMessage(policy=policy.SMTP)
        part.set_content(bytes(html), maintype="text", subtype="html")
        bodies.append(part)
    if len(bodies) == 2:
        alternative = EmailMessage(policy=policy.SMTP)
        alternative.make_alternative()
        alternative.set_boundary(f"=_abusedesk_{depth}_alt_{digest[:32]}")
        for part in bodies:
            alternative.attach(part)
        mail.attach(alternative)
    elif bodies:
        mail.attach(bodies[0])
    elif item.rtfBody:
        mail.add_attachment(bytes(item.rtfBody), maintype="text", subtype="rtf", filename="body.rtf")
    for index, attachment in enumerate(item.attachments, 1):
        _attach(mail, attachment, index, digest, depth)
    return mail


def _attach(mail: EmailMessage, attachment: Any, index: int, digest: str, depth: int) -> None:
    """Add one attachment of the .msg; one that cannot be read is left out (the original .msg,
    attached whole, still holds it)."""
    name = _LINE_BREAKS.sub(" ", attachment.getFilename() or "").strip() or f"attachment-{index}"
    part = EmailMessage(policy=policy.SMTP)
    try:
        data_type = attachment.dataType
        if data_type is bytes:
            maintype, _, subtype = (attachment.mimetype or "application/octet-stream").partition("/")
            if not (_TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype)):
                maintype, subtype = "application", "octet-stream"
            part.set_content(bytes(attachment.data or b""), maintype=maintype, subtype=subtype, filename=name)
        elif data_type is not None and hasattr(attachment.data, "getStringStream") and depth < MAX_EMBEDDED_DEPTH:
            inner = _convert(attachment.data, f"{digest[:24]}{index:08d}", depth=depth + 1)
            part.set_content(inner, maintype="message", subtype="rfc822", cte="8bit", disposition="attachment")
            part.set_param("filename", name if name.lower().endswith(".eml") else f"{name}.eml", "Content-Disposition")
        elif data_type is not None and hasattr(attachment.data, "exportBytes"):
            # Too deep to convert: kept as the embedded .msg. Outlook writers disagree on one
            # detail of embedded property streams, which extract-msg calls a "bad embed".
            data = attachment.data.exportBytes(allowBadEmbed=True)
            part.set_content(data, maintype="application", subtype="vnd.ms-outlook", filename=name)
        else:
            logger.warning("outlook .msg: attachment %d (%s) holds no data", index, name)
            return
    except Exception:
        logger.warning("outlook .msg: attachment %d (%s) could not be read; left out", index, name, exc_info=True)
        return
    content_id = _LINE_BREAKS.sub("", attachment.contentId or "").strip("<> ")
    if content_id:
        part["Content-ID"] = f"<{content_id}>"
    mail.attach(part)
