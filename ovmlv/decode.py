"""Robust video decoding: probe a file, cut it into time windows, sample frames in time.

Frames are sampled uniformly in TIME from the frames' own timestamps (variable frame rate
exists): for each target time the frame on screen then (the last one shown at or before it)
is used. Windows are decoded one after another, so memory does not grow with the length of
the video.

Backends. ``probe_video`` always uses PyAV: the header and one frame give the codec, the
rotation and a precise reason when a file is bad. ``iter_windows(backend="auto")`` decodes
clips of up to DECORD_MAX_DURATION_S with decord, and falls back to PyAV when decord cannot
open a file, fails half way, has no usable timestamps, or the video is rotated; longer clips
go straight to PyAV, which decodes forward, seeks over long gaps between sampled frames
(demuxer keyframe index) and converts only the picked frames through one cached libswscale
context. Measured on the 2-core CPU machine (default 2 s windows x 8 frames, 224 px; best of
2-3 interleaved runs; the machine was shared, so +-15 %):

    clip                         decord        PyAV
    10 min 640x360 30 fps        6.9 s         3.3 s       (peak RSS 94 vs 72 MB)
    60 s 640x360, keyframe 1 s   1.7 s         1.1 s
    60 s 1280x720                2.3 s         1.9 s
    10 s 426x240 (real)          0.13 s        0.13 s
    2.6 s 1920x1080 (real)       0.26 s        0.32 s
    8 frames over 10 min         0.32 s        0.11 s      (sparse: PyAV seeks)
    8 frames over 60 s, kf 1 s   0.12 s        0.15 s

So decord first where the two are level (short clips, as DESIGN.md asks), PyAV where it is
faster and its memory stays flat.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ovmlv.errors import OvmlvError

if TYPE_CHECKING:  # the backends import this module; at run time they are imported lazily
    from ovmlv.decode_decord import DecordFrameSource
    from ovmlv.decode_pyav import PyAVFrameSource

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "decord", "pyav")
DECORD_MAX_DURATION_S = 30.0  # auto: decord up to this length (s), PyAV beyond (timings above)
MIN_LAST_WINDOW = 0.25  # a last, partial window is kept if it covers this fraction of a window


class VideoDecodeError(OvmlvError, ValueError):
    """A video cannot be used; the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as far as its header and first frame tell."""

    path: str
    duration_s: float  # seconds of video (stream/container header, else from packet times)
    fps: float | None  # average frame rate
    width: int  # displayed width (after rotation)
    height: int  # displayed height (after rotation)
    rotation: int  # degrees clockwise needed to display upright: 0, 90, 180, 270
    num_frames: int | None  # from the header; None when it does not say
    codec: str  # FFmpeg decoder name, e.g. "h264"
    backend: str  # the decoder iter_windows(backend="auto") starts with: "decord" or "pyav"


@dataclass
class Window:
    """One time window of a video and the frames sampled from it."""

    index: int
    start_s: float
    end_s: float
    frames: np.ndarray  # uint8 [T, H, W, 3] RGB, upright
    frame_times: np.ndarray  # float64 [T] timestamps (s) of the frames actually used


def format_duration(seconds: float) -> str:
    """``754.2 -> "12:34"``, ``3725 -> "1:02:05"`` (rounded down to whole seconds)."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def window_bounds(
    duration_s: float, window_s: float = 2.0, stride_s: float | None = None
) -> list[tuple[float, float]]:
    """Start and end (s) of each window over a video of ``duration_s`` seconds.

    Windows start every ``stride_s`` (default: ``window_s``, so each frame is used once) and
    stop at the first window that reaches the end. A last, partial window is kept when it
    covers at least a quarter of a window; a video shorter than one window is one window.
    """
    stride_s = window_s if stride_s is None else stride_s
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise ValueError(f"duration_s must be a positive number, got {duration_s}")
    if not (window_s > 0 and stride_s > 0):
        raise ValueError(f"window_s and stride_s must be positive, got {window_s} and {stride_s}")
    if duration_s <= window_s + 1e-9:
        return [(0.0, float(duration_s))]
    bounds: list[tuple[float, float]] = []
    for i in range(math.ceil(duration_s / stride_s) + 1):
        start = round(i * stride_s, 9)
        if start >= duration_s - 1e-9:
            break
        end = min(start + window_s, duration_s)
        if end - start < MIN_LAST_WINDOW * window_s - 1e-9:
            break
        bounds.append((start, float(end)))
        if end >= duration_s - 1e-9:
            break
    return bounds


def sample_times(start_s: float, end_s: float, num_frames: int) -> np.ndarray:
    """Times [num_frames] at the centres of ``num_frames`` equal parts of [start_s, end_s]."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if end_s < start_s:
        raise ValueError(f"end_s ({end_s}) is before start_s ({start_s})")
    return start_s + (np.arange(num_frames, dtype=np.float64) + 0.5) * ((end_s - start_s) / num_frames)


def output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the shorter side scaled to ``short_side``, aspect ratio kept."""
    if short_side is None:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def rotate_upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate a [H, W, 3] frame ``rotation`` degrees clockwise (contiguous result)."""
    if rotation % 360 == 0:
        return frame
    return np.ascontiguousarray(np.rot90(frame, k=-(rotation // 90)))


def _check_file(path: str | os.PathLike) -> tuple[str, str]:
    """(path, basename) of a readable, non-empty file, or a VideoDecodeError."""
    path = os.fspath(path)
    name = os.path.basename(path) or path
    if not os.path.exists(path):
        raise VideoDecodeError(f"cannot read {name!r}: file not found")
    if not os.path.isfile(path):
        raise VideoDecodeError(f"cannot read {name!r}: not a file")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(f"cannot read {name!r}: the file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise VideoDecodeError(f"cannot read {name!r}: permission denied")
    return path, name


def probe_video(path: str | os.PathLike, *, max_duration_s: float | None = 600.0) -> VideoInfo:
    """Read a video's header and first frame; raise VideoDecodeError if it cannot be used.

    Args:
        path: the video file.
        max_duration_s: longest accepted video in seconds (None: no limit).
    """
    from ovmlv.decode_decord import decord_available
    from ovmlv.decode_pyav import probe

    path, name = _check_file(path)
    facts = probe(path, name)
    if max_duration_s is not None and facts.duration_s > max_duration_s:
        raise VideoDecodeError(
            f"cannot use {name!r}: the video is {format_duration(facts.duration_s)} long; "
            f"the limit is {format_duration(max_duration_s)} (max_duration_s)"
        )
    width, height = facts.width, facts.height
    if facts.rotation in (90, 270):
        width, height = height, width
    use_decord = facts.rotation == 0 and facts.duration_s <= DECORD_MAX_DURATION_S and decord_available()
    return VideoInfo(
        path=path,
        duration_s=float(facts.duration_s),
        fps=facts.fps,
        width=width,
        height=height,
        rotation=facts.rotation,
        num_frames=facts.num_frames,
        codec=facts.codec,
        backend="decord" if use_decord else "pyav",
    )


class _FallbackReader:
    """A frame source (decord or PyAV) that switches to PyAV when decord fails."""

    def __init__(self, info: VideoInfo, name: str, size: tuple[int, int] | None, backend: str) -> None:
        from ovmlv.decode_decord import resizes_right

        self._info, self._name, self._size, self._backend = info, name, size, backend
        source = None
        if backend == "decord" or (backend == "auto" and info.backend == "decord" and resizes_right(size)):
            source = self._open_decord()
        self.source: DecordFrameSource | PyAVFrameSource = source or self._open_pyav()

    def _open_decord(self) -> DecordFrameSource | None:
        from ovmlv.decode_decord import DecordFailure, DecordFrameSource

        try:
            return DecordFrameSource(self._info.path, self._name, self._size)
        except DecordFailure as exc:
            if self._backend == "decord":
                raise VideoDecodeError(f"cannot read {self._name!r} with decord: {exc}") from None
            logger.info("%s; decoding with PyAV instead", exc)
            return None

    def _open_pyav(self) -> PyAVFrameSource:
        from ovmlv.decode_pyav import PyAVFrameSource

        size = self._size
        if size is not None and self._info.rotation in (90, 270):
            size = (size[1], size[0])  # PyAV resizes the stored picture, then we rotate it
        return PyAVFrameSource(self._info.path, self._name, size, self._info.rotation)

    def read(self, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frames at the given increasing times; on a decord failure, retry them with PyAV."""
        from ovmlv.decode_decord import DecordFailure

        try:
            return self.source.read(times_s)
        except DecordFailure as exc:
            if self._backend == "decord":
                raise VideoDecodeError(f"cannot read {self._name!r} with decord: {exc}") from None
            logger.warning("%s; continuing with PyAV", exc)
            self.source.close()
            self.source = self._open_pyav()
            return self.source.read(times_s)

    def close(self) -> None:
        """Release the file."""
        self.source.close()


def iter_windows(
    path: str | os.PathLike,
    *,
    window_s: float = 2.0,
    stride_s: float | None = None,
    frames_per_window: int = 8,
    short_side: int | None = 224,
    max_duration_s: float | None = 600.0,
    backend: str = "auto",
) -> Iterator[Window]:
    """Decode a video window by window (streaming: memory does not grow with its length).

    The file is probed when this is called (so a bad file raises here); frames are decoded
    as the iterator advances.

    Args:
        path: the video file.
        window_s: window length in seconds.
        stride_s: time between window starts (default ``window_s``).
        frames_per_window: frames sampled uniformly in time in each window (T).
        short_side: the shorter side of the frames after resizing (None: original size).
        max_duration_s: longest accepted video in seconds (None: no limit).
        backend: "auto" (decord, PyAV as the fallback), "decord" or "pyav".

    Raises:
        VideoDecodeError: the file is missing, not a video, damaged beyond use, too long...
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if short_side is not None and short_side < 1:
        raise ValueError(f"short_side must be positive or None, got {short_side}")
    if frames_per_window < 1:
        raise ValueError(f"frames_per_window must be at least 1, got {frames_per_window}")
    if backend == "decord":
        from ovmlv.decode_decord import decord_available

        if not decord_available():
            raise ImportError("backend='decord' needs the decord package (pip install decord; x86_64 only)")
    info = probe_video(path, max_duration_s=max_duration_s)  # bad files fail here, at the call
    bounds = window_bounds(info.duration_s, window_s, stride_s)
    size = None if short_side is None else output_size(info.width, info.height, short_side)
    return _stream_windows(info, bounds, frames_per_window, size, backend)


def _stream_windows(
    info: VideoInfo,
    bounds: list[tuple[float, float]],
    frames_per_window: int,
    size: tuple[int, int] | None,
    backend: str,
) -> Iterator[Window]:
    """Decode the windows one by one; the file is open only while the iterator runs."""
    name = Path(info.path).name
    reader = _FallbackReader(info, name, size, backend)
    try:
        for index, (start, end) in enumerate(bounds):
            frames, times = reader.read(sample_times(start, end, frames_per_window))
            source = reader.source
            if index and source.exhausted and source.last_time_s < start:
                logger.warning(
                    "%s ends at %.2f s although its header says %.2f s (truncated?); stopping there",
                    name,
                    source.last_time_s,
                    info.duration_s,
                )
                return
            yield Window(index, start, end, frames, times)
    finally:
        reader.close()
