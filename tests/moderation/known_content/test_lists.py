"""Reading hash lists: CSV, JSON and JSON Lines in TCAP and GIFCT-style shapes, every rejected
row with its line number."""

from __future__ import annotations

import json
from datetime import date

import pytest

from moderation.known_content.lists import ListedHash, ListFormatError, read_hash_list

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def test_csv_of_hash_type_and_value_with_label_source_and_date() -> None:
    data = (
        "hash_type,hash_value,label,source,date,quality\n"
        f"MD5,{MD5.upper()},IS propaganda,TCAP,2026-11-02,\n"
        f"PDQ,{PDQ},execution video,TCAP,2026-11-03T10:00:00Z,87\n"
    ).encode()
    read = read_hash_list(data, filename="tcap.csv")
    assert read.hashes == [
        ListedHash(2, "md5", MD5, "IS propaganda", "TCAP", date(2026, 11, 2), None),
        ListedHash(3, "pdq", PDQ, "execution video", "TCAP", date(2026, 11, 3), 87),
    ]
    assert (read.rejected, read.problems) == (0, [])


def test_csv_with_one_column_per_kind_gives_each_hash_of_a_file_and_the_import_defaults() -> None:
    data = f"md5,sha256,pdq,sha512\n{MD5},{SHA},{PDQ},\n".encode()
    read = read_hash_list(data, filename="gifct.csv", label="gifct default", source="GIFCT")
    assert [(h.kind, h.value, h.label, h.source) for h in read.hashes] == [
        ("md5", MD5, "gifct default", "GIFCT"),
        ("sha256", SHA, "gifct default", "GIFCT"),
        ("pdq", PDQ, "gifct default", "GIFCT"),
    ]


def test_every_rejected_csv_row_is_reported_with_its_line_and_why() -> None:
    data = (
        "hash_type,hash_value,date\n"
        f"md5,{MD5},\n"
        "md5,not-hex,\n"
        f"sha512,{SHA}{SHA},\n"
        f"tlsh,{SHA},\n"
        f"pdq,{PDQ},yesterday\n"
        ",,\n"
        f"sha256,{SHA},2026-01-01\n"
    ).encode()
    read = read_hash_list(data, filename="list.csv")
    assert [(h.line, h.kind) for h in read.hashes] == [(2, "md5"), (8, "sha256")]
    assert read.rejected == 5
    assert read.problems == [
        (3, "md5 value 'not-hex' is not 32 hex digits"),
        (4, "'sha512' is not matched by the desk"),
        (5, "'tlsh' is not a known hash type"),
        (6, "date 'yesterday' is not an ISO date"),
        (7, "no hash: expected hash_type and hash_value, or md5, sha256 or pdq columns"),
    ]


def test_a_tcap_style_json_document_gives_line_numbers_of_its_items() -> None:
    document = {
        "checkpoint": "2026-11-02T10:00:00Z,1234",
        "results": [
            {"md5": MD5, "sha256": SHA, "sha512": None, "pdq": PDQ, "ideology": "islamist", "created_at": "2026-11-01"},
            {"md5": "zz", "ideology": "far-right"},
        ],
    }
    text = json.dumps(document, indent=2)
    read = read_hash_list(text.encode(), filename="tcap.json", source="TCAP")
    assert [(h.kind, h.label, h.source, h.listed_on) for h in read.hashes] == [
        ("md5", "islamist", "TCAP", date(2026, 11, 1)),
        ("sha256", "islamist", "TCAP", date(2026, 11, 1)),
        ("pdq", "islamist", "TCAP", date(2026, 11, 1)),
    ]
    second_item_line = text.splitlines().index("    {", 4) + 1
    assert read.hashes[0].line == 4
    assert read.problems == [(second_item_line, "md5 value 'zz' is not 32 hex digits")]


def test_a_json_array_of_hma_style_signals() -> None:
    text = f'[\n {{"signal_type": "pdq", "signal": "{PDQ}", "labels": ["a", "b"]}},\n 7\n]'
    read = read_hash_list(text.encode(), filename="hma.json")
    assert [(h.line, h.kind, h.label) for h in read.hashes] == [(2, "pdq", "a, b")]
    assert read.problems == [(3, "not a JSON object")]


def test_json_lines_report_bad_lines_and_keep_the_good_ones() -> None:
    text = (
        f'{{"hash_type": "sha256", "hash_value": "{SHA}"}}\n{{broken\n\n{{"hash_type": "md5", "hash_value": "{MD5}"}}\n'
    )
    read = read_hash_list(text.encode(), filename="list.jsonl")
    assert [(h.line, h.kind) for h in read.hashes] == [(1, "sha256"), (4, "md5")]
    assert [line for line, _ in read.problems] == [2]


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b'[{"md5": 1}', "x.json", "not valid JSON at line 1"),
        (b"name,colour\nx,y\n", "x.csv", "the CSV header names no hash column"),
        (b"", "x.csv", "an empty file"),
        (b"\xff\xfe\x00", "x.csv", "not UTF-8 text"),
        (b'{"other": 1}', "x.json", "no list of hashes under any of"),
    ],
)
def test_a_file_that_is_no_hash_list_is_refused_as_a_whole(data: bytes, filename: str, message: str) -> None:
    with pytest.raises(ListFormatError, match=message):
        read_hash_list(data, filename=filename)
