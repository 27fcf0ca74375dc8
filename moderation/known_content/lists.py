"""Reading hash lists as TCAP and GIFCT-style exports give them: CSV, JSON and JSON Lines.

A row names its hashes either as a type and a value (`hash_type`/`hash_value`, as TCAP's API
takes them; `signal_type`/`signal` as HMA writes them) or in one column per kind (`md5`,
`sha256`, `pdq`, as a hash list gives a file's hashes side by side). Labels, source and date come
from the row when it has them, else from the import's defaults. Every row that cannot be used is
reported with its line number and why, kinds the desk does not match (SHA-512, SHA-1, TMK) too:
nothing is dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from moderation.models import HashKind

_HEX = {HashKind.MD5: re.compile(r"[0-9a-f]{32}"), HashKind.SHA256: re.compile(r"[0-9a-f]{64}"),
        HashKind.PDQ: re.compile(r"[0-9a-f]{64}")}  # fmt: skip
_KIND_NAMES = {
    "md5": HashKind.MD5,
    "sha256": HashKind.SHA256,
    "sha-256": HashKind.SHA256,
    "sha_256": HashKind.SHA256,
    "pdq": HashKind.PDQ,
    "pdq_hash": HashKind.PDQ,
}
# Kinds of hash lists that the desk does not compute: reported, not imported.
_UNSUPPORTED = {"sha512", "sha-512", "sha1", "sha-1", "tmk", "tmk+pdqf", "vpdq", "photodna", "video_md5"}
_TYPE_KEYS = ("hash_type", "signal_type", "type", "algorithm")
_VALUE_KEYS = ("hash_value", "signal", "hash", "value")
_LABEL_KEYS = ("label", "labels", "tags", "classification", "category", "ideology", "group_name", "group")
_SOURCE_KEYS = ("source", "provider", "list")
_DATE_KEYS = ("date", "listed_on", "date_added", "added_at", "created_at", "timestamp")
_LIST_KEYS = ("results", "data", "items", "hashes", "body", "records")
_MAX_PROBLEMS = 1000


@dataclass(frozen=True, slots=True)
class ListedHash:
    line: int
    kind: str
    value: str
    label: str
    source: str
    listed_on: date | None
    quality: int | None


@dataclass
class ReadList:
    """The usable hashes of a list, and every row that was not, as (line, why)."""

    hashes: list[ListedHash] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    rejected: int = 0

    def reject(self, line: int, why: str) -> None:
        self.rejected += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append((line, why))


class ListFormatError(ValueError):
    """The file as a whole is not a hash list the desk can read."""


def _first(row: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = row.get(key)
        if value not in (None, "", []):
            return value
    return None


def _text(value: Any, limit: int) -> str:
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value if v not in (None, ""))
    return " ".join(str(value).split())[:limit] if value is not None else ""


def _date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value).date()
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        raise ValueError(f"date {text[:40]!r} is not an ISO date") from None


def _quality(value: Any) -> int | None:
    if value in (None, ""):
        return None
    quality = int(str(value).strip())
    if not 0 <= quality <= 100:
        raise ValueError(f"quality {quality} is not between 0 and 100")
    return quality


def _read_row(result: ReadList, line: int, raw: Mapping[str, Any], *, label: str, source: str) -> None:
    row = {str(k).strip().lower(): v for k, v in raw.items() if k is not None}
    pairs: list[tuple[str, Any]] = []
    named = _first(row, _TYPE_KEYS)
    if named is not None:
        pairs.append((str(named).strip().lower(), _first(row, _VALUE_KEYS)))
    else:
        pairs += [(key, row[key]) for key in (*_KIND_NAMES, *_UNSUPPORTED) if row.get(key) not in (None, "")]
    if not pairs:
        result.reject(line, "no hash: expected hash_type and hash_value, or md5, sha256 or pdq columns")
        return
    try:
        listed_on = _date(_first(row, _DATE_KEYS))
        quality = _quality(row.get("quality"))
    except ValueError as exc:
        result.reject(line, str(exc))
        return
    row_label = _text(_first(row, _LABEL_KEYS), 200) or label
    row_source = _text(_first(row, _SOURCE_KEYS), 200) or source
    for name, value in pairs:
        kind = _KIND_NAMES.get(name)
        if kind is None:
            why = "is not matched by the desk" if name in _UNSUPPORTED else "is not a known hash type"
            result.reject(line, f"{name[:20]!r} {why}")
            continue
        hexdigits = str(value or "").strip().lower()
        if not _HEX[kind].fullmatch(hexdigits):
            digits = 32 if kind == HashKind.MD5 else 64
            result.reject(line, f"{kind} value {hexdigits[:70]!r} is not {digits} hex digits")
            continue
        result.hashes.append(ListedHash(line, kind, hexdigits, row_label, row_source, listed_on, quality))


def _line_of(text: str, position: int, cache: list[int]) -> int:
    """1-based line of `position`, counting newlines incrementally from the last call."""
    last_position, last_line = cache
    line = last_line + text.count("\n", last_position, position)
    cache[:] = [position, line]
    return line


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _array_items(text: str, i: int) -> Iterator[tuple[int, Any]]:
    """Items of the JSON array starting at text[i] == "[", with the line each starts on."""
    decoder = json.JSONDecoder()
    lines = [0, 1]
    i = _skip(text, i + 1)
    while i < len(text) and text[i] != "]":
        item, end = decoder.raw_decode(text, i)
        yield _line_of(text, i, lines), item
        i = _skip(text, end)
        if i < len(text) and text[i] == ",":
            i = _skip(text, i + 1)


def _json_items(text: str) -> Iterator[tuple[int, Any]]:
    """The rows of a JSON document: a top-level array, or the array under one of _LIST_KEYS."""
    json.loads(text)  # the whole document must be valid JSON before anything is imported
    i = _skip(text, 0)
    if text[i] == "[":
        yield from _array_items(text, i)
        return
    if text[i] != "{":
        raise ListFormatError("a JSON hash list is an array of objects, or an object holding one")
    decoder = json.JSONDecoder()
    i = _skip(text, i + 1)
    while i < len(text) and text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = _skip(text, _skip(text, i) + 1)  # past the colon
        if key in _LIST_KEYS and text[i] == "[":
            yield from _array_items(text, i)
            return
        _, i = decoder.raw_decode(text, i)
        i = _skip(text, i)
        if text[i] == ",":
            i = _skip(text, i + 1)
    raise ListFormatError(f"no list of hashes under any of {', '.join(_LIST_KEYS)}")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def read_hash_list(data: bytes, *, filename: str = "", label: str = "", source: str = "") -> ReadList:
    """Read a CSV, JSON or JSON Lines hash list (judged by its name, then its first character)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ListFormatError(f"not UTF-8 text (byte {exc.start})") from None
    result = ReadList()
    name = filename.lower()
    start = text.lstrip()[:1]
    if name.endswith((".jsonl", ".ndjson")) or (start == "{" and not name.endswith(".json") and not _is_json(text)):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                result.reject(number, f"not JSON: {exc}")
                continue
            if isinstance(row, dict):
                _read_row(result, number, row, label=label, source=source)
            else:
                result.reject(number, "not a JSON object")
        return result
    if name.endswith(".json") or start in ("[", "{"):
        try:
            for number, row in _json_items(text):
                if isinstance(row, dict):
                    _read_row(result, number, row, label=label, source=source)
                else:
                    result.reject(number, "not a JSON object")
        except json.JSONDecodeError as exc:
            raise ListFormatError(f"not valid JSON at line {exc.lineno}: {exc.msg}") from None
        return result
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise ListFormatError("an empty file, or a CSV file without a header row")
    headers = {h.strip().lower() for h in reader.fieldnames if h}
    if not headers & {*_TYPE_KEYS, *_KIND_NAMES, *_UNSUPPORTED}:
        raise ListFormatError(
            "the CSV header names no hash column: expected hash_type and hash_value, or md5, sha256 or pdq"
        )
    for row in reader:
        _read_row(result, reader.line_num, row, label=label, source=source)
    return result
