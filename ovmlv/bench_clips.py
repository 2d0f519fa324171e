"""Synthetic test clips for `ovmlv bench`: 640x360 H.264 with content that changes over time.

A 10-minute clip must be quick to write, so frames come from a cycle of pre-converted YUV
pictures (moving shapes over a background whose colour changes every scene) and x264 runs
with `preset=ultrafast`. The result still decodes like a real upload: H.264 High-ish profile,
yuv420p, a keyframe every `gop` frames, faststart mp4.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

CYCLE_FRAMES = 240  # distinct pictures before the content repeats (10 s at 24 fps)
SCENE_FRAMES = 60  # frames per background colour
PAN_PX = 2  # horizontal camera pan per frame (pixels): every frame has motion to code
_SCENE_COLOURS = np.array([(40, 60, 90), (120, 90, 50), (30, 110, 60), (100, 40, 100)], dtype=np.float32)
_SHAPES = (  # (colour, size as a fraction of the height, horizontal speed px/frame, vertical phase)
    ((230, 40, 40), 0.30, 5, 0.0),
    ((40, 200, 60), 0.22, -3, 1.3),
    ((240, 230, 70), 0.15, 7, 2.1),
)


@dataclass(frozen=True)
class ClipInfo:
    """A generated clip: where it is, what it holds, and how long writing it took."""

    path: str
    seconds: float
    fps: float
    width: int
    height: int
    frames: int
    bytes: int
    write_s: float

    def to_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=4)
def _texture(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth-ish noise [height, width, 1] (float32, about +-20) that makes frames cost bits."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0.0, 20.0, size=(height // 4 + 1, width // 4 + 1, 1)).astype(np.float32)
    return np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)[:height, :width]


def clip_picture(index: int, width: int, height: int) -> np.ndarray:
    """RGB uint8 [height, width, 3]: picture `index` of the cycle (shapes move, scenes change)."""
    scene = (index // SCENE_FRAMES) % len(_SCENE_COLOURS)
    ramp = np.linspace(0.6, 1.2, width, dtype=np.float32)[None, :, None]  # horizontal gradient
    texture = _texture(height, width + PAN_PX * SCENE_FRAMES, seed=scene)  # [H, W + pan, 1]
    offset = (index % SCENE_FRAMES) * PAN_PX  # the camera pans across the textured background
    background = _SCENE_COLOURS[scene][None, None, :] * ramp + texture[:, offset : offset + width]
    image = np.clip(background, 0, 255).astype(np.uint8)
    for colour, size, speed, phase in _SHAPES:
        side = max(2, int(size * height))
        x = (index * speed) % max(1, width - side)
        y = int((0.5 + 0.4 * np.sin(index / 15.0 + phase)) * (height - side))
        image[y : y + side, x : x + side] = colour
    return image


def write_bench_clip(
    path: str | os.PathLike,
    seconds: float,
    width: int = 640,
    height: int = 360,
    fps: float = 24.0,
    gop: int = 48,
) -> ClipInfo:
    """Write an H.264 mp4 of `seconds` seconds (even `width` and `height`); return its ClipInfo."""
    import av

    if width % 2 or height % 2:
        raise ValueError(f"libx264 with yuv420p needs even sizes, got {width}x{height}")
    start = time.perf_counter()
    path = Path(path)
    total = max(1, int(round(seconds * fps)))
    container = av.open(str(path), "w", options={"movflags": "faststart"})
    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": "ultrafast", "g": str(gop), "keyint_min": str(gop)}
    cycle: dict[int, object] = {}  # cycle position -> pre-converted yuv420p VideoFrame
    for i in range(total):
        key = i % CYCLE_FRAMES
        if key not in cycle:
            rgb = av.VideoFrame.from_ndarray(clip_picture(key, width, height), format="rgb24")
            cycle[key] = rgb.reformat(format="yuv420p")
        frame = cycle[key]
        frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
    container.close()
    elapsed = time.perf_counter() - start
    return ClipInfo(str(path), total / fps, fps, width, height, total, path.stat().st_size, elapsed)
