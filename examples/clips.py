"""Synthetic example clips for the app: moving coloured shapes, rendered with numpy and PyAV.

The app renders them into a cache folder at start-up when they are missing (nothing is
downloaded, nothing binary is committed). ``python -m examples.clips DIR`` renders them by hand.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

_SIZE = (240, 320)  # height, width (even: libx264 with yuv420p needs it)


def _disc(frame: np.ndarray, cx: float, cy: float, r: float, colour: tuple[int, int, int]) -> None:
    yy, xx = np.ogrid[: frame.shape[0], : frame.shape[1]]
    frame[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = colour


def _box(frame: np.ndarray, cx: float, cy: float, half: float, colour: tuple[int, int, int]) -> None:
    top, left = int(cy - half), int(cx - half)
    frame[max(top, 0) : int(cy + half), max(left, 0) : int(cx + half)] = colour


def _draw_ball_right(t: float, frame: np.ndarray) -> None:
    _disc(frame, 40 + 240 * t, 120, 28, (220, 40, 40))


def _draw_square_and_ball(t: float, frame: np.ndarray) -> None:
    _box(frame, 90, 120, 12 + 50 * t, (40, 180, 60))
    _disc(frame, 240, 200 - 150 * t, 22, (240, 210, 40))


def _draw_blinking(t: float, frame: np.ndarray) -> None:
    _box(frame, 80, 80, 30, (50, 90, 220))
    if t > 0.5 and int(t * 20) % 2 == 0:  # blinks in the second half only
        _disc(frame, 230, 150, 35, (250, 250, 250))


# (file name, labels, draw(t, frame)): draw paints one RGB frame at time t in [0, 1].
EXAMPLE_CLIPS: list[tuple[str, str, Callable[[float, np.ndarray], None]]] = [
    ("red_ball_moving_right.mp4", "red ball, moving right, blue square, person", _draw_ball_right),
    (
        "growing_square_rising_ball.mp4",
        "green square, growing, yellow ball, moving up",
        _draw_square_and_ball,
    ),
    ("blue_square_white_flash.mp4", "blue square, blinking light, red ball", _draw_blinking),
]


def _write_clip(
    path: Path, draw: Callable[[float, np.ndarray], None], seconds: float = 6, fps: int = 10
) -> None:
    """Render ``draw`` into an h264/yuv420p mp4 (browser-playable) at ``path``, atomically."""
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.mp4")  # concurrent start-ups
    with av.open(str(partial), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width = _SIZE
        stream.pix_fmt = "yuv420p"
        count = int(seconds * fps)
        for index in range(count):
            frame = np.full((*_SIZE, 3), 60, dtype=np.uint8)
            draw(index / max(1, count - 1), frame)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    partial.replace(path)


def ensure_example_clips(directory: str | os.PathLike) -> list[list[str]]:
    """Render the example clips into ``directory`` unless present; return [[path, labels], ...]."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    examples = []
    for name, labels, draw in EXAMPLE_CLIPS:
        path = directory / name
        if not path.exists():
            _write_clip(path, draw)
        examples.append([str(path), labels])
    return examples


if __name__ == "__main__":
    for clip, labels in ensure_example_clips(sys.argv[1] if len(sys.argv) > 1 else "examples/clips"):
        print(f"{clip}\t{labels}")
