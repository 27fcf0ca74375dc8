"""Bar charts as SVG geometry, drawn by templates/transparency/chart.html: no JavaScript, no library.

Numbers reach the template as preformatted strings: the template language would localise floats
("12,5" in German), which SVG does not read. Colours are CSS classes (series-0 ... series-7,
series-other) of the page's own stylesheet, so the strict Content-Security-Policy holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 28
# Beyond this many series the smallest are drawn as one "other" (the table keeps them apart).
MAX_SERIES = 7
MAX_X_LABELS = 12


@dataclass(frozen=True, slots=True)
class Bar:
    x: str
    y: str
    width: str
    height: str
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Label:
    x: str
    y: str
    text: str


@dataclass(frozen=True, slots=True)
class Tick:
    y: str
    text: str


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
    bars: list[Bar]
    x_labels: list[Label]
    ticks: list[Tick]
    legend: list[LegendItem]
    plot_left: int
    plot_right: int
    empty: bool


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `value` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return int(math.ceil(step * power))
    return 10 * power


def stacked_bars(
    title: str, x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]], *, label_of: dict[str, str]
) -> Chart:
    """One stacked bar per x label; `series` are (value, counts per x) pairs, biggest first.
    `label_of` names each value for people (values missing from it are shown as they are)."""
    shown = list(series[:MAX_SERIES])
    rest = series[MAX_SERIES:]
    columns = len(x_labels)
    if rest:
        other = [sum(counts[i] for _value, counts in rest) for i in range(columns)]
        shown.append(("__other__", other))
    css = {value: ("series-other" if value == "__other__" else f"series-{n}") for n, (value, _c) in enumerate(shown)}
    names = {value: label_of.get(value, value) for value, _c in shown} | {"__other__": "other"}
    stacks = [sum(counts[i] for _value, counts in shown) for i in range(columns)]
    top = nice_ceiling(max(stacks, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(columns, 1)
    bar_w = max(slot * 0.8, 1.0)
    bars: list[Bar] = []
    for i, x_label in enumerate(x_labels):
        base = 0
        for value, counts in shown:
            count = counts[i]
            if not count:
                continue
            y_top = TOP + plot_h * (1 - (base + count) / top)
            height = plot_h * count / top
            bars.append(
                Bar(
                    x=_fmt(LEFT + slot * i + (slot - bar_w) / 2),
                    y=_fmt(y_top),
                    width=_fmt(bar_w),
                    height=_fmt(height),
                    css=css[value],
                    title=f"{x_label}: {names[value]} {count}",
                )
            )
            base += count
    every = max(1, math.ceil(columns / MAX_X_LABELS))
    labels = [
        Label(x=_fmt(LEFT + slot * i + slot / 2), y=_fmt(HEIGHT - 8), text=text)
        for i, text in enumerate(x_labels)
        if i % every == 0
    ]
    ticks = [Tick(y=_fmt(TOP + plot_h * (1 - fraction)), text=f"{top * fraction:g}") for fraction in (0, 0.5, 1)]
    legend = [LegendItem(css=css[value], label=names[value], total=sum(counts)) for value, counts in shown]
    return Chart(
        title=title,
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        x_labels=labels,
        ticks=ticks,
        legend=legend,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        empty=not any(stacks),
    )
