"""Reading mbox files: only a separator-shaped "From " line after a blank line starts a message."""

from __future__ import annotations

import io
import mailbox
from pathlib import Path

import pytest

from reports.mbox import is_separator, read_mbox

CPYTHON = Path(__file__).parents[1] / "data" / "mail" / "cpython-test_email"


def _read(data: bytes) -> list[bytes]:
    return list(read_mbox(io.BytesIO(data)))


def test_an_unescaped_from_line_in_a_body_stays_in_its_message():
    """CPython's own example: the stdlib's mailbox splits it in two and the tail loses its header."""
    data = (CPYTHON / "mailbox_01.mbox").read_bytes()
    assert len(mailbox.mbox(CPYTHON / "mailbox_01.mbox")) == 2
    (message,) = _read(data)
    assert message == data.split(b"\n", 1)[1]
    assert message.endswith(b"Hello\n\nFrom time to time\n")


def test_messages_are_split_at_separators_and_lose_the_blank_line_before_the_next():
    data = (
        b"From alice@example.org Sat Nov 28 12:00:00 2026\n"
        b"From: alice@example.org\n\nfirst t.me/one_channel\n\n"
        b"From bob@example.org Sun Nov 29 08:01:02 2026\n"
        b"From: bob@example.org\n\nsecond\n\n"
    )
    assert _read(data) == [
        b"From: alice@example.org\n\nfirst t.me/one_channel\n",
        b"From: bob@example.org\n\nsecond\n",
    ]


def test_a_separator_shaped_line_without_a_blank_line_before_it_is_body_text():
    data = (
        b"From alice@example.org Sat Nov 28 12:00:00 2026\n"
        b"From: alice@example.org\n\nquoted:\nFrom bob@example.org Sun Nov 29 08:01:02 2026\nend\n"
    )
    (message,) = _read(data)
    assert b"From bob@example.org Sun Nov 29" in message


def test_escaped_from_lines_lose_one_quote_mark_as_mboxrd_says():
    data = (
        b"From alice@example.org Sat Nov 28 12:00:00 2026\n"
        b"From: alice@example.org\n\n>From the start\n>>From a quote\n> From a reply\n"
    )
    assert _read(data) == [b"From: alice@example.org\n\nFrom the start\n>From a quote\n> From a reply\n"]


def test_what_pythons_mailbox_writes_reads_back_as_it_was_given(tmp_path):
    given = [
        b"From: a@example.org\n\nFrom the start\nFrom here on t.me/two_channel\n",
        b"From: b@example.org\n\nplain\n",
    ]
    box = mailbox.mbox(tmp_path / "box.mbox")
    for message in given:
        box.add(message)
    box.flush()
    assert b"\n>From here on" in (tmp_path / "box.mbox").read_bytes()
    with open(tmp_path / "box.mbox", "rb") as file:
        assert list(read_mbox(file)) == given


@pytest.mark.parametrize(
    "line",
    [
        b"From MAILER-DAEMON Sun Aug  7 11:40:37 2022 extra info\n",
        b"From - Sat Nov 28 12:00:00 2026\n",
        b"From 1781234567890123456@xxx Thu Dec 31 23:59:59 +0000 2020\r\n",
        b"From reporter@example.org Sat, 28 Nov 2026 12:00:00 +0000\n",
        b"From  Sat Nov 28 12:00:00 2026\n",
        b"From reporter@example.org Sat Nov 28 12:00 2026\n",
    ],
)
def test_separator_shapes_that_writers_use(line):
    assert is_separator(line)


@pytest.mark.parametrize(
    "line",
    [
        b"From time to time\n",
        b"From here on t.me/two_channel\n",
        b"From Monday on, the channel posts at 12:00 every day\n",
        b"From: alice@example.org\n",
        b"From alice@example.org\n",
        b"From alice Sat Nov 28 2026\n",
        b"From alice@example.org Sat Nov 28 12:00:00 2026" + b" x" * 600 + b"\n",
    ],
)
def test_other_from_lines_are_not_separators(line):
    assert not is_separator(line)


def test_crlf_files_keep_their_line_ends():
    data = b"From a@example.org Sat Nov 28 12:00:00 2026\r\nFrom: a@example.org\r\n\r\nbody\r\n\r\n"
    assert _read(data) == [b"From: a@example.org\r\n\r\nbody\r\n"]


def test_a_file_that_does_not_start_with_a_separator_is_refused():
    with pytest.raises(ValueError, match="not an mbox"):
        _read(b"From: a@example.org\n\nbody\n")


def test_leading_blank_lines_and_an_empty_file_are_fine():
    assert _read(b"") == []
    assert _read(b"\n\nFrom a@example.org Sat Nov 28 12:00:00 2026\nFrom: a@example.org\n\nx\n") == [
        b"From: a@example.org\n\nx\n"
    ]
