"""Plotly figures of a :class:`~ovmlv.result.Result`, shared by the CLI's html output and the app.

Labels are user text: they are never put inside a hover template (where ``%{...}`` would be
interpreted) and are HTML-escaped wherever this module writes HTML itself. Category axes are
typed explicitly, so that labels such as "1" or "2024" are not read as numbers.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from ovmlv.result import Result

__all__ = ["heatmap_figure", "html_report", "scores_figure", "timeline_figure"]

_ABOVE_COLOUR = "#d62728"  # bars whose score reaches the threshold
_BELOW_COLOUR = "#9aa5b1"
_THRESHOLD_COLOUR = "#555555"
_ROW_HEIGHT = 26  # pixels per label on charts with one row per label


def _window_centres(result: Result) -> np.ndarray:
    """float64 [W]: the centre of each window, seconds."""
    return result.times.mean(axis=1)


def _rows_height(num_rows: int) -> int:
    return max(300, 120 + _ROW_HEIGHT * num_rows)


def timeline_figure(result: Result, threshold: float = 0.5) -> go.Figure:
    """Probability over time, one line per label.

    Args:
        result: The result to draw.
        threshold: Drawn as a dashed horizontal line (a layout shape, not a trace).

    Returns:
        A figure with one trace per label, in label order; x is the window centre in seconds.
    """
    centres = _window_centres(result)
    figure = go.Figure()
    for column, label in enumerate(result.labels):
        figure.add_trace(
            go.Scatter(
                x=centres,
                y=result.timeline[:, column],
                name=label,
                mode="lines+markers",
                marker={"size": 4},
                customdata=result.times,
                hovertemplate=(
                    "<b>%{fullData.name}</b><br>%{customdata[0]:.2f}–%{customdata[1]:.2f} s"
                    "<br>p = %{y:.3f}<extra></extra>"
                ),
            )
        )
    figure.add_hline(
        y=threshold,
        line={"dash": "dash", "color": _THRESHOLD_COLOUR, "width": 1},
        annotation_text=f"threshold {threshold:.2f}",
        annotation_position="top left",
    )
    figure.update_layout(
        title="Probability over time",
        xaxis_title="time (s)",
        yaxis={"title": "probability", "range": [0, 1]},
        hovermode="closest",
        legend_title_text="labels",
    )
    return figure


def heatmap_figure(result: Result) -> go.Figure:
    """Probability of every label (rows, first label on top) in every window (columns).

    Args:
        result: The result to draw.

    Returns:
        A figure with one heatmap trace whose ``z`` is ``result.timeline.T`` [L, W].
    """
    num_labels = len(result.labels)
    # [W, 2] -> [L, W, 2]: every cell carries its window's start and end for the hover text.
    cell_times = np.broadcast_to(result.times, (num_labels, *result.times.shape))
    figure = go.Figure(
        go.Heatmap(
            z=result.timeline.T,
            x=_window_centres(result),
            y=list(result.labels),
            zmin=0.0,
            zmax=1.0,
            colorscale="Viridis",
            colorbar={"title": {"text": "p"}},
            customdata=cell_times,
            hovertemplate=(
                "<b>%{y}</b><br>%{customdata[0]:.2f}–%{customdata[1]:.2f} s<br>p = %{z:.3f}<extra></extra>"
            ),
        )
    )
    figure.update_layout(
        title="Labels over time",
        xaxis_title="time (s)",
        yaxis={"type": "category", "autorange": "reversed"},
        height=_rows_height(num_labels),
    )
    return figure


def scores_figure(result: Result, threshold: float = 0.5) -> go.Figure:
    """Video-level score (max over windows) per label, highest on top.

    Args:
        result: The result to draw.
        threshold: Bars whose score reaches it are highlighted; also drawn as a dashed line.

    Returns:
        A figure with one horizontal bar trace whose bars are sorted by score, descending.
    """
    scores = result.video_scores
    means = result.video_scores_mean
    order = np.argsort(-scores, kind="stable")
    above = scores[order] >= np.float32(threshold)
    figure = go.Figure(
        go.Bar(
            x=scores[order],
            y=[result.labels[index] for index in order],
            orientation="h",
            marker={"color": [_ABOVE_COLOUR if flag else _BELOW_COLOUR for flag in above]},
            text=[f"{score:.2f}" for score in scores[order]],
            textposition="outside",
            customdata=means[order],
            hovertemplate="<b>%{y}</b><br>max p = %{x:.3f}<br>mean p = %{customdata:.3f}<extra></extra>",
        )
    )
    figure.add_vline(x=threshold, line={"dash": "dash", "color": _THRESHOLD_COLOUR, "width": 1})
    figure.update_layout(
        title="Video-level scores (max over time)",
        xaxis={"title": "probability", "range": [0, 1.08]},
        # Bars are given best first; a reversed category axis puts the first one on top.
        yaxis={"type": "category", "autorange": "reversed"},
        height=_rows_height(len(result.labels)),
        showlegend=False,
    )
    return figure


def _labels_table(result: Result, threshold: float) -> str:
    """HTML table: label, max and mean score, attribute phrases; best label first."""
    scores, means = result.video_scores, result.video_scores_mean
    rows = []
    for index in np.argsort(-scores, kind="stable"):
        label = result.labels[index]
        phrases = result.attributes.get(label, [])
        items = "".join(f"<li>{html.escape(phrase)}</li>" for phrase in phrases)
        mark = ' class="above"' if scores[index] >= np.float32(threshold) else ""
        rows.append(
            f"<tr{mark}><td>{html.escape(label)}</td><td>{scores[index]:.3f}</td>"
            f"<td>{means[index]:.3f}</td><td><ul>{items}</ul></td></tr>"
        )
    return (
        "<table><thead><tr><th>label</th><th>max p</th><th>mean p</th><th>attributes</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _segments_table(result: Result, threshold: float) -> str:
    """HTML table of the segments at ``threshold``, or a sentence when there are none."""
    segments = result.segments(threshold)
    if not segments:
        return f"<p>No label reaches the threshold {threshold:.2f} in any window.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(segment.label)}</td><td>{segment.start:.2f}</td>"
        f"<td>{segment.end:.2f}</td><td>{segment.end - segment.start:.2f}</td><td>{segment.peak:.3f}</td></tr>"
        for segment in segments
    )
    return (
        "<table><thead><tr><th>label</th><th>start (s)</th><th>end (s)</th><th>duration (s)</th>"
        f"<th>peak p</th></tr></thead><tbody>{rows}</tbody></table>"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
tr.above td:first-child { font-weight: bold; color: #d62728; }
td ul { margin: 0; padding-left: 1.2rem; }
.meta { color: #555; }
"""


def html_report(result: Result, threshold: float = 0.5) -> str:
    """A self-contained html page: the three figures, the segments and the attribute phrases.

    plotly.js is inlined, so the page works offline. All user text (video name, labels,
    phrases) is HTML-escaped.

    Args:
        result: The result to report.
        threshold: Used for the segments, the highlighted bars and the threshold lines.

    Returns:
        The html document.
    """
    video = html.escape(result.video) if result.video is not None else "video"
    model = html.escape(result.model) if result.model is not None else "unknown model"
    figures = [
        timeline_figure(result, threshold),
        heatmap_figure(result),
        scores_figure(result, threshold),
    ]
    # plotly.js goes in once, with the first figure; the others reuse it.
    divs = [
        pio.to_html(figure, full_html=False, include_plotlyjs=index == 0, config={"responsive": True})
        for index, figure in enumerate(figures)
    ]
    num_windows, num_labels = result.timeline.shape
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ovmlv: {video}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>ovmlv: {video}</h1>
<p class="meta">model {model} · alpha {result.alpha:.2f} · threshold {threshold:.2f} ·
{num_labels} labels · {num_windows} windows ({result.times[0, 0]:.2f}–{result.times[-1, 1]:.2f} s)</p>
{divs[0]}
{divs[1]}
{divs[2]}
<h2>Segments (p &ge; {threshold:.2f})</h2>
{_segments_table(result, threshold)}
<h2>Labels and attributes</h2>
{_labels_table(result, threshold)}
</body>
</html>
"""
