"""PyAV backend: probing, and frames at given times read in one forward pass.

This is the robust path: the container is opened with ``metadata_errors="ignore"``, every
packet is decoded under its own try/except (a damaged packet costs its frames, not the
file), and timestamps come from the frames themselves (variable frame rate). Frames are
converted to RGB (and resized) only when they are picked, inside libswscale.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ovmlv.decode import VideoDecodeError, rotate_upright

logger = logging.getLogger(__name__)

_REORDER_DEPTH = 4  # frames held back to put out-of-order timestamps (AVI + B-frames) in order
_MIN_SKIP_S = 1.0  # seek only when it skips at least this much video (a seek flushes the decoder)
_TIME_EPS = 1e-6  # a frame at exactly the target time counts as displayed at that time
# First bytes of the containers we expect; used to tell "damaged video" from "not a video".
_CONTAINER_MAGIC = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"RIFF", b"\x1a\x45\xdf\xa3", b"OggS")


@dataclass
class TimedFrame:
    """A decoded frame and its presentation time in seconds from the start of the video."""

    frame: av.VideoFrame
    time_s: float


def open_input(path: str, name: str) -> av.container.InputContainer:
    """Open a container for reading, or raise a one-line VideoDecodeError."""
    try:
        return av.open(path, metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        with open(path, "rb") as handle:
            head = handle.read(64)
        if any(magic in head for magic in _CONTAINER_MAGIC):
            raise VideoDecodeError(
                f"cannot read {name!r}: the video file is damaged or incomplete ({_reason(exc)})"
            ) from None
        raise VideoDecodeError(f"cannot read {name!r}: not a video file ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    """FFmpeg's explanation without the errno and file name PyAV adds."""
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())


def video_stream(container: av.container.InputContainer, name: str) -> av.VideoStream:
    """The first video stream with a usable decoder, or a VideoDecodeError saying why not."""
    if not container.streams.video:
        kinds = sorted({stream.type for stream in container.streams})
        if "audio" in kinds:
            raise VideoDecodeError(f"cannot read {name!r}: audio only, the file has no video stream")
        raise VideoDecodeError(
            f"cannot read {name!r}: not a video file (no video stream; the file may be damaged)"
        )
    for stream in container.streams.video:
        if stream.codec_context is not None:
            return stream
    raise VideoDecodeError(f"cannot read {name!r}: unknown or unsupported video codec (no decoder for it)")


@dataclass
class DecodeStats:
    """What a pass over the packets saw."""

    packets: int = 0  # packets holding data
    bad_packets: int = 0  # packets the decoder rejected


def decoded_frames(
    container: av.container.InputContainer, stream: av.VideoStream, stats: DecodeStats | None = None
) -> Iterator[av.VideoFrame]:
    """Every frame that decodes, skipping damaged packets; stops quietly at a broken tail."""
    stats = stats if stats is not None else DecodeStats()
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except (av.error.FFmpegError, OSError) as exc:
            logger.warning("stopped reading %s early: %s", container.name, _reason(exc))
            break
        stats.packets += packet.size > 0
        try:
            frames = packet.decode()
        except (av.error.FFmpegError, ValueError) as exc:
            stats.bad_packets += 1
            logger.debug("skipped a damaged packet in %s: %s", container.name, _reason(exc))
            continue
        yield from frames
    if stats.bad_packets:
        logger.warning("%s: skipped %d damaged packet(s)", container.name, stats.bad_packets)


def timed_frames(
    frames: Iterator[av.VideoFrame], time_base: Fraction, origin_pts: int | None, step_s: float
) -> Iterator[TimedFrame]:
    """Frames with presentation times (s), non-decreasing even when the file's are not.

    Decoders put out frames in display order, but some files (AVI with packed B-frames) carry
    timestamps in a shuffled order; the sorted timestamps of a few frames are handed out in
    output order. Missing timestamps continue the previous one by one frame step.
    """
    pending: deque[av.VideoFrame] = deque()
    stamps: list[float] = []
    last_time = -np.inf
    for frame in frames:
        if frame.pts is None:
            time_s = (max(stamps) if stamps else last_time) + step_s
            time_s = time_s if np.isfinite(time_s) else 0.0
        else:
            origin = frame.pts if origin_pts is None else origin_pts
            origin_pts = origin
            time_s = float((frame.pts - origin) * time_base)
        pending.append(frame)
        heapq.heappush(stamps, time_s)
        if len(pending) > _REORDER_DEPTH:
            last_time = max(last_time, heapq.heappop(stamps))
            yield TimedFrame(pending.popleft(), last_time)
    while pending:
        last_time = max(last_time, heapq.heappop(stamps))
        yield TimedFrame(pending.popleft(), last_time)


def first_frame(container: av.container.InputContainer, stream: av.VideoStream, name: str) -> av.VideoFrame:
    """The first decodable frame, or a VideoDecodeError telling "no frames" from "damaged"."""
    stats = DecodeStats()
    for frame in decoded_frames(container, stream, stats):
        return frame
    if stats.packets == 0:
        raise VideoDecodeError(f"cannot read {name!r}: the video stream has no frames")
    raise VideoDecodeError(
        f"cannot read {name!r}: no frame could be decoded from its {stats.packets} video packet(s) "
        "(damaged or truncated)"
    )


def rotation_of(frame: av.VideoFrame, stream: av.VideoStream) -> int:
    """Degrees clockwise (0, 90, 180, 270) to display the frame upright."""
    counter_clockwise = frame.rotation  # from the display matrix; PyAV >= 14
    if counter_clockwise:
        return int(-round(counter_clockwise / 90) * 90) % 360
    legacy = stream.metadata.get("rotate")  # older muxers: a clockwise angle as text
    try:
        return int(round(float(legacy) / 90) * 90) % 360 if legacy else 0
    except ValueError:
        return 0


def stream_duration_s(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    """Duration from the stream header, else the container header; None when neither says."""
    if stream.duration and stream.time_base and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    return None


def scan_duration_s(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    """Duration from the packets themselves (reads the file, decodes nothing)."""
    first, last = None, None
    try:
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            first = packet.pts if first is None else min(first, packet.pts)
            end = packet.pts + (packet.duration or 0)
            last = end if last is None else max(last, end)
    except (av.error.FFmpegError, OSError) as exc:
        logger.debug("scan of %s stopped: %s", container.name, _reason(exc))
    if first is None or last is None or last <= first:
        return None
    return float((last - first) * stream.time_base)


@dataclass(frozen=True)
class StreamFacts:
    """What the header and the first frame of a video stream say."""

    duration_s: float
    fps: float | None
    width: int  # stored picture, before rotation
    height: int
    rotation: int  # degrees clockwise to display upright
    num_frames: int | None
    codec: str


def probe(path: str, name: str) -> StreamFacts:
    """Facts about the first video stream; VideoDecodeError when there is nothing to decode."""
    with open_input(path, name) as container:
        stream = video_stream(container, name)
        frame = first_frame(container, stream, name)
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        num_frames = int(stream.frames) if stream.frames else None
        duration = stream_duration_s(container, stream)
        if duration is None and num_frames and fps:
            duration = num_frames / fps
        if duration is None:
            container.seek(0)
            duration = scan_duration_s(container, stream) or (1.0 / fps if fps else 1.0 / 30)
        rotation = rotation_of(frame, stream)
        return StreamFacts(
            duration, fps, frame.width, frame.height, rotation, num_frames, stream.codec_context.name
        )


class PyAVFrameSource:
    """Answers increasing time queries with the frames displayed at those times.

    Decodes forward, holding only the last frame at or before the query and the next one;
    where the demuxer index shows a keyframe well past the current position and before the
    next query, it seeks there instead of decoding the frames in between.
    """

    name = "pyav"

    def __init__(self, path: str, name: str, size: tuple[int, int] | None, rotation: int) -> None:
        self._container = open_input(path, name)
        self._stream = video_stream(self._container, name)
        self._stream.thread_type = "AUTO"  # frame + slice threads
        self._name, self._size, self._rotation = name, size, rotation
        rate = self._stream.average_rate or self._stream.guessed_rate
        self._step_s = 1.0 / float(rate) if rate else 1.0 / 30
        self._origin_pts = self._stream.start_time  # None when the header does not say
        self._keyframe_ticks = self._keyframe_index()
        self._frames = self._restart()
        self._prev: TimedFrame | None = None
        self._next = next(self._frames, None)
        if self._next is None:
            self.close()
            raise VideoDecodeError(f"cannot read {name!r}: no frame could be decoded (damaged or truncated)")
        # Index timestamps are decode times; frames are shown a few ticks later (B-frames),
        # and seeking goes by display time.
        first_pts = self._next.frame.pts
        if len(self._keyframe_ticks) and first_pts is not None:
            self._keyframe_ticks += max(0, int(first_pts - self._keyframe_ticks[0]))
        self._converted: tuple[av.VideoFrame, np.ndarray] | None = None
        # One reformatter keeps its libswscale context: 2.6x faster than frame.to_ndarray(...).
        self._reformatter = VideoReformatter()
        self.exhausted = False

    def _keyframe_index(self) -> np.ndarray:
        """Keyframe decode timestamps (stream ticks) from the demuxer index; may be empty."""
        try:
            entries = self._stream.index_entries
            return np.array([entry.timestamp for entry in entries if entry.is_keyframe], dtype=np.int64)
        except (AttributeError, av.error.FFmpegError):
            return np.zeros(0, dtype=np.int64)

    def _restart(self) -> Iterator[TimedFrame]:
        frames = decoded_frames(self._container, self._stream)
        return timed_frames(frames, self._stream.time_base, self._origin_pts, self._step_s)

    @property
    def last_time_s(self) -> float:
        """Time of the latest frame reached so far."""
        latest = self._next if self._next is not None else self._prev
        return latest.time_s if latest is not None else 0.0

    def _keyframe_time(self, ticks: int) -> float:
        origin = self._origin_pts or 0
        return float((int(ticks) - origin) * self._stream.time_base)

    def _maybe_seek(self, target_s: float) -> None:
        """Jump to the last keyframe before ``target_s`` when that skips enough video."""
        if self._next is None or self._next.time_s > target_s or not len(self._keyframe_ticks):
            return
        limit = (self._origin_pts or 0) + target_s / float(self._stream.time_base)
        k = int(np.searchsorted(self._keyframe_ticks, limit, side="right")) - 1
        if k < 0 or self._keyframe_time(self._keyframe_ticks[k]) - self._next.time_s < _MIN_SKIP_S:
            return
        previous = self._prev
        if self._seek(self._keyframe_ticks[k]) and (
            self._next is None or self._next.time_s > target_s + _TIME_EPS
        ):
            # The index misled us (damaged file, odd timestamps): go back, stop seeking.
            logger.debug("%s: seek missed %.3f s; decoding forward instead", self._name, target_s)
            self._keyframe_ticks = self._keyframe_ticks[:0]
            known = previous is not None and previous.frame.pts is not None
            self._seek(previous.frame.pts if known else (self._origin_pts or 0))
            if self._next is None:
                self._prev = previous

    def _seek(self, ticks: int) -> bool:
        """Seek to the keyframe at or before ``ticks`` and restart decoding; False on failure."""
        try:
            self._container.seek(int(ticks), stream=self._stream, backward=True)
        except (av.error.FFmpegError, OSError) as exc:
            logger.debug("%s: cannot seek (%s); decoding forward instead", self._name, _reason(exc))
            self._keyframe_ticks = self._keyframe_ticks[:0]
            return False
        self._frames, self._prev = self._restart(), None
        self._next = next(self._frames, None)
        return True

    def read(self, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frames [T, H, W, 3] displayed at the given increasing times, and their times [T]."""
        picked: list[TimedFrame] = []
        for target in times_s:
            self._maybe_seek(float(target))
            while self._next is not None and self._next.time_s <= target + _TIME_EPS:
                self._prev, self._next = self._next, next(self._frames, None)
            self.exhausted = self._next is None
            choice = self._prev if self._prev is not None else self._next
            if choice is None:
                raise VideoDecodeError(f"cannot read {self._name!r}: no frame could be decoded")
            picked.append(choice)
        arrays = [self._to_array(item.frame) for item in picked]
        return np.stack(arrays), np.array([item.time_s for item in picked], dtype=np.float64)

    def _to_array(self, frame: av.VideoFrame) -> np.ndarray:
        """RGB uint8 [H, W, 3], resized in libswscale and turned upright."""
        if self._converted is not None and self._converted[0] is frame:
            return self._converted[1]
        width, height = self._size if self._size is not None else (None, None)
        array = self._reformatter.reformat(frame, width=width, height=height, format="rgb24").to_ndarray()
        array = rotate_upright(array, self._rotation)
        self._converted = (frame, array)
        return array

    def close(self) -> None:
        """Release the file and the decoder."""
        self._container.close()
