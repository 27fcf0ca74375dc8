from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from reports.htmltext import html_to_text
from reports.mime import (
    DEFAULT_LIMITS,
    Limits,
    ParsedMail,
    decode_text,
    parse_message,
    sanitize_filename,
    sniff_type,
)

MAIL = Path(__file__).parent.parent / "data" / "mail"
CORPUS = sorted(path for path in MAIL.rglob("*") if path.is_file())
SISIMAI = MAIL / "sisimai-arf-dsn-autoreply"
FLANKER = MAIL / "flanker-messages"
CPYTHON = MAIL / "cpython-test_email"
STALWART = MAIL / "stalwart-mail-auth-arf"

# SOURCES.md "Known traps": a part declares multipart with no usable boundary, and the stdlib's
# get_content() raises KeyError on it.
KEYERROR_TRAPS = [
    *(CPYTHON / f"msg_{n}.txt" for n in ("15", "17", "25", "31", "39", "41", "42")),
    FLANKER / "false-multipart.eml",
    FLANKER / "mailformed-headers.eml",
    *(SISIMAI / "dsn-rfc3464" / f"rfc3464-{n}.eml" for n in ("04", "06", "65")),
]
# RFC 5965 reports; the sisimai arf folder also holds Hotmail JMRP mail and an Apple
# unsubscribe notice, which are not feedback reports.
ARF_REPORTS = [
    *(
        p
        for p in sorted((SISIMAI / "arf").glob("*.eml"))
        if p.name not in ("arf-22.eml", "arf-23.eml", "arf-24.eml", "arf-26.eml")
    ),
    *sorted(STALWART.glob("*.eml")),
    FLANKER / "complaints" / "aol.eml",
    FLANKER / "complaints" / "yahoo.eml",
]
BOUNCES = [
    *sorted((SISIMAI / "dsn-rfc3464").glob("*.eml")),
    *sorted((SISIMAI / "mta-bounces").glob("*.eml")),
    *sorted((FLANKER / "bounce").glob("*.eml")),
]


def read(path: Path) -> bytes:
    return path.read_bytes()


def name_of(path: Path) -> str:
    return str(path.relative_to(MAIL))


def strings_in(value: object) -> list[str]:
    """Every string reachable from a parse result, for the database-safety checks."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings_in(k) + strings_in(v)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in strings_in(item)]
    if is_dataclass(value) and not isinstance(value, type):
        return [s for f in fields(value) for s in strings_in(getattr(value, f.name))]
    return []


def assert_storable(mail: ParsedMail) -> None:
    for text in strings_in(mail):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates: psycopg refuses them too
    for attachment in mail.attachments:
        assert attachment.filename
        assert len(attachment.filename) <= 255
        assert "/" not in attachment.filename and "\\" not in attachment.filename


def mail(*header_lines: str, body: str | bytes = "Please block t.me/example_channel.\n") -> bytes:
    """A message built byte by byte, so that tests can say exactly what is malformed."""
    head = "".join(line + "\n" for line in ("From: Reporter <reporter@example.org>", *header_lines))
    return head.encode() + b"\n" + (body.encode() if isinstance(body, str) else body)


def multipart(boundary: str, *parts: str, subtype: str = "mixed", close: bool = True) -> bytes:
    body = "".join(f"--{boundary}\n{part}\n" for part in parts) + (f"--{boundary}--\n" if close else "")
    return mail(f'Content-Type: multipart/{subtype}; boundary="{boundary}"', body=body)


# --- the real-world corpus --------------------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS, ids=name_of)
def test_every_corpus_file_parses_into_storable_values(path: Path) -> None:
    parsed = parse_message(read(path))
    assert isinstance(parsed, ParsedMail)
    assert_storable(parsed)
    assert len(parsed.content_sha256) == 64


@pytest.mark.parametrize("path", sorted((SISIMAI / "autoreply-rfc3834").glob("*.eml")), ids=name_of)
def test_auto_replies_are_classified_automatic(path: Path) -> None:
    assert parse_message(read(path)).automatic


def test_auto_submitted_reply_names_its_reason() -> None:
    parsed = parse_message(read(SISIMAI / "autoreply-rfc3834" / "rfc3834-01.eml"))
    assert parsed.automatic == "auto-submitted: auto-replied"
    assert parsed.subject == "Away until May 5"


def test_exchange_out_of_office_is_automatic_through_auto_response_suppress() -> None:
    parsed = parse_message(read(SISIMAI / "autoreply-rfc3834" / "rfc3834-02.eml"))
    assert parsed.automatic == "x-auto-response-suppress: all"


@pytest.mark.parametrize("path", BOUNCES, ids=name_of)
def test_delivery_status_notifications_are_automatic(path: Path) -> None:
    assert parse_message(read(path)).automatic


def test_a_multipart_report_bounce_is_classified_as_dsn() -> None:
    parsed = parse_message(read(SISIMAI / "dsn-rfc3464" / "rfc3464-07.eml"))
    assert parsed.automatic == "dsn"
    assert any(a.declared_type == "message/delivery-status" for a in parsed.attachments)


def test_a_read_receipt_is_automatic() -> None:
    parsed = parse_message(read(FLANKER / "disposition-notification.eml"))
    assert parsed.automatic == "disposition-notification"


@pytest.mark.parametrize("path", sorted((SISIMAI / "not-bounce").glob("is-not-*.eml")), ids=name_of)
def test_ordinary_mail_is_not_automatic(path: Path) -> None:
    assert parse_message(read(path)).automatic is None


@pytest.mark.parametrize("path", ARF_REPORTS, ids=name_of)
def test_arf_reports_fill_arf_and_are_not_automatic(path: Path) -> None:
    parsed = parse_message(read(path))
    assert parsed.arf is not None
    assert parsed.arf["feedback-type"]
    assert parsed.automatic is None
    assert parsed.text


@pytest.mark.parametrize("path", [p for p in ARF_REPORTS if p.name != "arf-12.eml"], ids=name_of)
def test_arf_reports_give_the_reported_original_as_nested_text(path: Path) -> None:
    parsed = parse_message(read(path))
    assert parsed.nested_texts
    assert any(a.filename.endswith(".eml") or a.declared_type == "text/rfc822-headers" for a in parsed.attachments)


@pytest.mark.parametrize("path", sorted(STALWART.glob("*.eml")), ids=name_of)
def test_arf_fields_match_the_expected_parse_shipped_with_stalwart(path: Path) -> None:
    expected = json.loads(path.with_suffix(".json").read_text())
    arf = parse_message(read(path)).arf
    assert arf is not None
    assert arf["feedback-type"][0].replace("-", "") == expected["feedback_type"].lower()
    assert arf["user-agent"] == [expected["user_agent"]]
    assert arf["version"] == [str(expected["version"])]
    assert arf.get("reported-domain", []) == expected["reported_domain"]
    assert arf.get("reported-uri", []) == expected["reported_uri"]
    if expected["source_ip"]:
        assert arf["source-ip"][0].split()[0] == expected["source_ip"]


def test_arf_original_text_is_evidence_with_its_own_header_summary() -> None:
    parsed = parse_message(read(STALWART / "002.eml"))
    assert parsed.arf is not None
    assert parsed.arf["source-ip"] == ["192.0.2.1"]
    assert parsed.nested_texts[0].startswith("From: <somespammer@example.net>")


def test_hotmail_complaint_keeps_the_forwarded_original_as_nested_text() -> None:
    parsed = parse_message(read(SISIMAI / "arf" / "arf-22.eml"))
    assert parsed.arf is None
    assert "Nyaan" in parsed.nested_texts[0]
    assert [a.filename for a in parsed.attachments] == ["message.eml"]


def test_crlf_and_bare_cr_files_parse_like_the_lf_original() -> None:
    crlf = parse_message(read(SISIMAI / "line-endings" / "dos-crlf-arf-01.eml"))
    bare_cr = parse_message(read(SISIMAI / "line-endings" / "mac-cr-arf-01.eml"))
    lf = parse_message(read(SISIMAI / "arf" / "arf-01.eml"))
    for parsed in (crlf, bare_cr):
        assert parsed.text == lf.text
        assert parsed.nested_texts == lf.nested_texts
        assert parsed.arf == lf.arf
        assert parsed.subject == lf.subject
        assert parsed.content_sha256 == lf.content_sha256
    assert "\r" not in bare_cr.text
    assert lf.text.count("\n") > 3


@pytest.mark.parametrize("path", KEYERROR_TRAPS, ids=name_of)
def test_multipart_without_a_usable_boundary_gives_text_and_a_defect(path: Path) -> None:
    parsed = parse_message(read(path))
    assert parsed.defects
    if path.name != "false-multipart.eml":  # that one has no body at all
        assert parsed.text.strip()


def test_enclosed_endless_is_cut_at_the_part_limit_and_keeps_the_first_parts() -> None:
    parsed = parse_message(read(FLANKER / "enclosed-endless.eml"))
    assert "max_parts" in parsed.truncated
    assert parsed.text == "Hello"
    assert parsed.subject == "Wow"
    assert parsed.nested_texts[0].startswith("From: Mike First <bob@examplehq.com>")
    assert parsed.auth_results == {"authserv-id": "mx.google.com", "spf": "pass", "dkim": "pass"}


def test_long_header_subject_is_decoded_and_cut_to_998_characters() -> None:
    parsed = parse_message(read(FLANKER / "long-header.eml"))
    assert parsed.subject.startswith("Die heiße Zypernsonne quälte Max und Victoria ja böse")
    assert len(parsed.subject) == DEFAULT_LIMITS.max_subject_chars
    assert "max_subject_chars" in parsed.truncated
    assert parsed.text == "test"


def test_non_ascii_attachment_name_from_raw_utf8_header_reads_back() -> None:
    parsed = parse_message(read(FLANKER / "russian-attachment-yahoo.eml"))
    (picture,) = parsed.attachments
    assert picture.filename.startswith("Картинка с очень, очень длинным")
    assert picture.sniffed_type == "image/png"
    assert picture.is_inline is False


def test_attachment_bytes_are_decoded_and_hashed() -> None:
    parsed = parse_message(read(FLANKER / "mailgun-pic.eml"))
    (png,) = parsed.attachments
    original = read(FLANKER / "attachments" / "mailgun.png")
    assert (png.content, png.size, png.filename) == (original, len(original), "mailgun.png")
    assert png.sha256 == hashlib.sha256(original).hexdigest()


def test_a_pdf_attachment_is_sniffed_from_its_bytes() -> None:
    parsed = parse_message(read(FLANKER / "attached-pdf.eml"))
    assert [(a.filename, a.sniffed_type) for a in parsed.attachments] == [("test.pdf", "application/pdf")]


def test_message_external_body_is_kept_opaque_and_never_fetched() -> None:
    parsed = parse_message(read(FLANKER / "message-external-body.eml"))
    assert any(a.opaque_reason and "never fetched" in a.opaque_reason for a in parsed.attachments)


def test_torture_test_collects_every_forwarded_message() -> None:
    parsed = parse_message(read(FLANKER / "torture.eml"))
    assert len(parsed.nested_texts) == 10
    assert parsed.text.startswith("This is a demonstration of multi-part mail")


def test_text_that_is_really_a_png_becomes_an_attachment() -> None:
    parsed = parse_message(read(SISIMAI / "dsn-rfc3464" / "rfc3464-66.eml"))
    assert parsed.text == ""
    assert parsed.attachments[0].sniffed_type == "image/png"
    assert "declared text/plain but holds binary content" in parsed.defects[0]


# --- M1 to M7: structure and resource exhaustion ---------------------------------------------


def test_a_thousand_nested_multiparts_stop_at_the_depth_limit_as_one_opaque_attachment() -> None:
    head = "".join(f"Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n" for i in range(1000))
    tail = "".join(f"\n--b{i}--\n" for i in reversed(range(1000)))
    raw = f"From: a@example.org\nSubject: deep\n{head}Content-Type: text/plain\n\nt.me/deep\n{tail}".encode()
    parsed = parse_message(raw)
    assert parsed.truncated == ["max_depth"]
    (opaque,) = parsed.attachments
    assert opaque.opaque_reason == "max_depth"
    assert b"t.me/deep" in opaque.content
    assert parsed.subject == "deep"


def test_a_thousand_nested_rfc822_messages_stop_at_the_depth_limit() -> None:
    raw = b"From: a@example.org\n" + b"Content-Type: message/rfc822\n\n" * 1000 + b"Subject: deep\n\nbody\n"
    parsed = parse_message(raw)
    assert "max_depth" in parsed.truncated
    assert [a.opaque_reason for a in parsed.attachments] == [None, "max_depth"]


def test_ten_thousand_parts_keep_the_first_ones_and_flag_truncation() -> None:
    parts = [f"Content-Type: text/plain\n\npart{i}" for i in range(10_000)]
    parsed = parse_message(multipart("B", *parts))
    assert "max_parts" in parsed.truncated
    kept = parsed.text.split("\n\n")
    assert kept[0] == "part0"
    assert len(kept) < DEFAULT_LIMITS.max_parts
    assert "part9999" not in parsed.text


def test_part_limit_is_configurable() -> None:
    parts = [f"Content-Type: text/plain\n\npart{i}" for i in range(5)]
    parsed = parse_message(multipart("B", *parts), limits=Limits(max_parts=3))
    assert parsed.text == "part0\n\npart1"
    assert parsed.truncated == ["max_parts"]


def test_a_one_megabyte_subject_is_cut() -> None:
    parsed = parse_message(mail("Subject: " + "x" * (1 << 20)))
    assert parsed.subject == "x" * 998
    assert {"max_header_bytes", "max_subject_chars"} <= set(parsed.truncated)
    assert parsed.text == "Please block t.me/example_channel."


def test_fifty_thousand_received_lines_are_cut_without_losing_the_body() -> None:
    received = [f"Received: from relay{i}.example.net by mx.example.org" for i in range(50_000)]
    parsed = parse_message(mail(*received, "Subject: after"))
    assert "max_header_bytes" in parsed.truncated
    assert parsed.text == "Please block t.me/example_channel."
    assert parsed.from_address == "reporter@example.org"


def test_fields_after_fifty_thousand_received_lines_are_still_read() -> None:
    received = [f"Received: from relay{i}.example.net by mx.example.org" for i in range(50_000)]
    raw = "".join(
        line + "\n"
        for line in (
            *received,
            "From: Late Reporter <late@example.org>",
            "Subject: =?utf-8?q?after_the_relays_t.me/late=5Fchannel?=",
            "Message-ID: <late-1@example.org>",
            "Date: Sun, 15 Mar 2026 10:30:00 +0000",
            "In-Reply-To: <ours-1@abusedesk.localhost>",
            "References: <first@example.org>\n <ours-1@abusedesk.localhost>",
            "Auto-Submitted: auto-replied",
            'Content-Type: multipart/alternative; boundary="B"',
        )
    ).encode()
    body = b"\n--B\nContent-Type: text/plain\n\nplain t.me/late_channel\n--B\nContent-Type: text/html\n\n<p>html</p>\n--B--\n"
    parsed = parse_message(raw + body)
    assert "max_header_bytes" in parsed.truncated
    assert (parsed.from_address, parsed.from_name) == ("late@example.org", "Late Reporter")
    assert parsed.subject == "after the relays t.me/late_channel"
    assert (parsed.message_id, parsed.in_reply_to) == ("late-1@example.org", "ours-1@abusedesk.localhost")
    assert parsed.references == ["first@example.org", "ours-1@abusedesk.localhost"]
    assert parsed.date is not None and parsed.date.isoformat() == "2026-03-15T10:30:00+00:00"
    assert parsed.automatic == "auto-submitted: auto-replied"
    assert parsed.text == "plain t.me/late_channel"
    assert "message: header block over 262144 bytes; cut, 8 essential fields kept from the rest" in parsed.defects


def test_a_header_cut_inside_a_nested_part_keeps_its_content_type() -> None:
    filler = "".join(f"X-Filler-{i}: {'f' * 60}\n" for i in range(5_000))
    part = filler + "Content-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: base64\n\n"
    encoded = base64.b64encode("Привет t.me/nested_channel".encode("koi8-r")).decode()
    parsed = parse_message(multipart("B", part + encoded))
    assert parsed.text == "Привет t.me/nested_channel"


def test_fields_past_the_field_limit_still_yield_the_subject() -> None:
    received = [f"Received: from r{i}" for i in range(5_000)]
    parsed = parse_message(mail(*received, "Subject: still here"))
    assert parsed.truncated == ["max_header_fields"]
    assert parsed.subject == "still here"


def test_input_without_any_newline_is_read_as_capped_text() -> None:
    parsed = parse_message(b"t.me/x " * 700_000)
    assert parsed.text.startswith("t.me/x t.me/x")
    assert len(parsed.text) == DEFAULT_LIMITS.max_text_chars
    assert "max_text_chars" in parsed.truncated


def test_bare_cr_and_crlf_line_endings_parse_like_lf() -> None:
    lf = mail("Subject: endings", "Content-Type: text/plain", body="line one\nline two t.me/chan\n")
    crlf = parse_message(lf.replace(b"\n", b"\r\n"))
    bare_cr = parse_message(lf.replace(b"\n", b"\r"))
    expected = parse_message(lf)
    assert expected.text == "line one\nline two t.me/chan"
    for parsed in (crlf, bare_cr):
        assert (parsed.subject, parsed.text, parsed.content_sha256) == (
            expected.subject,
            expected.text,
            expected.content_sha256,
        )


def test_raw_over_the_size_limit_is_cut_and_flagged() -> None:
    parsed = parse_message(mail(body="x" * 5000), limits=Limits(max_raw=1000))
    assert parsed.truncated == ["max_raw"]
    assert parsed.text.startswith("xxx")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/mixed", "--x\n\nreport t.me/chan\n--x--\n"),
        ('multipart/mixed; boundary=""', "--\n\nreport t.me/chan\n----\n"),
        ('multipart/mixed; boundary="never"', "--other\n\nreport t.me/chan\n--other--\n"),
    ],
    ids=["no boundary", "empty boundary", "boundary never appears"],
)
def test_multipart_without_a_usable_boundary_is_read_as_text(content_type: str, body: str) -> None:
    parsed = parse_message(mail(f"Content-Type: {content_type}", body=body))
    assert "report t.me/chan" in parsed.text
    assert parsed.defects


def test_missing_final_boundary_keeps_the_last_part() -> None:
    parsed = parse_message(
        multipart("B", "Content-Type: text/plain\n\nfirst", "Content-Type: text/plain\n\nlast t.me/chan", close=False)
    )
    assert parsed.text == "first\n\nlast t.me/chan"
    assert any("final boundary missing" in d for d in parsed.defects)


def test_a_boundary_reused_by_a_nested_part_does_not_break_the_outer_parts() -> None:
    inner = 'Content-Type: multipart/alternative; boundary="B"\n\n--B\nContent-Type: text/plain\n\ninner'
    parsed = parse_message(
        multipart("B", "Content-Type: text/plain\n\nouter t.me/one", inner, "Content-Type: text/plain\n\nlast t.me/two")
    )
    assert "outer t.me/one" in parsed.text
    assert "last t.me/two" in parsed.text


def test_a_boundary_longer_than_70_characters_still_splits_and_is_flagged() -> None:
    boundary = "b" * 200
    parsed = parse_message(multipart(boundary, "Content-Type: text/plain\n\none", "Content-Type: text/plain\n\ntwo"))
    assert parsed.text == "one\n\ntwo"
    assert any("longer than 70" in d for d in parsed.defects)


def test_a_boundary_that_prefixes_another_is_not_confused_with_it() -> None:
    inner = 'Content-Type: multipart/mixed; boundary="b10"\n\n--b10\nContent-Type: text/plain\n\ninner\n--b10--'
    parsed = parse_message(multipart("b1", inner, "Content-Type: text/plain\n\nouter"))
    assert parsed.text == "inner\n\nouter"
    assert parsed.defects == []


def test_quoted_printable_soft_breaks_are_joined_before_anyone_reads_the_url() -> None:
    raw = mail(
        "Content-Type: text/plain",
        "Content-Transfer-Encoding: quoted-printable",
        body=b"see t.m=\r\ne/chan and h=\r\nttps://t.me/oth= \r\ner\r\n",
    )
    assert parse_message(raw).text == "see t.me/chan and https://t.me/other"


@pytest.mark.parametrize(
    "encoded",
    [
        b"dC5tZS9jaGFu",  # no padding needed
        b"dC5tZS9jaGFuIQ",  # padding missing
        base64.encodebytes(b"t.me/chan " * 30).replace(b"Y", b"Y!", 2) + b"*",  # outside the alphabet
    ],
    ids=["clean", "missing padding", "junk characters"],
)
def test_base64_text_is_decoded_leniently(encoded: bytes) -> None:
    raw = mail("Content-Type: text/plain", "Content-Transfer-Encoding: base64", body=encoded)
    assert parse_message(raw).text.startswith("t.me/chan")


def test_base64_padded_in_the_middle_decodes_every_chunk() -> None:
    body = base64.b64encode(b"t.me/") + b"\n" + base64.b64encode(b"chan")
    raw = mail("Content-Type: text/plain", "Content-Transfer-Encoding: base64", body=body)
    parsed = parse_message(raw)
    assert parsed.text == "t.me/chan"
    assert any("damaged base64" in d for d in parsed.defects)


def test_text_declared_base64_that_is_not_base64_is_kept_raw() -> None:
    raw = mail(
        "Content-Type: text/plain",
        "Content-Transfer-Encoding: base64",
        body="this is *not* (base64) at all: t.me/chan!",
    )
    parsed = parse_message(raw)
    assert parsed.text == "this is *not* (base64) at all: t.me/chan!"
    assert any("kept raw" in d for d in parsed.defects)


def test_format_flowed_soft_breaks_are_joined_with_delsp() -> None:
    raw = mail(
        "Content-Type: text/plain; format=flowed; delsp=yes",
        body="see t.me/ \nchan today\n> quoted lin \n> e\n-- \nsig\n",
    )
    assert parse_message(raw).text == "see t.me/chan today\n> quoted line\n-- \nsig"


def test_format_flowed_without_delsp_keeps_the_space() -> None:
    raw = mail("Content-Type: text/plain; format=flowed", body="a long \nsentence\n")
    assert parse_message(raw).text == "a long sentence"


def test_unknown_transfer_encoding_falls_back_to_raw_bytes() -> None:
    raw = multipart(
        "B",
        "Content-Type: text/plain\nContent-Transfer-Encoding: x-evil\n\nraw t.me/chan",
        "Content-Type: application/octet-stream\nContent-Transfer-Encoding: x-evil\n\nAAAA",
    )
    parsed = parse_message(raw)
    assert parsed.text == "raw t.me/chan"
    assert parsed.attachments[0].content == b"AAAA"
    assert parsed.attachments[0].opaque_reason == "unknown transfer encoding 'x-evil'; kept raw"


def test_uuencoded_attachment_is_decoded() -> None:
    body = "begin 644 report.txt\n" + '&="YM92]X\n' + "`\nend\n"
    raw = multipart(
        "B",
        "Content-Type: text/plain\n\nsee file",
        f"Content-Type: application/octet-stream; name=report.txt\nContent-Transfer-Encoding: x-uuencode\n\n{body}",
    )
    assert parse_message(raw).attachments[0].content == b"t.me/x"


def test_binary_transfer_encoding_keeps_the_bytes() -> None:
    raw = mail(
        "Content-Type: application/octet-stream", "Content-Transfer-Encoding: binary", body=b"\x00\x01\x02binary"
    )
    assert parse_message(raw).attachments[0].content == b"\x00\x01\x02binary"


def test_two_transfer_encoding_headers_use_the_first_and_say_so() -> None:
    raw = mail(
        "Content-Type: text/plain",
        "Content-Transfer-Encoding: base64",
        "Content-Transfer-Encoding: quoted-printable",
        body="dC5tZS9jaGFu",
    )
    parsed = parse_message(raw)
    assert parsed.text == "t.me/chan"
    assert any("conflicting Content-Transfer-Encoding" in d for d in parsed.defects)


def test_base64_encoded_forwarded_message_is_parsed_as_nested_text() -> None:
    inner = b"From: Spammer <spam@example.net>\r\nSubject: join us\r\n\r\nour channel: t.me/hidden_chan\r\n"
    raw = multipart(
        "B",
        "Content-Type: text/plain\n\nSee the forwarded mail.",
        "Content-Type: message/rfc822; name=fwd.eml\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(inner).decode(),
    )
    parsed = parse_message(raw)
    assert parsed.nested_texts == [
        "From: Spammer <spam@example.net>\nSubject: join us\n\nour channel: t.me/hidden_chan"
    ]
    (eml,) = parsed.attachments
    assert (eml.filename, eml.content) == ("fwd.eml", inner)


# --- NUL bytes, empty and non-mail input -------------------------------------------------------


def test_nul_bytes_never_reach_a_returned_string() -> None:
    raw = b"From: Rep\x00orter <rep\x00orter@example.org>\nSubject: a\x00b\nMessage-ID: <id\x00@x>\n\nbo\x00dy t.me/chan\n"
    parsed = parse_message(raw)
    assert_storable(parsed)
    assert parsed.subject == "ab"
    assert parsed.text == "body t.me/chan"


def test_empty_input_gives_an_empty_mail_with_a_defect() -> None:
    parsed = parse_message(b"")
    assert (parsed.text, parsed.subject, parsed.from_address, parsed.attachments) == ("", "", "", [])
    assert parsed.defects == ["empty message"]


@pytest.mark.parametrize(
    "raw",
    [
        read(FLANKER / "attachments" / "small.png"),
        bytes(range(256)) * 50,
        b"\xff\xfe\x00\x00" * 1000,
        b"\n\n\n\n",
        b":" * 10_000,
        b"From \n",
        b"Content-Type: multipart/mixed; boundary=a\n\n" + b"--a\n" * 20_000,
    ],
    ids=["png", "all bytes", "utf-32 noise", "blank lines", "colons", "mbox line only", "empty parts"],
)
def test_bytes_that_are_not_mail_parse_without_raising(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert_storable(parsed)


def test_a_png_posted_as_mail_is_kept_opaque() -> None:
    parsed = parse_message(read(FLANKER / "attachments" / "small.png"))
    assert parsed.text == ""
    assert parsed.attachments[0].opaque_reason == "not a mail message"
    assert parsed.attachments[0].sniffed_type == "image/png"


# --- headers ---------------------------------------------------------------------------------


def test_identity_headers_are_normalised() -> None:
    raw = mail(
        "To: Abuse <ABUSE@Desk.Example>, other@example.org",
        "Cc: copy@example.org",
        "Reply-To: Someone Else <else@example.net>",
        "Subject: =?utf-8?q?Report_=E2=80=94_t.me/chan?=",
        "Message-ID: <abc@example.org>",
        "In-Reply-To: <prev@desk.example>",
        "References: <one@x> <two@y>\n <three@z>",
        "Date: Tue, 07 May 2013 23:11:57 +0200",
    )
    parsed = parse_message(raw)
    assert parsed.from_address == "reporter@example.org"
    assert parsed.from_name == "Reporter"
    assert parsed.to == ["abuse@desk.example", "other@example.org"]
    assert parsed.cc == ["copy@example.org"]
    assert parsed.reply_to == "else@example.net"
    assert parsed.subject == "Report — t.me/chan"
    assert (parsed.message_id, parsed.in_reply_to) == ("abc@example.org", "prev@desk.example")
    assert parsed.references == ["one@x", "two@y", "three@z"]
    assert parsed.date is not None and parsed.date.utcoffset() is not None
    assert parsed.date.isoformat() == "2013-05-07T23:11:57+02:00"


def test_missing_and_unreadable_dates_give_none() -> None:
    assert parse_message(mail()).date is None
    parsed = parse_message(mail("Date: 29 Feb 2099 25:61:00"))
    assert parsed.date is None
    assert any("unreadable Date" in d for d in parsed.defects)


def test_date_without_zone_is_read_as_utc() -> None:
    parsed = parse_message(mail("Date: Thu, 1 Jan 1970 00:00:00 -0000"))
    assert parsed.date is not None and parsed.date.utcoffset() is not None
    assert parsed.date.timestamp() == 0


def test_message_id_without_angle_brackets_is_kept() -> None:
    assert parse_message(mail("Message-ID: bare-id@example.org")).message_id == "bare-id@example.org"


def test_ambiguous_from_gives_no_sender() -> None:
    parsed = parse_message(b"From: x@evil.example@good.example\n\nbody\n")
    assert parsed.from_address == ""
    assert any("From header is ambiguous" in d for d in parsed.defects)


def test_quoted_address_in_the_display_name_does_not_become_the_sender() -> None:
    parsed = parse_message(b'From: "boss@good.example" <x@evil.example>\n\nbody\n')
    assert parsed.from_address == "x@evil.example"
    assert any("display name contains '@'" in d for d in parsed.defects)


def test_mailsploit_from_keeps_the_real_domain() -> None:
    raw = b"From: =?utf-8?b?cG90dXNAd2hpdGVob3VzZS5nb3Y=?==?utf-8?Q?=00?==?utf-8?b?cG90dXNAd2hpdGVob3VzZS5nb3Y=?=@evil.example\n\nx\n"
    parsed = parse_message(raw)
    assert parsed.from_address.endswith("@evil.example")
    assert "\x00" not in parsed.from_address


def test_duplicate_singleton_headers_use_the_first() -> None:
    parsed = parse_message(b"From: a@one.example\nFrom: b@two.example\nSubject: first\nSubject: second\n\nx\n")
    assert (parsed.from_address, parsed.subject) == ("a@one.example", "first")
    assert "2 From fields; the first is used" in parsed.defects


def test_encoded_control_characters_in_the_subject_are_removed() -> None:
    parsed = parse_message(mail("Subject: =?utf-8?q?a=0D=0ABcc:_x=00?= \u202egpj.exe"))
    assert parsed.subject == "a  Bcc: x gpj.exe"


def test_line_and_paragraph_separators_in_a_name_or_subject_become_spaces() -> None:
    name = "=?utf-8?b?" + base64.b64encode("Amira\u2028Bcc: x\u2029y".encode()).decode() + "?="
    parsed = parse_message(mail(f"Subject: {name}").replace(b"From: Reporter", f"From: {name}".encode()))
    assert (parsed.from_name, parsed.from_address) == ("Amira Bcc: x y", "reporter@example.org")
    assert parsed.subject == "Amira Bcc: x y"


def test_line_and_paragraph_separators_in_a_body_are_newlines_and_bidi_controls_stay() -> None:
    parsed = parse_message(
        mail("Content-Type: text/plain; charset=utf-8", body="one\u2028two\u2029three \u202egpj.exe\n")
    )
    assert parsed.text == "one\ntwo\n\nthree \u202egpj.exe"


def test_invisible_word_splitters_leave_the_subject_but_persian_joiners_stay() -> None:
    parsed = parse_message(mail("Subject: =?utf-8?q?ex=E2=80=8Bec=E2=81=A0ution_=EF=BB=BFvideos?="))
    assert parsed.subject == "execution videos"
    persian = "می‌خواهم"  # ZWNJ is part of the spelling
    assert parse_message(mail(f"Subject: {persian}")).subject == persian


def test_raw_latin1_header_bytes_are_decoded() -> None:
    parsed = parse_message(b"From: J\xf6rg <j@example.org>\nSubject: Gr\xfc\xdfe\n\nx\n")
    assert (parsed.from_name, parsed.subject) == ("Jörg", "Grüße")


def test_deeply_nested_comments_cannot_crash_header_parsing() -> None:
    raw = b"From: " + b"(" * 5000 + b"a@example.org\nContent-Type: text/plain; " + b"(" * 5000 + b"\n\nbody\n"
    assert parse_message(raw).text == "body"


def test_authentication_results_verdicts_come_from_the_topmost_field() -> None:
    raw = mail(
        "Authentication-Results: mx.desk.example; spf=pass (sender said dkim=fail) smtp.mailfrom=example.org;\n dkim=fail header.d=x; dkim=pass header.d=example.org; dmarc=pass",
        "Authentication-Results: forged.example; spf=fail; dmarc=fail",
    )
    assert parse_message(raw).auth_results == {
        "authserv-id": "mx.desk.example",
        "spf": "pass",
        "dkim": "pass",
        "dmarc": "pass",
    }


# --- automatic mail and loops ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Auto-Submitted: auto-generated", "auto-submitted: auto-generated"),
        ("Precedence: junk", "precedence: junk"),
        ("X-Autoreply: yes", "x-autoreply"),
        ("X-Autorespond: on", "x-autorespond"),
        ("Return-Path: <>", "null return-path"),
        ("List-Id: <abuse.lists.example>", "list-id"),
    ],
)
def test_automatic_mail_names_its_reason(header: str, reason: str) -> None:
    assert parse_message(mail(header)).automatic == reason


def test_auto_submitted_no_is_a_human() -> None:
    assert parse_message(mail("Auto-Submitted: no")).automatic is None


def test_mail_from_the_mailer_daemon_is_automatic() -> None:
    assert (
        parse_message(b"From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\n\nfailed\n").automatic
        == "mailer-daemon"
    )


def test_our_own_address_coming_back_is_a_loop() -> None:
    raw = b"From: Abuse Desk <Abuse@Desk.Example>\nSubject: Re: your report\n\nthanks\n"
    assert parse_message(raw, own_addresses=["abuse@desk.example"]).automatic == "loop"
    assert parse_message(raw).automatic is None


def test_our_loop_marker_is_a_loop() -> None:
    raw = mail("X-Loop: abusedesk-7f3a")
    assert parse_message(raw, loop_marker="abusedesk-7f3a").automatic == "loop"
    assert parse_message(raw, loop_marker="other").automatic is None


def test_an_arf_report_with_auto_submitted_is_still_evidence() -> None:
    raw = mail(
        "Auto-Submitted: auto-generated",
        'Content-Type: multipart/report; report-type=feedback-report; boundary="R"',
        body="--R\nContent-Type: text/plain\n\nabuse report\n--R\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: Test/1\nVersion: 1\nReported-URI: https://t.me/spam_chan\n--R\nContent-Type: message/rfc822\n\nFrom: s@spam.example\nSubject: buy\n\nt.me/spam_chan\n--R--\n",
    )
    parsed = parse_message(raw)
    assert parsed.automatic is None
    assert parsed.arf == {
        "feedback-type": ["abuse"],
        "user-agent": ["Test/1"],
        "version": ["1"],
        "reported-uri": ["https://t.me/spam_chan"],
    }
    assert parsed.nested_texts == ["From: s@spam.example\nSubject: buy\n\nt.me/spam_chan"]


def test_x_arf_report_fields_are_read() -> None:
    raw = mail(
        "X-ARF: YES",
        'Content-Type: multipart/mixed; boundary="X"',
        body="--X\nContent-Type: text/plain\n\nhuman text\n--X\nContent-Type: text/plain; name=report.txt\n\nReported-From: abuse@isp.example\nCategory: abuse\nSource: 192.0.2.7\n--X--\n",
    )
    arf = parse_message(raw).arf
    assert arf is not None
    assert arf["x-arf"] == ["yes"]
    assert arf["category"] == ["abuse"]


# --- text: charsets, HTML, alternatives -------------------------------------------------------


def test_alternative_prefers_plain_text_and_still_collects_html_links() -> None:
    raw = multipart(
        "A",
        "Content-Type: text/plain\n\nplain version t.me/chan",
        'Content-Type: text/html\n\n<p>html <a href="https://t.me/linked">here</a></p>',
        subtype="alternative",
    )
    parsed = parse_message(raw)
    assert parsed.text == "plain version t.me/chan"
    assert parsed.hrefs == ["https://t.me/linked"]


def test_html_only_mail_becomes_plain_text_with_tag_split_urls_joined() -> None:
    html = '<html><head><title>t</title><style>p{}</style></head><body><p>see t.<b></b>me/chan</p><script>t.me/script</script><div>next<br>line</div><img src="https://t.me/img" alt="alt t.me/alt"><a href="java&#x09;script:alert(1)">x</a></body></html>'
    parsed = parse_message(mail("Content-Type: text/html; charset=utf-8", body=html))
    assert parsed.text == "see t.me/chan\n\nnext\nline\nalt t.me/alt x"
    assert parsed.hrefs == ["javascript:alert(1)"]
    assert "<" not in parsed.text


def test_hostile_html_is_converted_in_bounded_work() -> None:
    markup = "<div>" * 100_000 + "t.<b></b>me/chan" + "</" * 200_000 + "<![" * 100_000
    parsed = parse_message(mail("Content-Type: text/html", body=markup))
    assert parsed.text == "t.me/chan"


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("a<b><i></i></b>b", "ab"),
        ("a<p></p>b", "a\n\nb"),
        ("a<br>b", "a\nb"),
        ("a<br/><BR />b", "a\n\nb"),
        ("a<p><p><p><p>b", "a\n\nb"),
        ("a<x<pre>b", "ab"),  # one tag named "x<pre": no line break, and no <pre>
        ("<pre>a  b<br>c</pre>d", "a b\nc\nd"),
        ("a<script></script><p>b", "a\nb"),
        ("<p>" * 350_000 + "t.<b></b>me/chan", "t.me/chan"),
    ],
)
def test_runs_of_plain_tags_break_lines_as_each_tag_would(markup: str, text: str) -> None:
    assert html_to_text(markup).text == text


def test_html_over_the_size_limit_is_cut() -> None:
    markup = "<p>" + "word " * 1000 + "</p>"
    parsed = parse_message(mail("Content-Type: text/html", body=markup), limits=Limits(max_html_chars=100))
    assert "max_html_chars" in parsed.truncated
    assert 0 < len(parsed.text) <= 100


def test_html_to_text_collects_each_href_once() -> None:
    converted = html_to_text("<a href=\"https://t.me/a\">1</a><A HREF=https://t.me/a>2</A><area href='https://t.me/b'>")
    assert converted.hrefs == ["https://t.me/a", "https://t.me/b"]
    assert converted.text == "12"


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("Grüße".encode("iso-8859-1"), "iso-8859-1", "Grüße"),
        ("Grüße".encode(), "x-evil", "Grüße"),
        ("Grüße".encode("cp1252"), "utf-8", "Grüße"),
        (b"+ADw-script+AD4-", "utf-7", "<script>"),
        (b"+ADw-script+AD4-", "unicode-1-1-utf-7", "<script>"),
        (b"abc", "x" * 300, "abc"),
        ("Привет".encode("koi8-r"), "koi8-r", "Привет"),
        (b"\x80abc", "punycode", "€abc"),
    ],
)
def test_charsets_fall_back_without_failing(data: bytes, charset: str, expected: str) -> None:
    assert decode_text(data, charset) == expected


def test_text_over_the_size_limit_is_cut() -> None:
    parsed = parse_message(mail(body="x" * 3_000_000))
    assert len(parsed.text) == DEFAULT_LIMITS.max_text_chars
    assert parsed.truncated == ["max_text_chars"]


# --- attachments: names and types --------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("<img src=x onerror=alert(1)>.png", "_img src=x onerror=alert(1)_.png"),
        ("..\\..\\x.html", "x.html"),
        ("../../etc/passwd", "passwd"),
        ("a.html%00.png", "a.html%00.png"),
        ("a.html\x00.png", "a.html.png"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        (".htaccess", "htaccess"),
        ("CON.txt", "_CON.txt"),
        ("lpt1", "_lpt1"),
        ("", "attachment"),
        ("...", "attachment"),
        ("dir/", "dir"),
        ("a" * 300 + ".pdf", "a" * 251 + ".pdf"),
        ("д" * 200 + ".txt", "д" * 125 + ".txt"),
    ],
)
def test_filenames_are_sanitized(declared: str, expected: str) -> None:
    assert sanitize_filename(declared) == expected
    assert len(expected.encode()) <= 255


def test_hostile_attachment_names_in_a_mail_are_sanitized() -> None:
    names = ['"<img src=x onerror=alert(1)>.png"', '"..\\\\..\\\\x.html"', "CON.txt", '"' + "n" * 400 + '.exe"']
    parts = [
        f"Content-Type: application/octet-stream\nContent-Disposition: attachment; filename={n}\n\ndata" for n in names
    ]
    parts.append(
        "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*=utf-8''%2E%2E%2F%2E%2E%2Fsecret%E2%80%AE.txt\n\ndata"
    )
    parsed = parse_message(multipart("B", *parts))
    got = [a.filename for a in parsed.attachments]
    assert got[:3] == ["_img src=x onerror=alert(1)_.png", "x.html", "_CON.txt"]
    assert len(got[3]) == 255 and got[3].endswith(".exe")
    assert got[4] == "secret.txt"


def test_declared_content_type_is_never_trusted() -> None:
    parts = [
        "Content-Type: image/png; name=a.png\nContent-Disposition: attachment\n\n<html><script>alert(1)</script></html>",
        "Content-Type: text/plain; name=b.txt\nContent-Disposition: attachment\n\n<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
    ]
    parsed = parse_message(multipart("B", *parts))
    assert [(a.declared_type, a.sniffed_type) for a in parsed.attachments] == [
        ("image/png", "text/html"),
        ("text/plain", "image/svg+xml"),
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "application/x-empty"),
        (b"PK\x03\x04" + b"\x00" * 40, "application/zip"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"plain words", "text/plain"),
        (b"\x00\x01\x02\x03" * 10, "application/octet-stream"),
        (b"  <!DOCTYPE html><p>", "text/html"),
    ],
)
def test_content_is_sniffed_from_bytes(content: bytes, expected: str) -> None:
    assert sniff_type(content) == expected


def test_inline_images_are_marked_inline() -> None:
    raw = multipart(
        "R",
        "Content-Type: text/html\n\n<img src=cid:logo>",
        "Content-Type: image/png\nContent-ID: <logo>\nContent-Transfer-Encoding: base64\n\n"
        + base64.b64encode(read(FLANKER / "attachments" / "small.png")).decode(),
        subtype="related",
    )
    (image,) = parse_message(raw).attachments
    assert (image.is_inline, image.content_id, image.sniffed_type) == (True, "logo", "image/png")


def test_archives_are_kept_whole_and_never_extracted() -> None:
    parsed = parse_message(read(FLANKER / "bz2-attachment.eml"))
    assert [(a.filename, a.sniffed_type) for a in parsed.attachments] == [("foo.txt.bz2", "application/x-bzip2")]


def test_attachment_content_over_the_budget_is_dropped_but_its_hash_kept() -> None:
    raw = multipart("B", "Content-Type: application/octet-stream\n\n" + "a" * 2000)
    (part,) = parse_message(raw, limits=Limits(max_attachment_bytes=1000)).attachments
    assert (part.content, part.size, part.opaque_reason) == (b"", 2000, "max_attachment_bytes")


# --- redelivery ----------------------------------------------------------------------------------


def test_content_hash_ignores_transport_headers_and_line_endings() -> None:
    first = b"Received: from a\nFrom: r@example.org\nSubject: s\n\nbody t.me/chan\n"
    again = b"Received: from b\r\nReceived: from c\r\nFrom: r@example.org\r\nSubject: s\r\n\r\nbody t.me/chan\r\n\r\n"
    other = b"From: r@example.org\nSubject: s\n\nbody t.me/other\n"
    assert parse_message(first).content_sha256 == parse_message(again).content_sha256
    assert parse_message(first).content_sha256 != parse_message(other).content_sha256
