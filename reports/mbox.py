"""Reading mbox files the way mail clients do, one message at a time.

The stdlib's mailbox.mbox starts a new message at every line that begins with "From ", so a
writer that did not escape such a line in a body (mboxcl writers, hand-made archives, plain
`cat`) splits a message in two and the tail becomes a headerless "message" of its own. Here a
"From " line separates two messages only when it looks like a separator:

- it is the first line of the file, or the line before it is empty, and
- it has the separator's shape, `From <sender> <date>`, where the date (asctime, RFC 5322 or
  Gmail's "+0000" in the middle) names a weekday, a month, a time hh:mm and a four-digit year.

Any other "From " line is body text. Lines that mboxo/mboxrd writers escaped (">From ",
">>From ") lose one ">" (the mboxrd rule), which gives back the bytes that were written for an
escaped "From " line; an original ">From " line in an mboxo file loses its ">" too, which is the
one case the two formats cannot tell apart. The blank line that precedes a separator belongs to
the mbox format and is not part of the message. CRLF files are read the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

# Checked on the text after "From <sender> ", which a separator keeps short.
_SEPARATOR_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? "
    rb"(?=.*\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\b)"
    rb"(?=.*\b\d{1,2}:\d{2}\b)"
    rb"(?=.*\b\d{4}\b)"
)
_SEPARATOR_BYTES = 1000
_ESCAPED_FROM = re.compile(rb">+From ")


def is_separator(line: bytes) -> bool:
    """Does this line (with or without its line end) have the shape of an mbox "From " line?"""
    if not line.startswith(b"From ") or len(line) > _SEPARATOR_BYTES:
        return False
    rest = line[5:].lstrip(b" ")
    if _SEPARATOR_DATE.match(rest):  # some writers leave the sender out
        return True
    _, _, date = rest.partition(b" ")
    return _SEPARATOR_DATE.match(date.lstrip(b" ")) is not None


def read_mbox(file: BinaryIO) -> Iterator[bytes]:
    """Each message of an mbox, without its "From " line, as soon as it has been read.

    Raises ValueError when the file does not start with a separator (it is no mbox).
    """
    message: list[bytes] = []
    started = False
    blank_before = True
    for line in file:
        blank = line in (b"\n", b"\r\n")
        if blank_before and is_separator(line):
            if started:
                yield _finish(message)
            message, started = [], True
        elif not started:
            if not blank:
                raise ValueError("not an mbox file: it does not start with a 'From ' line")
        elif _ESCAPED_FROM.match(line):
            message.append(line[1:])
        else:
            message.append(line)
        blank_before = blank
    if started:
        yield _finish(message)


def _finish(lines: list[bytes]) -> bytes:
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)
