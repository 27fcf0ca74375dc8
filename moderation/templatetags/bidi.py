"""Showing reporters' text without letting it reorder itself (SECURITY H4)."""

from __future__ import annotations

import re

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

register = template.Library()

# Embeddings, overrides and isolates: each reorders the text after it ("exe.gpj" shown as
# "jpg.exe"). Left-to-right and right-to-left marks stay: they only nudge neutral characters, and
# Arabic and Hebrew text uses them.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_NAMES = {
    "\u202a": _("left-to-right embedding"),
    "\u202b": _("right-to-left embedding"),
    "\u202c": _("pop directional formatting"),
    "\u202d": _("left-to-right override"),
    "\u202e": _("right-to-left override"),
    "\u2066": _("left-to-right isolate"),
    "\u2067": _("right-to-left isolate"),
    "\u2068": _("first strong isolate"),
    "\u2069": _("pop directional isolate"),
}


@register.filter
def reveal_bidi(text: str) -> SafeString:
    """`text` escaped, with each bidi embedding, override or isolate shown as a visible marker
    (for example [U+202E]) in place of the invisible character that would reorder what follows."""
    escaped = str(conditional_escape(text))
    if not _BIDI_CONTROLS.search(escaped):
        return mark_safe(escaped)  # escaped just above
    return mark_safe(  # escaped above; the markers are format_html
        _BIDI_CONTROLS.sub(
            lambda m: format_html(
                '<span class="bidi-control" title="{}">[U+{}]</span>', _NAMES[m.group()], f"{ord(m.group()):04X}"
            ),
            escaped,
        )
    )
