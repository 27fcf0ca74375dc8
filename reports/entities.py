from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from itertools import islice
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

# Telegram entities named in a report. Every spelling of a channel, bot, invite or sticker set is
# reduced to one canonical URL (DESIGN "Entities: canonical URLs"). The input is hostile and can be
# large, so the text scanner only stops at anchor points and looks around them within fixed bounds
# (SECURITY 3.5, E9); every candidate then goes through the one normalisation function, `_resolve`.
# Pure Python: the intake task, the API and the tests share it without Django.

MAX_TEXT_CHARS = 2 * 1024 * 1024
MAX_CANDIDATE_CHARS = 4096
SEEN_AS_CHARS = 300
# Each returned mention may cost this many anchor points (or hrefs): a text packed with junk that
# looks like links ("@a @a @a", "t.me t.me") stops early instead of costing seconds.
CANDIDATES_PER_MENTION = 20


class EntityKind(StrEnum):
    CHANNEL_OR_GROUP = "channel_or_group"
    BOT = "bot"
    USER = "user"
    STICKER_SET = "sticker_set"
    EMOJI_SET = "emoji_set"
    INVITE = "invite"
    PRIVATE_CHAT = "private_chat"
    ACCOUNT = "account"


@dataclass(frozen=True, slots=True)
class EntityMention:
    url: str
    kind: EntityKind
    seen_as: str
    defanged: bool
    lookalike: bool
    source: str


_ALIASES = frozenset({"t.me", "telegram.me", "telegram.dog", "www.t.me", "www.telegram.me", "www.telegram.dog"})
_RESERVED = frozenset(
    {
        "joinchat",
        "addstickers",
        "addemoji",
        "s",
        "c",
        "share",
        "proxy",
        "socks",
        "setlanguage",
        "addtheme",
        "iv",
        "login",
        "confirmphone",
        "bg",
        "boost",
        "contact",
        "invoice",
        "addlist",
        "m",
    }
)
_INVISIBLE = (
    "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)
# A regex, not str.translate: translate looks every character of a non-ASCII string up in a
# dict, which made 2,000-letter Cyrillic candidates cost about 2 ms each (seconds per mail).
_INVISIBLE_RUN = re.compile(f"[{_INVISIBLE}]+")
# NFKC leaves the ideographic full stop (and turns the halfwidth one into it); IDNA reads it as ".".
_DOTS = str.maketrans({"\u3002": "."})
# Cyrillic, Greek and a few Latin/Armenian letters drawn like ASCII ones: the part of the UTS #39
# confusables data that can spell our host names and usernames. Only hosts are read through it;
# a username is never merged with the ASCII one it imitates.
_CONFUSABLES = str.maketrans(
    "\u0430\u0435\u043a\u043c\u043e\u0440\u0441\u0442\u0443\u0445\u0455\u0456\u0458\u04bb\u04cf\u0501\u051b\u051d"
    "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0423\u0425\u0405\u0406\u0408\u051a\u051c"
    "\u03b1\u03b3\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7"
    "\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7"
    "\u0131\u0261\u0585",
    "aekmopctyxsijhldqwABEKMHOPCTYXSIJQWayikvoptuxABEZHIKMNOPTYXigo",
)
_BLANK = "".join(chr(i) for i in range(0x3001) if i <= 0x20 or i == 0x7F or chr(i).isspace()) + _INVISIBLE
_OPENING = "<([{\"'\u00ab\u201c\u2018"
_TRAILING = ".,;:!?)]}>'\"*\u00bb\u201d\u2019\u2026\u3002\uff0e" + _BLANK

# tdlib's is_valid_username: a letter, then letters, digits and single underscores, no "_" at the
# end. Ordinary names need 5 to 32 characters; collectible (Fragment) names may have only 4, so 4
# is the floor. A trailing or doubled underscore is rejected, never trimmed: trimming would name a
# different account.
_USERNAME = re.compile(r"[a-z](?:_?[a-z0-9])+")
_INVITE_HASH = re.compile(r"[A-Za-z0-9_-]{4,64}")
_SET_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_CHANNEL_ID = re.compile(r"[0-9]{1,20}")
_PHONE = re.compile(r"\+?[0-9]+")
_HTTP = re.compile(r"https?://", re.IGNORECASE)
_DEFANGED_SCHEME = re.compile(r"h(?:xx|tt)p(s?)(?::|\[:\])//", re.IGNORECASE)
_DEFANGED_DOT = re.compile(r" ?(?:\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)) ?| \. ?|\. ", re.IGNORECASE)

# The scanner reads a "view" of the text with the same length, in which look-alike characters are
# already folded and every invisible character is U+200B, which host names may contain anywhere.
_Z = "\u200b*+"
_DOT = rf"{_Z} ?(?:\.|\[\.\]|\(\.\)|\{{\.\}}|\[dot\]|\(dot\)) ?{_Z}"
_GLUED = r"[\w.+\-/\\@]"  # a reference right after one of these belongs to an address or path
_ANCHOR = re.compile(
    rf"(?P<host>(?:{_Z.join('telegram')}|t){_DOT}(?:{_Z.join('me')}|{_Z.join('dog')})(?![\w-])|xn--)"
    rf"|(?P<tg>tg:(?<!{_GLUED}tg:))"
    # Possessive, so "@example.com" and "@user@server" fail instead of matching a shorter name.
    rf"|(?P<at>@(?<!{_GLUED}@)[\w\u200b]{{1,64}}+(?![.\-]\w|@))",
    re.IGNORECASE,
)
# Redirect wrappers pasted as text (Outlook safelinks, Google, Facebook) hide their target in the
# query string, percent-encoded, where the anchor above cannot see it. Found apart from _ANCHOR,
# and by their ".com/" first, a literal the regex engine skips to at C speed: folded into
# _ANCHOR, or written as one alternation of host names, they doubled the time of every scan.
# Loose on purpose: _unwrap checks the whole host.
_DOT_COM = re.compile(r"\.com/", re.IGNORECASE)
_WRAPPER_HOSTS = (("safelinks.protection.outlook", ""), ("google", "url?"), ("facebook", "l.php?"))
# What may precede a host (scheme, user info, one "www." or username label), matched against the
# reversed text so that the look-back is one anchored match of bounded length.
_PREFIX_CHARS = 160
_PREFIX_REVERSED = re.compile(
    r"(?:(?:\.|\]\.\[|\)\.\(|\}\.\{|\]tod\[|\)tod\()[\w\u200b-]{1,63})?"
    r"(?:@[^\s/?#@<>\"'`()\[\]{}|\\^]{1,64})?"
    r"(?://(?:(?::|\]:\[)s?(?:ptth|pxxh))?)?",
    re.IGNORECASE,
)
_TAIL = re.compile(r"[^\s<>\"'`()\[\]{}|\\^,;]{0,2048}")
_GLUED_BEFORE = re.compile(_GLUED)


def canonicalize(candidate: str) -> EntityMention | None:
    """The entity one spelling names (URL, @handle, tg: link, bare t.me/x, defanged), or None."""
    return _parse(candidate, "lookup")


def extract_entities(text: str, *, source: str = "text", limit: int = 1000) -> list[EntityMention]:
    """Mentions in the order they appear, exact repeats dropped, at most `limit`.

    Reads the first MAX_TEXT_CHARS characters and at most `limit * CANDIDATES_PER_MENTION` anchors.
    """
    text = text[:MAX_TEXT_CHARS]
    view = _scan_view(text)
    found: dict[EntityMention, None] = {}
    pos = 0
    # The next match of each pattern, searched again only once the scan has passed it: a text
    # with many of one and none of the other must not be searched to its end at every step.
    anchor, wrapper = _ANCHOR.search(view), _next_wrapper(view, 0)
    for _ in range(max(limit, 0) * CANDIDATES_PER_MENTION):
        if anchor is not None and anchor.start() < pos:
            anchor = _ANCHOR.search(view, pos)
        if wrapper is not None and wrapper[0] < pos:
            wrapper = _next_wrapper(view, pos)
        if len(found) >= limit or (anchor is None and wrapper is None):
            break
        if wrapper is not None and (anchor is None or wrapper[0] <= anchor.start()):
            start, end = _url_start(view, wrapper[0]), _url_end(view, wrapper[1])
            target = _unwrap(text[start:end])
            if target == text[start:end]:
                # Not a wrapper after all (another host, no target): read on from its path, so
                # a link further along is still seen.
                pos = wrapper[1]
                continue
            pos = end
        else:
            assert anchor is not None
            kind = anchor.lastgroup
            start = _url_start(view, anchor.start()) if kind == "host" else anchor.start()
            end = anchor.end() if kind == "at" else _url_end(view, anchor.end())
            target = text[start:end]
            pos = end
        if start and _GLUED_BEFORE.match(view, start - 1):
            continue
        mention = _parse(target, source)
        if mention is not None:
            found.setdefault(mention)
    return list(found)


def _next_wrapper(view: str, pos: int) -> tuple[int, int] | None:
    """(start of the host name, end of the path) of the next redirect wrapper at or after `pos`."""
    for dot_com in _DOT_COM.finditer(view, pos):
        before = view[max(pos, dot_com.start() - 30) : dot_com.start()].lower()
        for host, path in _WRAPPER_HOSTS:
            if before.endswith(host) and view[dot_com.end() : dot_com.end() + len(path)].lower() == path:
                return dot_com.start() - len(host), dot_com.end() + len(path)
    return None


def extract_from_hrefs(hrefs: Iterable[str], *, limit: int = 1000, source: str = "href") -> list[EntityMention]:
    """Mentions in link targets (HTML hrefs, ARF's Reported-URI), exact repeats dropped, at most `limit`.

    Redirect wrappers are unwrapped by reading their query string; nothing is ever fetched.
    """
    found: dict[EntityMention, None] = {}
    for href in islice(hrefs, max(limit, 0) * CANDIDATES_PER_MENTION):
        if len(found) >= limit:
            break
        mention = _parse(_unwrap(href[:MAX_CANDIDATE_CHARS]), source)
        if mention is not None:
            found.setdefault(mention)
    return list(found)


def dedupe(mentions: Iterable[EntityMention]) -> list[EntityMention]:
    """The first mention of each url, in the order given."""
    first: dict[str, EntityMention] = {}
    for mention in mentions:
        first.setdefault(mention.url, mention)
    return list(first.values())


def _url_start(view: str, host_start: int) -> int:
    before = _PREFIX_REVERSED.match(view[max(0, host_start - _PREFIX_CHARS) : host_start][::-1])
    return host_start - (before.end() if before else 0)


def _url_end(view: str, pos: int) -> int:
    tail = _TAIL.match(view, pos)
    return tail.end() if tail else pos


def _parse(raw: str, source: str) -> EntityMention | None:
    raw = raw[:MAX_CANDIDATE_CHARS]
    found = _resolve(raw, loose=True)
    if found is None:
        return None
    url, kind, defanged = found
    # A look-alike is a spelling that names the entity only after folding: compare with a reading
    # that folds nothing. Plain ASCII without escapes or punycode reads the same both ways.
    lookalike = not url.isascii()
    if not lookalike and not (raw.isascii() and "%" not in raw and "xn--" not in raw.lower()):
        strict = _resolve(raw, loose=False)
        lookalike = strict is None or strict[0] != url
    return EntityMention(url, kind, _trim(raw)[:SEEN_AS_CHARS], defanged, lookalike, source)


def _resolve(raw: str, *, loose: bool) -> tuple[str, EntityKind, bool] | None:
    """(canonical url, kind, defanged) of one candidate; `loose` also reads look-alike spellings."""
    text = _fold(_trim(raw)) if loose else _trim(raw)
    text, defanged = _undefang(text)
    text = _trim(text)
    if text.startswith("@"):
        found = _username(text[1:], EntityKind.ACCOUNT, loose=loose)
    elif text[:3].lower() == "tg:":
        found = _tg_link(text[3:], loose=loose)
    else:
        found = _web_link(text, loose=loose)
    return None if found is None else (*found, defanged)


def _web_link(text: str, *, loose: bool) -> tuple[str, EntityKind] | None:
    # Browsers read "\" as "/" in http(s) URLs; urlsplit does not, and would then see the host of
    # "https://evil.example\@t.me/x" as t.me although a browser visits evil.example.
    text = text.replace("\\", "/")
    if not _HTTP.match(text):
        text = "https://" + text.lstrip("/")
    try:
        parts = urlsplit(text)
        host = parts.hostname
        if host is None or parts.port not in (None, 80, 443):
            return None
    except ValueError:
        return None
    host = host.rstrip(".")
    if loose:
        host = _fold(_decode_punycode(host))
    skeleton = host.translate(_CONFUSABLES) if loose else host
    if skeleton in _ALIASES:
        return _web_path(parts, loose=loose)
    label = host[: -len(".t.me")]
    if skeleton.endswith(".t.me") and "." not in label:
        return _username(label, EntityKind.CHANNEL_OR_GROUP, loose=loose)
    return None


def _web_path(parts: SplitResult, *, loose: bool) -> tuple[str, EntityKind] | None:
    path = unquote(parts.path)
    segments: list[str] = []
    for segment in (_fold(path) if loose else path).split("/"):
        if segment == ".." and segments:
            segments.pop()
        elif segment not in ("", ".", ".."):
            segments.append(segment)
    if not segments:
        return None
    head = segments[0]
    if head.startswith("+"):
        return None if _PHONE.fullmatch(head[1:]) else _invite(head[1:])
    second = segments[1] if len(segments) > 1 else ""
    match head.lower():
        case "joinchat":
            return _invite(second)
        case "addstickers":
            return _set_name(second, EntityKind.STICKER_SET)
        case "addemoji":
            return _set_name(second, EntityKind.EMOJI_SET)
        case "c":
            return _private_chat(second)
        case "s":
            return _username(second, EntityKind.CHANNEL_OR_GROUP, loose=loose)
    return _username(head, EntityKind.CHANNEL_OR_GROUP, loose=loose)


def _tg_link(rest: str, *, loose: bool) -> tuple[str, EntityKind] | None:
    action, _, query = rest.split("#", 1)[0].lstrip("/").partition("?")
    params: dict[str, str] = {}
    for key, value in parse_qsl(query):
        params.setdefault(key.lower(), _fold(value) if loose else value)
    match action.rstrip("/").lower():
        case "resolve":
            return _username(params.get("domain", ""), EntityKind.CHANNEL_OR_GROUP, loose=loose)
        case "join":
            return _invite(params.get("invite", ""))
        case "addstickers":
            return _set_name(params.get("set", ""), EntityKind.STICKER_SET)
        case "addemoji":
            return _set_name(params.get("set", ""), EntityKind.EMOJI_SET)
        case "privatepost":
            return _private_chat(params.get("channel", ""))
    return None


def _username(name: str, plain_kind: EntityKind, *, loose: bool) -> tuple[str, EntityKind] | None:
    """A non-ASCII name is kept as written (lower-cased) in its url, so it never collides with the
    ASCII account it imitates; it is accepted only if its confusable skeleton is a valid name."""
    if not 4 <= len(name) <= 32:  # the skeleton has the name's length; checked before building it
        return None
    name = name.lower()
    skeleton = name.translate(_CONFUSABLES) if loose else name
    if not (skeleton.isascii() and _USERNAME.fullmatch(skeleton)):
        return None
    if skeleton in _RESERVED:
        return None
    return f"https://t.me/{name}", EntityKind.BOT if skeleton.endswith("bot") else plain_kind


def _invite(invite_hash: str) -> tuple[str, EntityKind] | None:
    if not _INVITE_HASH.fullmatch(invite_hash):
        return None
    return f"https://t.me/+{invite_hash}", EntityKind.INVITE


def _set_name(name: str, kind: EntityKind) -> tuple[str, EntityKind] | None:
    if not _SET_NAME.fullmatch(name):
        return None
    path = "addstickers" if kind is EntityKind.STICKER_SET else "addemoji"
    return f"https://t.me/{path}/{name.lower()}", kind


def _private_chat(channel_id: str) -> tuple[str, EntityKind] | None:
    if not _CHANNEL_ID.fullmatch(channel_id):
        return None
    return f"https://t.me/c/{channel_id}", EntityKind.PRIVATE_CHAT


def _trim(text: str) -> str:
    return text.strip(_BLANK).lstrip(_OPENING).rstrip(_TRAILING)


def _fold(text: str) -> str:
    """NFKC without invisible characters, full stops as ".": the form look-alikes are read in."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", _INVISIBLE_RUN.sub("", text)).replace("\u3002", ".")


def _undefang(text: str) -> tuple[str, bool]:
    plain = _DEFANGED_DOT.sub(".", text)
    scheme = _DEFANGED_SCHEME.match(plain)
    if scheme and scheme[0].lower() not in ("http://", "https://"):
        plain = f"http{scheme[1]}://{plain[scheme.end() :]}"
    return plain, plain != text


def _decode_punycode(host: str) -> str:
    # The stdlib codec is enough: the decoded host is only compared with our aliases, so IDNA's
    # validity rules add nothing. Labels over 63 characters are not DNS labels and stay encoded.
    if "xn--" not in host:
        return host
    labels = []
    for label in host.split("."):
        if label.startswith("xn--") and len(label) <= 63:
            try:
                label = label[4:].encode("ascii").decode("punycode")
            except (ValueError, OverflowError):
                return host
        labels.append(label)
    return ".".join(labels)


@functools.lru_cache(maxsize=4096)
def _view_char(char: str) -> str:
    if char in _INVISIBLE:
        return "\u200b"
    folded = unicodedata.normalize("NFKC", char)
    # Offsets into the view must stay offsets into the text, so a character that NFKC expands
    # (ligatures, "…") stays as it is; none of them can spell a host name.
    if len(folded) != 1:
        folded = char
    return folded.translate(_DOTS).translate(_CONFUSABLES)


def _scan_view(text: str) -> str:
    if text.isascii():
        return text
    return text.translate({ord(char): _view_char(char) for char in set(text)})


def _unwrap(href: str) -> str:
    """The target of a known redirect wrapper, read from its query string, else `href`."""
    for _ in range(3):  # a safelink around a Google redirect happens; deeper nesting does not
        url = href.strip(_BLANK)
        try:
            parts = urlsplit(url if _HTTP.match(url) else "https://" + url.lstrip("/"))
        except ValueError:
            break
        names = _wrapper_params(parts.hostname or "", parts.path)
        target = next((value for key, value in parse_qsl(parts.query) if key in names), "")
        if not target:
            break
        href = target
    return href


def _wrapper_params(host: str, path: str) -> tuple[str, ...]:
    if host == "safelinks.protection.outlook.com" or host.endswith(".safelinks.protection.outlook.com"):
        return ("url",)
    if host in ("google.com", "www.google.com") and path == "/url":
        return ("q", "url")
    if host in ("l.facebook.com", "lm.facebook.com") and path == "/l.php":
        return ("u",)
    return ()
