from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# Plain text and link targets from untrusted HTML, in one linear pass.
#
# Neither html.parser (quadratic on "</" runs, and able to raise AssertionError on "<![", in
# Python 3.13.0) nor nh3 (18 s for 100,000 nested <div>) is bounded on hostile markup, so this
# tokenizer only ever moves forward: every construct it cannot close ends the input. The result
# is text for humans and the entity extractor, never markup.

# Tags whose start or end breaks the line when a browser renders them.
BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "br", "caption", "center", "dd",
        "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
        "footer", "form", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "html",
        "legend", "li", "listing", "main", "menu", "nav", "ol", "p", "pre", "section", "summary",
        "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
# Raw-text elements: their content is not markup and runs to the matching end tag.
_SKIPPED_RAW = frozenset({"script", "style", "title", "iframe", "noembed", "noframes", "template"})
_SHOWN_RAW = frozenset({"xmp", "textarea"})
_MAX_HREF_CHARS = 4096

_TAG_START = re.compile(r"<[A-Za-z/!?]")
_NAME = re.compile(r"[A-Za-z][^\t\n\f\r />]*")
_ATTR = re.compile(
    r"[\t\n\f\r /]*([^\t\n\f\r />][^\t\n\f\r />=]*)"
    r"(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:\"([^\"]*)\"|'([^']*)'|([^\t\n\f\r >]*)))?"
)
_TAG_END = re.compile(r"[\t\n\f\r /]*>")
_SPACES = re.compile(r"[\t\n\f\r ]+")
_HREF_JUNK = re.compile(r"[\x00-\x20\x7f-\x9f]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_END_TAGS = {name: re.compile(rf"</{name}[\t\n\f\r />]", re.IGNORECASE) for name in _SKIPPED_RAW | _SHOWN_RAW}
# A run of tags without attributes, none of which changes how the text after it is read (pre,
# raw-text elements, plaintext), does nothing but break lines: it is skipped in one match, at C
# speed. Hostile HTML is mostly such runs (a megabyte of "<p>" is 350,000 tags, 0.45 s of CPU
# one at a time).


def _one_of(names: Iterable[str]) -> str:
    """A regex matching exactly these names, written as a trie: the engine tries alternatives
    one by one, so a flat list of 50 names costs 50 attempts at every "<" of a megabyte."""
    by_first: dict[str, list[str]] = {}
    for name in names:
        by_first.setdefault(name[:1], []).append(name[1:])
    branches = []
    for first, rests in sorted(by_first.items()):
        if not first:
            continue
        inner = _one_of(rest for rest in rests if rest)
        optional = "" in rests
        branches.append(re.escape(first) + (f"(?:{inner})" + ("?" if optional else "") if inner else ""))
    return "|".join(branches)


_STATEFUL = _SKIPPED_RAW | _SHOWN_RAW | {"pre", "plaintext"}
_TAG_RUN = re.compile(
    # A name holding "<" ("<x<pre>" is one tag named "x<pre") is left to the slow path, so that in
    # a run every "<" starts a tag and _BLOCK_TAG cannot find one inside a name. Possessive: a
    # plain "+" keeps a backtracking point per tag, 100 MB for a megabyte of "<p>".
    rf"(?:</?(?!(?:{_one_of(_STATEFUL)})[\t\n\f\r />])[A-Za-z][^\t\n\f\r /<>]*[\t\n\f\r ]*/?>)++",
    re.IGNORECASE,
)
_BLOCK_TAG = re.compile(rf"</?(?:{_one_of(BLOCK_TAGS)})[\t\n\f\r ]*/?>", re.IGNORECASE)


@dataclass
class HtmlText:
    text: str
    hrefs: list[str] = field(default_factory=list)
    hrefs_truncated: bool = False


def html_to_text(markup: str, *, max_hrefs: int = 1000) -> HtmlText:
    """Render ``markup`` as plain text; collect every ``href`` target, de-duplicated, in order.

    The caller bounds the input size; the work is linear in it.
    """
    out: list[str] = []
    hrefs: list[str] = []
    seen: set[str] = set()
    truncated = False
    in_pre = 0
    pos = 0
    n = len(markup)

    def data(chunk: str) -> None:
        if not chunk:
            return
        chunk = html.unescape(chunk)
        out.append(chunk.replace("\t", " ") if in_pre else _SPACES.sub(" ", chunk))

    while pos < n:
        tag_start = _TAG_START.search(markup, pos)
        if tag_start is None:
            data(markup[pos:])
            break
        lt = tag_start.start()
        data(markup[pos:lt])
        run = _TAG_RUN.match(markup, lt)
        if run is not None:
            # One line break per block tag; three or more come out as two (_BLANK_RUNS), so the
            # first two are all that is looked for.
            first = _BLOCK_TAG.search(markup, lt, run.end())
            if first is not None:
                out.append("\n\n" if _BLOCK_TAG.search(markup, first.end(), run.end()) else "\n")
            pos = run.end()
            continue
        nxt = markup[lt + 1]
        if markup.startswith("<!--", lt):
            close = markup.find("-->", lt + 4)
            if close == -1:
                break
            pos = close + 3
            continue
        if nxt in ("!", "?"):
            close = markup.find(">", lt + 2)
            if close == -1:
                break
            pos = close + 1
            continue
        if nxt == "/":
            name_match = _NAME.match(markup, lt + 2)
            close = markup.find(">", lt + 2)
            if close == -1:
                break
            if name_match:
                name = name_match.group().lower()
                if name in BLOCK_TAGS:
                    out.append("\n")
                if name == "pre" and in_pre:
                    in_pre -= 1
            pos = close + 1
            continue
        name_match = _NAME.match(markup, lt + 1)
        if name_match is None:  # unreachable: _TAG_START saw a letter; kept for the type checker
            pos = lt + 1
            continue
        name = name_match.group().lower()
        pos = name_match.end()
        alt = ""
        while True:
            attr = _ATTR.match(markup, pos)
            if not attr:
                break
            pos = attr.end()
            attr_name = attr.group(1).lower()
            value = attr.group(2) or attr.group(3) or attr.group(4) or ""
            if attr_name == "href" or attr_name.endswith(":href"):
                if len(hrefs) >= max_hrefs:
                    truncated = True
                    continue
                target = _HREF_JUNK.sub("", html.unescape(value))[:_MAX_HREF_CHARS]
                if target and target not in seen:
                    seen.add(target)
                    hrefs.append(target)
            elif attr_name == "alt" and name == "img":
                alt = html.unescape(value)
        end = _TAG_END.match(markup, pos)
        if not end:
            break
        pos = end.end()
        if name in BLOCK_TAGS:
            out.append("\n")
        if name == "pre":
            in_pre += 1
        if alt:
            out.append(" " + _SPACES.sub(" ", alt) + " ")
        if name in _END_TAGS:
            close_match = _END_TAGS[name].search(markup, pos)
            stop = close_match.start() if close_match else n
            if name in _SHOWN_RAW:
                raw = markup[pos:stop]
                out.append(html.unescape(raw) if name == "textarea" else raw)
            pos = stop
        elif name == "plaintext":
            out.append(markup[pos:])
            break

    lines = (" ".join(line.split()) for line in "".join(out).split("\n"))
    text = _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()
    return HtmlText(text=text, hrefs=hrefs, hrefs_truncated=truncated)
