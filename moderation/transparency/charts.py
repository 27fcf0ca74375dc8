"""Bar charts as server-drawn SVG, and the tables that carry the same numbers: no JavaScript, no library.

The marks (grid, bars, labels) and the table bodies are built here as strings, and the templates
(transparency/chart.html and the pages) place them: a year of daily bars and rows is some ten
thousand elements, and as template nodes they made a year's dashboard take 630 ms, through
format_html 340 ms, as f-strings of numbers with the few texts escaped 190 ms (measured on the
same busy machine, 20,000 seeded reports). Numbers are written with Python's own formatting,
never the template language's, which would localise them ("12,5" in German) where SVG wants
"12.5". Colours are CSS classes (series-0 ... series-7, series-other) of the page's own
stylesheet, so the strict Content-Security-Policy holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 28
# Beyond this many series the smallest are drawn as one "other" (the table keeps them apart).
MAX_SERIES = 7
MAX_X_LABELS = 12
OTHER = "__other__"


@dataclass(frozen=True, slots=True)
class LegendItem:
    css: str
    label: str
    total: int


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    width: int
    height: int
    # Everything inside the <svg> element, escaped.
    marks: SafeString
    legend: list[LegendItem]
    empty: bool


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `value` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return int(math.ceil(step * power))
    return 10 * power


def _number(value: float) -> str:
    return f"{value:.1f}"


def stacked_bars(
    title: str, x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]], *, label_of: dict[str, str]
) -> Chart:
    """One stacked bar per x label; `series` are (value, counts per x) pairs, biggest first.
    `label_of` names each value for people (values missing from it are shown as they are)."""
    shown = list(series[:MAX_SERIES])
    rest = series[MAX_SERIES:]
    columns = len(x_labels)
    if rest:
        shown.append((OTHER, [sum(counts[i] for _value, counts in rest) for i in range(columns)]))
    css = {value: "series-other" if value == OTHER else f"series-{n}" for n, (value, _c) in enumerate(shown)}
    # Not "other": that is a policy category's name too.
    names = {value: label_of.get(value, value) for value, _c in shown} | {OTHER: str(_("all the rest"))}
    stacks = [sum(counts[i] for _value, counts in shown) for i in range(columns)]
    top = nice_ceiling(max(stacks, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(columns, 1)
    bar_w = max(slot * 0.8, 1.0)

    # Numbers are ints or formatted here; the only text (titles and labels) is escaped.
    marks: list[str] = []
    for fraction in (0, 0.5, 1):
        y = _number(TOP + plot_h * (1 - fraction))
        marks.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/><text class="tick" '
            f'x="{LEFT - 6}" y="{y}" text-anchor="end" dominant-baseline="middle">{top * fraction:g}</text>'
        )
    for i, x_label in enumerate(x_labels):
        base = 0
        x = _number(LEFT + slot * i + (slot - bar_w) / 2)
        for value, counts in shown:
            count = int(counts[i])
            if count:
                y = _number(TOP + plot_h * (1 - (base + count) / top))
                tip = escape(f"{x_label}: {names[value]} {count}")
                marks.append(
                    f'<rect class="{css[value]}" x="{x}" y="{y}" width="{_number(bar_w)}" '
                    f'height="{_number(plot_h * count / top)}"><title>{tip}</title></rect>'
                )
                base += count
    every = max(1, math.ceil(columns / MAX_X_LABELS))
    for i, text in enumerate(x_labels):
        if i % every == 0:
            x = _number(LEFT + slot * i + slot / 2)
            marks.append(f'<text class="tick" x="{x}" y="{HEIGHT - 8}" text-anchor="middle">{escape(text)}</text>')
    return Chart(
        title=title,
        width=WIDTH,
        height=HEIGHT,
        marks=mark_safe("".join(marks)),  # noqa: S308 (built above from numbers and escaped text)
        legend=[LegendItem(css=css[value], label=names[value], total=sum(counts)) for value, counts in shown],
        empty=not any(stacks),
    )


def table_body(rows: Iterable[tuple[str, Sequence[int]]]) -> SafeString:
    """`<tr>`s of a row header (escaped unless already safe) and right-aligned counts: the table under a chart."""
    return mark_safe(  # noqa: S308 (the header is escaped, the rest are ints)
        "".join(
            f'<tr><th scope="row">{conditional_escape(header)}</th>'
            + "".join(f'<td class="num">{int(value)}</td>' for value in values)
            + "</tr>"
            for header, values in rows
        )
    )
