"""Tests for ovmlv.plots: figure contents and the self-contained html report."""

from __future__ import annotations

import re

import numpy as np
import pytest
from plotly.offline import get_plotlyjs

from ovmlv.plots import heatmap_figure, html_report, scores_figure, timeline_figure
from ovmlv.result import Result

EVIL = "<script>alert('x')</script>"
LABELS = ["dog", "1", EVIL, "跳舞"]
TIMES = [[0.0, 2.0], [2.0, 4.0], [4.0, 6.0]]
TIMELINE = [
    # dog  "1"   EVIL  跳舞
    [0.90, 0.20, 0.05, 0.40],
    [0.30, 0.10, 0.60, 0.70],
    [0.80, 0.30, 0.10, 0.20],
]
# Video-level scores (max over windows): dog 0.9, "1" 0.3, EVIL 0.6, 跳舞 0.7.
SORTED_LABELS = ["dog", "跳舞", EVIL, "1"]
SORTED_SCORES = [0.9, 0.7, 0.6, 0.3]


@pytest.fixture
def result() -> Result:
    return Result(
        labels=list(LABELS),
        times=np.array(TIMES),
        timeline=np.array(TIMELINE),
        attributes={EVIL: ["<b>bold</b> & co"], "dog": ["four legs", "fur"]},
        video="<img src=x onerror=alert(1)>.mp4",
        model="tiny-clip",
    )


def test_timeline_traces_are_the_labels(result: Result) -> None:
    figure = timeline_figure(result, threshold=0.65)
    assert [trace.name for trace in figure.data] == LABELS
    for column, trace in enumerate(figure.data):
        np.testing.assert_allclose(np.asarray(trace.x, dtype=float), [1.0, 3.0, 5.0])
        np.testing.assert_allclose(np.asarray(trace.y, dtype=float), np.array(TIMELINE)[:, column], atol=1e-7)
        # The template refers to the trace name, never embeds the label itself.
        assert "%{fullData.name}" in trace.hovertemplate and EVIL not in trace.hovertemplate
        np.testing.assert_array_equal(np.asarray(trace.customdata, dtype=float), TIMES)
    assert list(figure.layout.yaxis.range) == [0, 1]


def test_timeline_threshold_is_a_dashed_shape(result: Result) -> None:
    figure = timeline_figure(result, threshold=0.65)
    lines = [shape for shape in figure.layout.shapes if shape.type == "line"]
    assert len(lines) == 1
    line = lines[0]
    assert line.y0 == line.y1 == 0.65 and line.line.dash == "dash"
    assert (line.xref, line.x0, line.x1) == ("x domain", 0, 1)  # spans the whole plot
    assert len(figure.data) == len(LABELS)  # no extra trace for the threshold


def test_heatmap_is_the_transposed_timeline(result: Result) -> None:
    figure = heatmap_figure(result)
    assert len(figure.data) == 1
    heatmap = figure.data[0]
    np.testing.assert_allclose(np.asarray(heatmap.z, dtype=float), np.array(TIMELINE).T, atol=1e-7)
    assert list(heatmap.y) == LABELS
    np.testing.assert_allclose(np.asarray(heatmap.x, dtype=float), [1.0, 3.0, 5.0])
    assert (heatmap.zmin, heatmap.zmax) == (0, 1)
    assert figure.layout.yaxis.type == "category"  # the label "1" stays a category
    assert figure.layout.yaxis.autorange == "reversed"  # first label on top


def test_scores_sorted_and_highlighted(result: Result) -> None:
    figure = scores_figure(result, threshold=0.6)
    assert len(figure.data) == 1
    bars = figure.data[0]
    assert bars.orientation == "h"
    assert list(bars.y) == SORTED_LABELS
    np.testing.assert_allclose(np.asarray(bars.x, dtype=float), SORTED_SCORES, atol=1e-7)
    colours = list(bars.marker.color)
    # 0.9, 0.7 and 0.6 (equal to the threshold) are above; 0.3 is not.
    assert colours[0] == colours[1] == colours[2] != colours[3]
    # Bars are listed best first: the category axis must be reversed to put the best on top.
    assert figure.layout.yaxis.autorange == "reversed"
    assert figure.layout.yaxis.type == "category"
    assert [shape.x0 for shape in figure.layout.shapes] == [0.6]


def test_scores_highlight_follows_threshold(result: Result) -> None:
    low = list(scores_figure(result, threshold=0.0).data[0].marker.color)
    high = list(scores_figure(result, threshold=0.95).data[0].marker.color)
    assert len(set(low)) == 1 and len(set(high)) == 1 and low[0] != high[0]


def test_html_report_is_self_contained(result: Result) -> None:
    page = html_report(result, threshold=0.5)
    assert page.startswith("<!DOCTYPE html>")
    assert get_plotlyjs()[:2000] in page  # plotly.js is inlined
    assert page.count(get_plotlyjs()[:2000]) == 1  # once, not once per figure
    assert re.search(r"<script[^>]*\bsrc\s*=", page) is None  # nothing loaded from elsewhere
    assert page.count('class="plotly-graph-div"') == 3


def test_html_report_escapes_user_text(result: Result) -> None:
    page = html_report(result, threshold=0.5)
    assert EVIL not in page
    assert "<img src=x" not in page
    assert "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page  # the label, escaped, in the tables
    assert "<title>ovmlv: &lt;img src=x onerror=alert(1)&gt;.mp4</title>" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page
    assert "跳舞" in page


def test_html_report_tables(result: Result) -> None:
    page = html_report(result, threshold=0.5)
    segments_section = page[page.index("<h2>Segments") : page.index("<h2>Labels")]
    # Segments at 0.5: dog [0, 2] and [4, 6]; EVIL [2, 4]; 跳舞 [2, 4].
    segment_rows = re.findall(r"<tr><td>([^<]*)</td><td>([\d.]+)</td><td>([\d.]+)</td>", segments_section)
    assert segment_rows == [
        ("dog", "0.00", "2.00"),
        ("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;", "2.00", "4.00"),
        ("跳舞", "2.00", "4.00"),
        ("dog", "4.00", "6.00"),
    ]
    labels_section = page[page.index("<h2>Labels") :]
    label_rows = re.findall(
        r"<tr( class=\"above\")?><td>([^<]*)</td><td>([\d.]+)</td><td>([\d.]+)</td>", labels_section
    )
    assert label_rows == [  # best first; max and mean over windows; above-threshold rows marked
        (' class="above"', "dog", "0.900", "0.667"),
        (' class="above"', "跳舞", "0.700", "0.433"),
        (' class="above"', "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;", "0.600", "0.250"),
        ("", "1", "0.300", "0.200"),
    ]
    assert "<li>four legs</li><li>fur</li>" in page
    empty = html_report(result, threshold=0.95)
    assert "No label reaches the threshold 0.95" in empty
