"""The server-drawn SVG charts (pure): labels escaped, whole-number axes for counts, percents."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from web.desk.charts import bar_chart, line_chart


def _texts(svg: str) -> list[str]:
    root = ElementTree.fromstring(svg)
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_bar_chart_is_valid_svg_with_whole_ticks_and_escaped_labels() -> None:
    svg = str(bar_chart([("<b>拖延</b>", 2), ("其他", 1)], title="按类别"))
    texts = _texts(svg)  # parses: the markup is well-formed
    assert "<b>拖延</b>" in texts and "<b>" not in svg
    ticks = [t for t in texts if re.fullmatch(r"[0-9.]+", t)]
    assert all(float(t).is_integer() for t in ticks), ticks
    assert 'aria-label="按类别"' in svg and "<title>按类别</title>" in svg


def test_percent_bars_and_an_empty_chart() -> None:
    svg = str(bar_chart([("受理", 0.8)], title="按时率", maximum=1.0, percent=True))
    assert "80%" in _texts(svg) and "100%" in _texts(svg)
    assert "—" in _texts(str(bar_chart([], title="空")))


def test_line_chart_has_a_point_per_month_and_a_legend() -> None:
    months = [f"2026-{m:02d}" for m in range(1, 13)]
    svg = str(line_chart(months, [("新收", list(range(12))), ("办结", [0] * 12)], title="趋势"))
    root = ElementTree.fromstring(svg)
    assert len(list(root.iter("{http://www.w3.org/2000/svg}circle"))) == 24
    assert {"新收", "办结"} <= set(_texts(svg))
