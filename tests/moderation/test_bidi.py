"""Reporters' text in the workspace: bidi controls are shown, never obeyed (SECURITY H4)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from moderation.templatetags.bidi import reveal_bidi
from reports.models import Case


def test_reveal_bidi_escapes_and_marks_each_control():
    shown = reveal_bidi("<b>pay</b> \u202egpj.exe\u202c and \u2067x\u2069")
    assert "\u202e" not in shown and "\u2067" not in shown
    assert shown.startswith("&lt;b&gt;pay&lt;/b&gt; ")
    assert '<span class="bidi-control" title="right-to-left override">[U+202E]</span>gpj.exe' in shown
    assert shown.count('class="bidi-control"') == 4


def test_reveal_bidi_keeps_the_marks_right_to_left_text_needs():
    arabic = "قناة\u200f t.me/x \u200eok"
    assert reveal_bidi(arabic) == arabic


def test_reveal_bidi_escapes_text_without_controls():
    assert reveal_bidi('"><script>') == "&quot;&gt;&lt;script&gt;"


@pytest.mark.django_db
def test_the_case_page_shows_a_right_to_left_override_in_a_body(
    as_moderator: Client, make_case: Callable[..., Case]
) -> None:
    case = make_case("Block t.me/override_channel, file: \u202egpj.exe", message_id="<rlo@example.org>")
    content = as_moderator.get(f"/cases/{case.reference}/").content.decode()
    assert "\u202e" not in content
    assert 'file: <span class="bidi-control" title="right-to-left override">[U+202E]</span>gpj.exe' in content
