"""Small video files for tests, written with PyAV (no ffmpeg binary needed).

The frames from :func:`moving_square_frames` carry their own frame number as a row of
black/white cells, so a test can tell WHICH frame a decoder returned even after lossy
compression and resizing (:func:`read_frame_index`), plus a red top-left corner to check
orientation. The damaged-file helpers start from a good file and break it in one known way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

INDEX_BITS = 8  # frame numbers are written modulo 2**INDEX_BITS
_PTS_TIME_BASE = Fraction(1, 1000)  # explicit timestamps are written in milliseconds
RED = (230, 30, 30)


def moving_square_frames(n: int, height: int, width: int, *, start: int = 0) -> np.ndarray:
    """Frames [n, height, width, 3] uint8 RGB whose content identifies the frame number.

    Layout (relative to the frame size): a red marker in the top-left quarter-corner, a green
    square moving to the right in the top half, and in rows 50%-90% a row of INDEX_BITS
    cells, white for 1 and black for 0 (most significant bit on the left), spelling
    ``(start + i) % 2**INDEX_BITS``.
    """
    frames = np.full((n, height, width, 3), 96, dtype=np.uint8)
    frames[:, : max(1, height // 4), : max(1, width // 4)] = RED
    side = max(2, min(height, width) // 5)
    x0, travel = width // 3, max(1, width - width // 3 - side)
    bit_rows = slice(height // 2, max(height // 2 + 1, (height * 9) // 10))
    cell_edges = np.linspace(0, width, INDEX_BITS + 1).round().astype(int)
    for i in range(n):
        x = x0 + (i * 3) % travel
        frames[i, height // 10 : height // 10 + side, x : x + side] = (30, 200, 30)
        code = (start + i) % 2**INDEX_BITS
        for bit in range(INDEX_BITS):
            on = (code >> (INDEX_BITS - 1 - bit)) & 1
            frames[i, bit_rows, cell_edges[bit] : cell_edges[bit + 1]] = 255 if on else 0
    return frames


def read_frame_index(frame: np.ndarray) -> int:
    """The frame number written by :func:`moving_square_frames` (modulo 2**INDEX_BITS)."""
    height, width = frame.shape[:2]
    luma = frame.astype(np.float32).mean(axis=2)
    rows = slice(int(height * 0.6), max(int(height * 0.6) + 1, int(height * 0.8)))
    cell = width / INDEX_BITS
    code = 0
    for bit in range(INDEX_BITS):
        cols = slice(int((bit + 0.3) * cell), max(int((bit + 0.3) * cell) + 1, int((bit + 0.7) * cell)))
        code = (code << 1) | int(luma[rows, cols].mean() > 128)
    return code


def corner_is_red(frame: np.ndarray, corner: str = "top_left") -> bool:
    """Whether the given corner region (an eighth of each side) is the red marker."""
    height, width = frame.shape[:2]
    dh, dw = max(1, height // 8), max(1, width // 8)
    rows = slice(0, dh) if corner.startswith("top") else slice(height - dh, height)
    cols = slice(0, dw) if corner.endswith("left") else slice(width - dw, width)
    r, g, b = frame[rows, cols].reshape(-1, 3).astype(np.float32).mean(axis=0)
    return bool(r > 150 and g < 90 and b < 90)


def write_clip(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float = 10,
    codec: str = "libx264",
    pts_s: Sequence[float] | None = None,
    rotation: int = 0,
    with_audio: bool = False,
    *,
    faststart: bool = True,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode upright RGB frames [N, H, W, 3] into a video file; return its path.

    Args:
        fps: nominal frame rate; frame i is at i / fps unless ``pts_s`` is given.
        codec: "libx264" (needs even sizes) or "mpeg4" (any size), or any PyAV encoder.
        pts_s: explicit presentation time of every frame in seconds (variable frame rate).
        rotation: degrees clockwise a player must rotate the stored picture (the
            ``VideoInfo.rotation`` convention). The pixels are stored rotated the other way,
            so a decoder that honours the metadata returns ``frames`` unchanged.
        with_audio: add an AAC sine tone as long as the video.
        faststart: put the mp4 index before the data (as web uploads usually have it).
        options: extra encoder options, e.g. {"g": "30"} for the keyframe interval.
    """
    path = Path(path)
    stored = np.rot90(frames, k=(rotation // 90) % 4, axes=(1, 2)) if rotation else frames
    container_options = {"movflags": "faststart"} if faststart and path.suffix in (".mp4", ".mov") else {}
    container = av.open(str(path), "w", options=container_options)
    rate = Fraction(fps).limit_denominator(1001)
    stream = container.add_stream(codec, rate=rate, options=options or {})
    stream.height, stream.width = stored.shape[1:3]
    stream.pix_fmt = "yuv420p"
    if pts_s is not None:
        stream.codec_context.time_base = _PTS_TIME_BASE
        stream.time_base = _PTS_TIME_BASE
    if rotation:
        stream.set_display_rotation(((-rotation + 180) % 360) - 180)
    audio = container.add_stream("aac", rate=16000) if with_audio else None
    for i, image in enumerate(stored):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        if pts_s is not None:
            frame.pts, frame.time_base = round(pts_s[i] / _PTS_TIME_BASE), _PTS_TIME_BASE
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
    if audio is not None:
        seconds = (pts_s[-1] if pts_s is not None else len(frames) / float(rate)) + 0.1
        _encode_tone(container, audio, seconds)
    container.close()
    return path


def _encode_tone(container: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    """Encode a 440 Hz mono tone of the given length into an audio stream."""
    rate, chunk = stream.rate, 1024
    samples = (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
    for start in range(0, len(samples), chunk):
        piece = samples[start : start + chunk]
        frame = av.AudioFrame.from_ndarray(piece[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def write_audio_only(path: str | os.PathLike, seconds: float = 1.0) -> Path:
    """An mp4 with one AAC audio stream and no video stream."""
    path = Path(path)
    container = av.open(str(path), "w")
    _encode_tone(container, container.add_stream("aac", rate=16000), seconds)
    container.close()
    return path


def write_text_as_mp4(path: str | os.PathLike) -> Path:
    """A plain text file with a video file name."""
    path = Path(path)
    path.write_text("this is not a video, just some text\n" * 200)
    return path


def write_empty(path: str | os.PathLike) -> Path:
    """A file of zero bytes."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def write_no_frames(path: str | os.PathLike) -> Path:
    """A video file whose video stream holds no frames (AVI keeps an empty stream; mp4 drops it)."""
    path = Path(path)
    container = av.open(str(path), "w", format="avi")
    stream = container.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    container.start_encoding()
    container.close()
    return path


def truncate_file(src: str | os.PathLike, dst: str | os.PathLike, fraction: float) -> Path:
    """Copy the first ``fraction`` of the bytes of ``src`` (an interrupted download)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


def _mp4_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """Top-level mp4 boxes as (type, start offset, size); empty if not an mp4."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if size == 1 and offset + 16 <= len(data):
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        elif size == 0:
            size = len(data) - offset
        if size < 8 or not kind.isalnum():
            break
        boxes.append((kind, offset, size))
        offset += size
    return boxes


def corrupt_packets(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    span: tuple[float, float] = (0.4, 0.6),
    chunk: int = 256,
    every: int = 2048,
    seed: int = 0,
) -> Path:
    """Copy ``src`` with random bytes written over the middle of its stream data.

    For an mp4 the damage stays inside the ``mdat`` box (the header and index stay valid, as
    when a disk or a transfer damages a file); for other containers it hits the middle of the
    file. ``span`` is the damaged part as fractions of that region; ``chunk`` bytes are
    overwritten every ``every`` bytes.
    """
    data = bytearray(Path(src).read_bytes())
    mdat = [(start, size) for kind, start, size in _mp4_boxes(bytes(data)) if kind == b"mdat"]
    region_start, region_size = (mdat[0][0] + 16, mdat[0][1] - 16) if mdat else (0, len(data))
    rng = np.random.default_rng(seed)
    begin = region_start + int(region_size * span[0])
    end = region_start + int(region_size * span[1])
    for offset in range(begin, end, every):
        n = min(chunk, end - offset)
        data[offset : offset + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def replace_codec_tag(
    src: str | os.PathLike, dst: str | os.PathLike, old: bytes = b"avc1", new: bytes = b"zzzz"
) -> Path:
    """Copy an mp4 with its codec tag renamed in the header, so no decoder knows the codec."""
    data = Path(src).read_bytes()
    out = bytearray(data)
    for kind, start, size in _mp4_boxes(data):
        if kind != b"mdat":
            out[start : start + size] = data[start : start + size].replace(old, new)
    Path(dst).write_bytes(bytes(out))
    return Path(dst)


def write_long_clip(
    path: str | os.PathLike, seconds: float, width: int = 640, height: int = 360, fps: float = 10
) -> Path:
    """A long clip that is cheap to write: mostly static content, fastest x264 settings."""
    path = Path(path)
    container = av.open(str(path), "w", options={"movflags": "faststart"})
    options = {"preset": "ultrafast", "tune": "zerolatency"}
    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001), options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    # A few pre-converted frames, cycled: encoding cost dominates, not numpy.
    images = moving_square_frames(16, height, width)
    cycle = [av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p") for image in images]
    for i in range(int(round(seconds * fps))):
        frame = cycle[i % len(cycle)]
        frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
    container.close()
    return path
