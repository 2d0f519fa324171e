"""decord backend: frames by index from decord's frame table, mapped from times.

decord builds a table of every frame's timestamps when it opens a file, so sampling in time
is a binary search; ``get_batch`` then decodes forward from the nearest keyframe. decord is
optional (there are no wheels for every platform); any failure raises DecordFailure so the
caller can fall back to PyAV.
"""

from __future__ import annotations

import re
from types import ModuleType

import numpy as np

_LOCATION = re.compile(r"\[[\d:]+\]\s*\S+:\d+:\s*")  # "[01:15:50] /src/video_reader.cc:83: "
_TIME_EPS = 1e-4  # decord times are float32: a frame at the target time (to 0.1 ms) counts


class DecordFailure(Exception):
    """decord cannot open or read this file (the caller falls back to PyAV)."""


# Output sizes (width, height) that decord resized to wrongly in this process, and ones it got
# right. decord 0.6 asked for 48x48 from a 64x64 clip decodes 48x64 and then fails every read
# ("Check failed: from_size == to_size"); so do 16, 24 and 72 px from 64, while 32, 40, 56 and 96
# work. The first file at a size is checked on one frame; then PyAV decodes that size directly.
_WRONG_SIZES: set[tuple[int, int]] = set()
_RIGHT_SIZES: set[tuple[int, int]] = set()


def resizes_right(size: tuple[int, int] | None) -> bool:
    """False for an output size decord has already resized to wrongly here (use PyAV for it)."""
    return size is None or tuple(size) not in _WRONG_SIZES


def decord_available() -> bool:
    """Whether decord imports on this machine."""
    try:
        _import_decord()
    except DecordFailure:
        return False
    return True


def _import_decord() -> ModuleType:
    try:
        import decord
    except ImportError as exc:
        raise DecordFailure(f"decord is not installed ({exc})") from None
    decord.logging.set_level(decord.logging.QUIET)  # its bundled FFmpeg prints every warning
    return decord


class DecordFrameSource:
    """Answers increasing time queries with the frames displayed at those times.

    decord applies the rotation metadata itself (0.6.0 does; tested), so ``size`` is the
    displayed (upright) size.
    """

    name = "decord"

    def __init__(self, path: str, name: str, size: tuple[int, int] | None) -> None:
        decord = _import_decord()
        width, height = size if size is not None else (-1, -1)
        try:
            self._reader = decord.VideoReader(path, width=width, height=height, num_threads=0)
            count = len(self._reader)
            times = self._reader.get_frame_timestamp(np.arange(count))[:, 0] if count else np.zeros(0)
        except Exception as exc:  # decord raises RuntimeError, DECORDError and others
            raise DecordFailure(f"decord cannot open {name!r}: {_first_line(exc)}") from None
        # Missing timestamps come back as huge negative numbers (AVI); then PyAV does better.
        times = np.asarray(times, dtype=np.float64)
        if count == 0 or not np.all(np.isfinite(times)) or times.min() < -1.0 or np.any(np.diff(times) < 0):
            raise DecordFailure(f"decord has no usable frame timestamps for {name!r}")
        if size is not None and tuple(size) not in _RIGHT_SIZES:
            self._check_size(name, (int(size[0]), int(size[1])))
        self._name, self._times = name, times
        self.exhausted = False

    def _check_size(self, name: str, size: tuple[int, int]) -> None:
        """Decode the first frame at `size` once per size and process (see _WRONG_SIZES)."""
        if size in _WRONG_SIZES:
            raise DecordFailure(f"decord resizes to {size[0]}x{size[1]} wrongly")
        try:
            shape = self._reader.get_batch([0]).shape
        except Exception as exc:  # DECORDError (its size check) is not a RuntimeError
            shape, reason = None, _first_line(exc)
        else:
            reason = f"it decoded {shape[2]}x{shape[1]}"
        if shape is None or tuple(shape[1:3]) != (size[1], size[0]):
            _WRONG_SIZES.add(size)
            raise DecordFailure(f"decord cannot resize {name!r} to {size[0]}x{size[1]} ({reason})")
        _RIGHT_SIZES.add(size)

    @property
    def last_time_s(self) -> float:
        """Time of the last frame in the file."""
        return float(self._times[-1])

    def read(self, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frames [T, H, W, 3] displayed at the given times, and their times [T]."""
        last = len(self._times) - 1
        indices = np.clip(np.searchsorted(self._times, times_s + _TIME_EPS, side="right") - 1, 0, last)
        unique, inverse = np.unique(indices, return_inverse=True)
        try:
            batch = self._reader.get_batch(unique.tolist()).asnumpy()
        except Exception as exc:  # DECORDError on damaged packets is not a RuntimeError
            raise DecordFailure(f"decord failed reading {self._name!r}: {_first_line(exc)}") from None
        self.exhausted = bool(indices[-1] == last)
        return batch[inverse.reshape(-1)], self._times[indices]

    def close(self) -> None:
        """Release the file."""
        self._reader = None


def _first_line(exc: BaseException) -> str:
    """The first line of decord's message without its "[time] file.cc:line:" prefixes."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = _LOCATION.sub("", lines[0]) if lines else ""
    return text[:200] or type(exc).__name__
