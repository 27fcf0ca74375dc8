"""The SVG bar charts and their tables: geometry, the "other" series, escaping, no localised numbers."""

from __future__ import annotations

import re

from django.utils.safestring import mark_safe
from django.utils.translation import override

from moderation.transparency.charts import MAX_SERIES, nice_ceiling, stacked_bars, table_body


def test_nice_ceiling() -> None:
    assert [nice_ceiling(n) for n in (0, 1, 3, 7, 11, 24, 26, 99, 101, 4001)] == [
        1,
        1,
        5,
        10,
        20,
        25,
        50,
        100,
        200,
        5000,
    ]


def test_bars_stack_and_scale_to_the_tallest_day() -> None:
    chart = stacked_bars("Reports per day", ["a", "b"], [("x", [3, 1]), ("y", [1, 0])], label_of={"x": "Ex"})
    assert chart.title == "Reports per day"
    rects = re.findall(
        r'<rect class="(series-\d)" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)">', chart.marks
    )
    # The tallest stack (4) reaches the top of the scale, which is 5: 4/5 of 222 px of plot.
    heights = [float(h) for _css, _y, h in rects]
    assert [css for css, _y, _h in rects] == ["series-0", "series-1", "series-0"]
    assert heights == [133.2, 44.4, 44.4]
    assert "<title>a: Ex 3</title>" in chart.marks and "<title>a: y 1</title>" in chart.marks
    assert [(item.label, item.total) for item in chart.legend] == [("Ex", 4), ("y", 1)]
    assert not chart.empty


def test_series_beyond_the_limit_are_drawn_as_other() -> None:
    series = [(f"s{n}", [10 - n]) for n in range(MAX_SERIES + 2)]
    chart = stacked_bars("t", ["d"], series, label_of={})
    assert [item.label for item in chart.legend][-1] == "all the rest"
    assert chart.legend[-1].total == (10 - MAX_SERIES) + (10 - MAX_SERIES - 1)
    assert len(chart.legend) == MAX_SERIES + 1


def test_labels_are_escaped_and_numbers_never_localised() -> None:
    with override("de"):
        chart = stacked_bars("t", ["<b>"], [("<script>", [3])], label_of={})
    assert "<script>" not in chart.marks and "&lt;script&gt;" in chart.marks
    assert "&lt;b&gt;" in chart.marks
    assert re.search(r'height="\d+\.\d"', chart.marks) and not re.search(r'="\d+,\d"', chart.marks)


def test_an_empty_period_says_so() -> None:
    assert stacked_bars("t", ["a", "b"], [], label_of={}).empty


def test_table_body_escapes_headers_unless_safe() -> None:
    body = table_body([("<i>", [1, 2]), (mark_safe('<a href="/x">x</a>'), [3])])
    assert body == (
        '<tr><th scope="row">&lt;i&gt;</th><td class="num">1</td><td class="num">2</td></tr>'
        '<tr><th scope="row"><a href="/x">x</a></th><td class="num">3</td></tr>'
    )
