from __future__ import annotations

import quopri

import pytest

from reports.entities import (
    MAX_TEXT_CHARS,
    EntityKind,
    EntityMention,
    canonicalize,
    dedupe,
    extract_entities,
    extract_from_hrefs,
)

CHANNEL = EntityKind.CHANNEL_OR_GROUP
BOT = EntityKind.BOT
ACCOUNT = EntityKind.ACCOUNT
INVITE = EntityKind.INVITE


def summary(mention: EntityMention | None) -> tuple[str, EntityKind, bool, bool] | None:
    if mention is None:
        return None
    return mention.url, mention.kind, mention.defanged, mention.lookalike


def urls(text: str, *, limit: int = 1000) -> list[str]:
    return [m.url for m in extract_entities(text, limit=limit)]


# DESIGN "Entities: canonical URLs", one row per spelling in its table.
DESIGN_TABLE = [
    ("t.me/Name", "https://t.me/name", CHANNEL),
    ("https://telegram.me/name", "https://t.me/name", CHANNEL),
    ("t.me/s/NAME", "https://t.me/name", CHANNEL),
    ("t.me/name/123", "https://t.me/name", CHANNEL),
    ("t.me/name?start=x", "https://t.me/name", CHANNEL),
    ("t.me/examplebot?start=x", "https://t.me/examplebot", BOT),
    ("tg://resolve?domain=name", "https://t.me/name", CHANNEL),
    ("name.t.me", "https://t.me/name", CHANNEL),
    ("t.me/ExampleBot", "https://t.me/examplebot", BOT),
    ("@name", "https://t.me/name", ACCOUNT),
    ("@Some_Bot", "https://t.me/some_bot", BOT),
    ("t.me/addstickers/Set", "https://t.me/addstickers/set", EntityKind.STICKER_SET),
    ("t.me/addemoji/Set", "https://t.me/addemoji/set", EntityKind.EMOJI_SET),
    ("t.me/joinchat/AbCdEf12", "https://t.me/+AbCdEf12", INVITE),
    ("t.me/+AbCdEf12", "https://t.me/+AbCdEf12", INVITE),
    ("tg://join?invite=AbCdEf12", "https://t.me/+AbCdEf12", INVITE),
    ("t.me/c/123456/78", "https://t.me/c/123456", EntityKind.PRIVATE_CHAT),
]


@pytest.mark.parametrize(("spelling", "url", "kind"), DESIGN_TABLE)
def test_each_spelling_of_the_design_table_has_its_canonical_url(spelling: str, url: str, kind: EntityKind) -> None:
    assert summary(canonicalize(spelling)) == (url, kind, False, False)


@pytest.mark.parametrize(("spelling", "url", "kind"), DESIGN_TABLE)
def test_each_spelling_of_the_design_table_is_found_in_running_text(spelling: str, url: str, kind: EntityKind) -> None:
    [mention] = extract_entities(f"Please block {spelling}, it sends spam.")
    assert summary(mention) == (url, kind, False, False)
    assert mention.seen_as == spelling
    assert mention.source == "text"


@pytest.mark.parametrize("spelling", ["t.me/+15551234567", "https://t.me/++15551234567", "t.me/+4930123456"])
def test_phone_link_is_not_an_invite(spelling: str) -> None:
    assert canonicalize(spelling) is None
    assert extract_entities(f"call {spelling} now") == []


def test_invite_hash_keeps_its_case_while_usernames_are_lower_cased() -> None:
    assert urls("T.ME/JOINCHAT/AbC-d_E12 T.ME/ChanNel") == ["https://t.me/+AbC-d_E12", "https://t.me/channel"]


# SECURITY E1: canonical forms, query and fragment never change the entity.
@pytest.mark.parametrize(
    ("spelling", "url", "kind"),
    [
        ("t.me/chan", "https://t.me/chan", CHANNEL),
        ("https://t.me/chan/123", "https://t.me/chan", CHANNEL),
        ("t.me/s/chan", "https://t.me/chan", CHANNEL),
        ("t.me/c/123/45", "https://t.me/c/123", EntityKind.PRIVATE_CHAT),
        ("t.me/joinchat/HASHhash", "https://t.me/+HASHhash", INVITE),
        ("t.me/+HASHhash", "https://t.me/+HASHhash", INVITE),
        ("t.me/addstickers/Set", "https://t.me/addstickers/set", EntityKind.STICKER_SET),
        ("t.me/addemoji/Set", "https://t.me/addemoji/set", EntityKind.EMOJI_SET),
        ("t.me/helperbot?start=x", "https://t.me/helperbot", BOT),
        ("@somebot", "https://t.me/somebot", BOT),
        ("https://t.me/chan?single&x=1#frag", "https://t.me/chan", CHANNEL),
        ("https://t.me/chan#/other", "https://t.me/chan", CHANNEL),
        ("https://t.me/+HASHhash?x=1#y", "https://t.me/+HASHhash", INVITE),
    ],
)
def test_canonical_forms_are_classified(spelling: str, url: str, kind: EntityKind) -> None:
    assert summary(canonicalize(spelling)) == (url, kind, False, False)
    assert [summary(m) for m in extract_entities(spelling)] == [(url, kind, False, False)]


# SECURITY E2: aliases of the same entity.
@pytest.mark.parametrize(
    ("spelling", "url", "kind"),
    [
        ("telegram.me/chan", "https://t.me/chan", CHANNEL),
        ("telegram.dog/chan", "https://t.me/chan", CHANNEL),
        ("https://www.telegram.dog/chan", "https://t.me/chan", CHANNEL),
        ("www.t.me/chan", "https://t.me/chan", CHANNEL),
        ("chan.t.me", "https://t.me/chan", CHANNEL),
        ("https://Chan.t.me/", "https://t.me/chan", CHANNEL),
        ("tg://resolve?domain=chan", "https://t.me/chan", CHANNEL),
        ("tg:resolve?domain=chan&post=5", "https://t.me/chan", CHANNEL),
        ("tg:join?invite=HASHhash", "https://t.me/+HASHhash", INVITE),
        ("tg://addstickers?set=Name", "https://t.me/addstickers/name", EntityKind.STICKER_SET),
        ("tg://addemoji?set=Name", "https://t.me/addemoji/name", EntityKind.EMOJI_SET),
        ("tg://privatepost?channel=123&post=4", "https://t.me/c/123", EntityKind.PRIVATE_CHAT),
    ],
)
def test_aliases_name_the_same_entity(spelling: str, url: str, kind: EntityKind) -> None:
    assert summary(canonicalize(spelling)) == (url, kind, False, False)
    assert [summary(m) for m in extract_entities(f"see {spelling}")] == [(url, kind, False, False)]


@pytest.mark.parametrize(
    "spelling",
    [
        "addstickers.t.me",
        "joinchat.t.me",
        "www.t.me",
        "a.t.me",
        "www.chan.t.me",
        "chan.telegram.me",
        "tg://msg?to=chan",
    ],
)
def test_reserved_subdomains_and_unknown_tg_actions_name_nothing(spelling: str) -> None:
    assert canonicalize(spelling) is None
    assert extract_entities(spelling) == []


# SECURITY E3: defanged spellings are read and flagged.
@pytest.mark.parametrize(
    "spelling",
    [
        "t[.]me/chan",
        "t(.)me/chan",
        "t{.}me/chan",
        "t . me/chan",
        "t .me/chan",
        "t[dot]me/chan",
        "t(dot)me/chan",
        "hxxps://t.me/chan",
        "hxxp://t.me/chan",
        "HXXPS://t.me/chan",
        "https[:]//t.me/chan",
        "hxxps[:]//t[.]me/chan",
        "telegram[.]me/chan",
        "www[.]t[.]me/chan",
        "chan[.]t[.]me",
    ],
)
def test_defanged_links_are_read_and_flagged(spelling: str) -> None:
    assert summary(canonicalize(spelling)) == ("https://t.me/chan", CHANNEL, True, False)
    [mention] = extract_entities(f"reported: {spelling} (spam)")
    assert summary(mention) == ("https://t.me/chan", CHANNEL, True, False)
    assert mention.seen_as == spelling


@pytest.mark.parametrize("spelling", ["https://t.me/chan", "http://telegram.me/chan", "@chan"])
def test_plain_links_are_not_flagged_defanged(spelling: str) -> None:
    mention = canonicalize(spelling)
    assert mention is not None and not mention.defanged and not mention.lookalike


# SECURITY E4: look-alike hosts are matched and flagged.
@pytest.mark.parametrize(
    "spelling",
    [
        "\u0442.m\u0435/chan",  # Cyrillic te and ie
        "\u03c4.me/chan",  # Greek tau
        "\u0422.ME/chan",  # Cyrillic capital te
        "\uff54\uff0e\uff4d\uff45/chan",  # fullwidth
        "t\u3002me/chan",  # ideographic full stop
        "t\uff61me/chan",  # halfwidth ideographic full stop
        "t\u200b.me/chan",
        "t.\u200dme/chan",
        "t\ufeff.me/chan",
        "t\u00ad.me/chan",
        "xn--r1a.me/chan",  # punycode of the Cyrillic te
        "https://t.xn--m-jtb/chan",  # punycode of "m" and a Cyrillic ie
        "\uff54\uff0e\uff4d\uff45\uff0f\uff43\uff48\uff41\uff4e",  # fullwidth throughout
        "t\u0435legr\u0430m.me/chan",  # Cyrillic ie and a in telegram
    ],
)
def test_look_alike_hosts_are_matched_and_flagged(spelling: str) -> None:
    assert summary(canonicalize(spelling)) == ("https://t.me/chan", CHANNEL, False, True)
    [mention] = extract_entities(f"join {spelling} today")
    assert summary(mention) == ("https://t.me/chan", CHANNEL, False, True)
    assert mention.seen_as == spelling


@pytest.mark.parametrize(
    ("spelling", "kind"),
    [
        ("t.me/ch\u200ban", CHANNEL),
        ("t.me/%E2%80%8Bchan", CHANNEL),  # an encoded zero-width space
        ("@\uff43\uff48\uff41\uff4e", ACCOUNT),  # fullwidth
        ("@ch\u00adan", ACCOUNT),  # soft hyphen
    ],
)
def test_invisible_or_fullwidth_letters_in_a_name_fold_onto_it_but_are_flagged(spelling: str, kind: EntityKind) -> None:
    assert summary(canonicalize(spelling)) == ("https://t.me/chan", kind, False, True)
    assert [summary(m) for m in extract_entities(f"by {spelling} today")] == [("https://t.me/chan", kind, False, True)]


@pytest.mark.parametrize(
    ("spelling", "url", "kind"),
    [
        ("t.me/\u0441han", "https://t.me/\u0441han", CHANNEL),  # Cyrillic es
        ("@\u0441han", "https://t.me/\u0441han", ACCOUNT),
        ("@\u0421HAN", "https://t.me/\u0441han", ACCOUNT),  # lower-cased
        ("@\u0455c\u0430mbot", "https://t.me/\u0455c\u0430mbot", BOT),  # the skeleton ends in "bot"
        ("t.me/%D1%81han", "https://t.me/\u0441han", CHANNEL),  # percent-encoded Cyrillic es
        ("\u0441han.t.me", "https://t.me/\u0441han", CHANNEL),
        ("tg://resolve?domain=\u0441han", "https://t.me/\u0441han", CHANNEL),
    ],
)
def test_mixed_script_names_keep_their_own_url(spelling: str, url: str, kind: EntityKind) -> None:
    assert summary(canonicalize(spelling)) == (url, kind, False, True)
    assert [summary(m) for m in extract_entities(f"by {spelling} today")] == [(url, kind, False, True)]


def test_a_mixed_script_name_is_never_merged_with_the_real_one() -> None:
    found = dedupe(extract_entities("real t.me/chan, fake t.me/\u0441han and @\u0441h\u0430n"))
    assert [(m.url, m.lookalike) for m in found] == [
        ("https://t.me/chan", False),
        ("https://t.me/\u0441han", True),
        ("https://t.me/\u0441h\u0430n", True),
    ]


def test_a_look_alike_url_spells_the_same_entity_again() -> None:
    mention = canonicalize("@\u0441han")
    assert mention is not None
    assert summary(canonicalize(mention.url)) == ("https://t.me/\u0441han", CHANNEL, False, True)


@pytest.mark.parametrize(
    "spelling",
    ["t.me/\u9891\u9053\u9891\u9053", "@\u65e5\u672c\u8a9e\u3067\u3059", "t.me/chan\u0436", "@\u00e9cole_x"],
)
def test_non_ascii_names_that_imitate_no_valid_name_are_no_entity(spelling: str) -> None:
    assert canonicalize(spelling) is None
    assert extract_entities(spelling) == []


# SECURITY E5: one strict username grammar; trailing punctuation trimmed.
@pytest.mark.parametrize(
    ("spelling", "url"),
    [
        ("@abcd", "https://t.me/abcd"),  # collectible names may have 4 characters
        ("@a_b_c_d", "https://t.me/a_b_c_d"),
        ("@" + "a" * 32, "https://t.me/" + "a" * 32),
        ("t.me/chan2024", "https://t.me/chan2024"),
    ],
)
def test_names_within_the_grammar_are_accepted(spelling: str, url: str) -> None:
    assert urls(spelling) == [url]


@pytest.mark.parametrize(
    "spelling",
    [
        "@abc",
        "t.me/abc",
        "@" + "a" * 33,
        "t.me/" + "a" * 33,
        "@1chan",
        "t.me/1chan",
        "@_chan",
        "@chan_",
        "t.me/chan_",
        "tg://resolve?domain=chan_",
        "@ch__an",
        "t.me/ch__an",
        "t.me/chan-name",
        "t.me/chan.name",
    ],
)
def test_names_outside_the_grammar_are_rejected(spelling: str) -> None:
    assert canonicalize(spelling) is None
    assert extract_entities(f"see {spelling} now") == []


@pytest.mark.parametrize(
    ("text", "seen_as"),
    [
        ("write to @chan.", "@chan"),
        ("(@chan)", "@chan"),
        ("@chan's channel", "@chan"),
        ("@chan, @chan; @chan!", "@chan"),
        ("visit t.me/chan, now", "t.me/chan"),
        ("visit t.me/chan.", "t.me/chan"),
        ("(see t.me/chan)", "t.me/chan"),
        ("[t.me/chan]", "t.me/chan"),
        ('"t.me/chan"', "t.me/chan"),
        ("'t.me/chan'", "t.me/chan"),
        ("<https://t.me/chan>", "https://t.me/chan"),
        ("**t.me/chan**", "t.me/chan"),
        ("t.me/chan!?", "t.me/chan"),
        ("t.me/chan\u2026", "t.me/chan"),
        ("\u00abt.me/chan\u00bb", "t.me/chan"),
        ("t.me/chan\u3002", "t.me/chan"),
    ],
)
def test_trailing_punctuation_is_trimmed(text: str, seen_as: str) -> None:
    found = extract_entities(text)
    assert [(m.url, m.seen_as) for m in found] == [("https://t.me/chan", seen_as)]


@pytest.mark.parametrize(
    "path",
    [
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
    ],
)
def test_reserved_paths_are_never_usernames(path: str) -> None:
    assert canonicalize(f"t.me/{path}") is None
    assert canonicalize(f"https://t.me/{path}/") is None
    assert canonicalize(f"@{path}") is None
    assert canonicalize(f"tg://resolve?domain={path}") is None
    assert canonicalize(f"{path}.t.me") is None


@pytest.mark.parametrize(
    "spelling",
    [
        "t.me/share/url?url=https://example.org",
        "t.me/proxy?server=1.2.3.4&port=443&secret=abc",
        "t.me/socks?server=1.2.3.4",
        "t.me/iv?url=https://example.org&rhash=abc",
        "t.me/addlist/AbCdEf12",
        "t.me/joinchat/",
        "t.me/c/notanumber/1",
        "t.me/addstickers/",
        "t.me/+abc",
        "t.me/",
        "t.me",
    ],
)
def test_other_telegram_links_name_no_entity(spelling: str) -> None:
    assert canonicalize(spelling) is None


# E-mail addresses and handles of other services are not Telegram accounts.
@pytest.mark.parametrize(
    "text",
    [
        "a@b.com",
        "write to support@telegram.org",
        "first.last@channel.example",
        "reach me @gmail.com",
        "follow @someone@mastodon.social",
        "https://medium.com/@author_name",
        "user+tag@example.org",
        "@@@@",
        "@ alone",
    ],
)
def test_addresses_and_foreign_handles_are_no_account(text: str) -> None:
    assert extract_entities(text) == []


# SECURITY E6: link targets and redirect wrappers.
def test_href_and_link_text_are_both_recorded() -> None:
    found = extract_entities("t.me/decoy") + extract_from_hrefs(["https://t.me/real"])
    assert [(m.url, m.source) for m in dedupe(found)] == [
        ("https://t.me/decoy", "text"),
        ("https://t.me/real", "href"),
    ]


WRAPPED = [
    "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Ft.me%2Fchan&data=05%7C01%7C&reserved=0",
    "https://safelinks.protection.outlook.com/?url=https%3A%2F%2Ft.me%2Fchan",
    "https://www.google.com/url?q=https://t.me/chan&sa=D&ust=1",
    "https://www.google.com/url?sa=t&url=https%3A%2F%2Ft.me%2Fchan",
    "https://l.facebook.com/l.php?u=https%3A%2F%2Ft.me%2Fchan&h=AT0",
    "https://lm.facebook.com/l.php?u=https%3A%2F%2Ft.me%2Fchan",
    # a safelink around a Google redirect
    "https://nam02.safelinks.protection.outlook.com/"
    "?url=https%3A%2F%2Fwww.google.com%2Furl%3Fq%3Dhttps%253A%252F%252Ft.me%252Fchan",
]


@pytest.mark.parametrize("href", [*WRAPPED, "  https://t.me/chan  "])
def test_redirect_wrappers_are_unwrapped_offline(href: str) -> None:
    [mention] = extract_from_hrefs([href])
    assert summary(mention) == ("https://t.me/chan", CHANNEL, False, False)
    assert mention.source == "href"
    assert mention.seen_as == "https://t.me/chan"


@pytest.mark.parametrize("wrapped", [*WRAPPED, *(url.removeprefix("https://") for url in WRAPPED)])
def test_redirect_wrappers_pasted_as_text_are_unwrapped_offline(wrapped: str) -> None:
    """Reporters paste what their mail client or Facebook shows; the target is percent-encoded."""
    [mention] = extract_entities(f"Please block this channel: {wrapped}, it posts videos.")
    assert summary(mention) == ("https://t.me/chan", CHANNEL, False, False)
    assert (mention.source, mention.seen_as) == ("text", "https://t.me/chan")


@pytest.mark.parametrize(
    "text",
    [
        "https://notl.facebook.com/l.php?u=https%3A%2F%2Ft.me%2Fchan",
        "https://l.facebook.com.evil.example/l.php?u=https%3A%2F%2Ft.me%2Fchan",
        "https://www.google.com/search?q=https%3A%2F%2Ft.me%2Fchan",
        "https://l.facebook.com/l.php?u=https%3A%2F%2Fevil.example%2Fchan",
    ],
)
def test_only_known_wrappers_are_unwrapped_from_text(text: str) -> None:
    assert extract_entities(text) == []


@pytest.mark.parametrize(
    "text",
    ["google.com/url?t.me/chan", "https://notl.facebook.com/l.php?u=x t.me/chan", "www.google.com/url? (t.me/chan)"],
)
def test_a_link_after_what_only_looks_like_a_wrapper_is_still_found(text: str) -> None:
    assert urls(text) == ["https://t.me/chan"]


@pytest.mark.parametrize(
    "href",
    [
        "https://bit.ly/3abcdEF",
        "https://evil.example/?url=https://t.me/chan",
        "https://www.google.com/search?q=https://t.me/chan",
        "mailto:abuse@t.me",
        "/relative/chan",
        "",
    ],
)
def test_shorteners_and_unknown_redirectors_are_not_followed(href: str) -> None:
    assert extract_from_hrefs([href]) == []


def test_hrefs_keep_their_order_and_limit() -> None:
    hrefs = ["https://t.me/first", "tg://join?invite=HASHhash", "https://t.me/first", "https://t.me/third"]
    assert [m.url for m in extract_from_hrefs(hrefs)] == [
        "https://t.me/first",
        "https://t.me/+HASHhash",
        "https://t.me/third",
    ]
    assert [m.url for m in extract_from_hrefs(hrefs, limit=1)] == ["https://t.me/first"]


# SECURITY E7: one URL parser decides the host; no substring tests.
@pytest.mark.parametrize(
    "spelling",
    [
        "t.me/%63han",
        "t.me/%63%68%61%6E",
        "t.me//chan",
        "t.me/other/../chan",
        "t.me/./chan",
        "t.me:443/chan",
        "http://t.me:80/chan",
        "user@t.me/chan",
        "https://user:pass@t.me/chan",
        "https://t.me./chan",
        "//t.me/chan",
        "https://T.ME/CHAN",
    ],
)
def test_odd_but_valid_urls_are_parsed(spelling: str) -> None:
    assert summary(canonicalize(spelling)) == ("https://t.me/chan", CHANNEL, False, False)
    assert urls(f"x {spelling} y") == ["https://t.me/chan"]


@pytest.mark.parametrize("spelling", [" https://t.me/chan", "\x00 https://t.me/chan", "\t\nhttps://t.me/chan\r\n"])
def test_leading_blanks_and_controls_do_not_hide_the_host(spelling: str) -> None:
    assert summary(canonicalize(spelling)) == ("https://t.me/chan", CHANNEL, False, False)


@pytest.mark.parametrize(
    "spelling",
    [
        "evil-t.me/chan",
        "nott.me/chan",
        "t.me.evil.com/chan",
        "https://t.me.evil.com/chan",
        "https://evil.com/t.me/chan",
        "https://evil.com/path@t.me/chan",
        "https://t.me@evil.com/chan",
        "https://evil.com\\@t.me/chan",
        "https://t.me:8080/chan",
        "https://t.me:99999/chan",
        "ftp.t.me.example/chan",
        "https://t.dog/chan",
        "https://telegram.org/chan",
        "chan",
        "",
    ],
)
def test_hosts_that_only_contain_an_alias_are_no_entity(spelling: str) -> None:
    assert canonicalize(spelling) is None
    assert extract_entities(f"x {spelling} y") == []


def test_a_path_that_climbs_out_names_the_last_entity() -> None:
    assert urls("t.me/chan/../other") == ["https://t.me/other"]


# SECURITY E8 and M6: extraction runs on decoded text; decoding joins what transport split.
def test_a_link_split_by_a_quoted_printable_soft_break_is_found_after_decoding() -> None:
    decoded = quopri.decodestring(b"Spam from t.m=\r\ne/chan today").decode()
    assert urls(decoded) == ["https://t.me/chan"]


def test_markdown_links_yield_text_and_target() -> None:
    assert urls("[t.me/decoy](https://t.me/real)") == ["https://t.me/decoy", "https://t.me/real"]


def test_several_entities_keep_their_order() -> None:
    text = "@first_one, t.me/second; tg://join?invite=ThirdHash and fourth.t.me"
    assert urls(text) == [
        "https://t.me/first_one",
        "https://t.me/second",
        "https://t.me/+ThirdHash",
        "https://t.me/fourth",
    ]


# SECURITY E9: bounded work, capped results, still the first N.
def test_a_hundred_thousand_links_return_the_first_thousand() -> None:
    text = " ".join(f"t.me/chan{i:06d}" for i in range(100_000))
    found = extract_entities(text)
    assert len(found) == 1000
    assert found[0].url == "https://t.me/chan000000"
    assert found[-1].url == "https://t.me/chan000999"


def test_the_limit_argument_caps_the_result() -> None:
    text = " ".join(f"@chan{i:04d}" for i in range(50))
    assert urls(text, limit=3) == ["https://t.me/chan0000", "https://t.me/chan0001", "https://t.me/chan0002"]
    assert urls(text, limit=0) == []


def test_exact_repeats_do_not_use_up_the_limit() -> None:
    text = "t.me/chan " * 5000 + "t.me/other"
    assert urls(text) == ["https://t.me/chan", "https://t.me/other"]


def test_a_five_megabyte_word_is_read_in_bounded_time() -> None:
    word = "a" * 5_000_000
    assert extract_entities(word) == []
    assert urls("t.me/chan " + word) == ["https://t.me/chan"]
    assert extract_entities("t.me/" + word) == []
    assert extract_entities("@" + word) == []
    assert extract_entities("\u0436" * 5_000_000) == []


def test_text_beyond_the_cap_is_not_read() -> None:
    assert extract_entities("a" * MAX_TEXT_CHARS + " t.me/chan") == []
    assert urls("a" * (MAX_TEXT_CHARS - 20) + " t.me/chan") == ["https://t.me/chan"]


def test_bracket_runs_are_read_in_bounded_time() -> None:
    assert urls("(" * 1_000_000 + "t.me/chan" + ")" * 1_000_000) == ["https://t.me/chan"]
    assert urls("[" * 500_000 + "@chan" + "]" * 500_000) == ["https://t.me/chan"]


def test_at_sign_runs_are_read_in_bounded_time() -> None:
    assert extract_entities("@" * 5_000_000) == []
    assert urls("@" * 1_000_000 + " @chan") == ["https://t.me/chan"]
    assert urls("@chan " + "@@" * 1_000_000) == ["https://t.me/chan"]


def test_floods_of_near_misses_are_read_in_bounded_time() -> None:
    assert extract_entities("@abc_ " * 300_000) == []
    assert extract_entities("t.me " * 400_000) == []
    assert extract_entities("t.me/" * 400_000) == []
    assert extract_entities("xn--" * 500_000) == []
    assert extract_entities("a@b.c " * 300_000) == []
    assert extract_from_hrefs(f"https://example.com/{i}" for i in range(100_000)) == []
    assert extract_entities("l.facebook.com/l.php?u=x " * 200_000) == []


def test_a_hundred_thousand_hrefs_return_the_first_thousand() -> None:
    found = extract_from_hrefs(f"https://t.me/chan{i:06d}" for i in range(100_000))
    assert len(found) == 1000
    assert (found[0].url, found[-1].url) == ("https://t.me/chan000000", "https://t.me/chan000999")


# Small contracts of the API.
def test_seen_as_is_truncated() -> None:
    mention = canonicalize("https://t.me/chan?q=" + "x" * 1000)
    assert mention is not None
    assert mention.url == "https://t.me/chan"
    assert mention.seen_as == ("https://t.me/chan?q=" + "x" * 1000)[:300]


def test_source_is_what_the_caller_passed() -> None:
    assert [m.source for m in extract_entities("Re: t.me/chan", source="subject")] == ["subject"]
    mention = canonicalize("t.me/chan")
    assert mention is not None and mention.source == "lookup"


def test_dedupe_keeps_the_first_mention_of_each_url_in_order() -> None:
    found = extract_entities("@chan then t[.]me/other then t.me/chan then t.me/other")
    assert [(m.url, m.kind, m.seen_as) for m in dedupe(found)] == [
        ("https://t.me/chan", ACCOUNT, "@chan"),
        ("https://t.me/other", CHANNEL, "t[.]me/other"),
    ]


def test_kind_values_are_the_stored_strings() -> None:
    assert [k.value for k in EntityKind] == [
        "channel_or_group",
        "bot",
        "user",
        "sticker_set",
        "emoji_set",
        "invite",
        "private_chat",
        "account",
    ]
