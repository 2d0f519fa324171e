"""Text renderings of Results for the command line: json, csv, a readable table, html."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from .result import Result

FORMATS = ("json", "csv", "table", "html")


def render(output_format: str, videos: Sequence[str], results: list[Result], threshold: float) -> str:
    """The text of `results` in one of FORMATS (html: the page of the first result)."""
    if output_format == "json":
        documents = [result.to_json(threshold) for result in results]
        return (documents[0] if len(documents) == 1 else "[\n" + ",\n".join(documents) + "\n]") + "\n"
    if output_format == "csv":
        return results[0].to_csv() if len(results) == 1 else csv_with_video(videos, results)
    if output_format == "table":
        tables = [text_table(result, threshold) for result in results]
        if len(results) > 1:
            tables = [f"== {video}\n{table}" for video, table in zip(videos, tables)]
        return "\n".join(tables)
    from ovmlv.plots import html_report

    return html_report(results[0], threshold)


def csv_with_video(videos: Sequence[str], results: list[Result]) -> str:
    """One CSV for several videos: Result.to_csv rows with a leading `video` column."""
    lines = []
    for number, (video, result) in enumerate(zip(videos, results)):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow([video])
        header, *rows = result.to_csv().splitlines()
        if number == 0:
            lines.append(f"video,{header}")
        lines.extend(f"{buffer.getvalue()},{row}" for row in rows)
    return "\n".join(lines) + "\n"


def text_table(result: Result, threshold: float) -> str:
    """Label, max, mean and segments at ``threshold``, best label first."""
    segments: dict[str, list[str]] = {}
    for segment in result.segments(threshold):
        segments.setdefault(segment.label, []).append(
            f"{segment.start:.2f}-{segment.end:.2f}s ({segment.peak:.3f})"
        )
    width = max(5, *(len(label) for label in result.labels))
    lines = [f"{'label':<{width}}  {'max':>6}  {'mean':>6}  segments (p >= {threshold:.2f})"]
    means = result.video_scores_mean
    for label, score in result.top(len(result.labels)):
        mean = means[result.labels.index(label)]
        lines.append(f"{label:<{width}}  {score:6.3f}  {mean:6.3f}  {', '.join(segments.get(label, ['-']))}")
    return "\n".join(lines) + "\n"
