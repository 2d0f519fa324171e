"""A tiny synthetic dataset of coloured shapes, for smoke runs and tests (seconds to write, no downloads).

Every clip shows one or two moving shapes on a dark background; its labels are the shapes
shown, named "<colour> <shape>" (three colours x two shapes = six labels). The split holds out
two colour-shape combinations as novel labels: their colours and shapes are seen in base
labels, only the combination is new.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from training.data.manifest import ManifestEntry, Split, write_manifest, write_split, write_vocabulary

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230)}
SHAPES = ("circle", "square")
LABELS = [f"{colour} {shape}" for shape in SHAPES for colour in COLOURS]
NOVEL = ["blue circle", "green square"]
BACKGROUND = 30


def draw_shape(
    frame: np.ndarray, shape: str, colour: tuple[int, int, int], cx: float, cy: float, r: float
) -> None:
    """Draw a filled circle or square (half-side ``r``) centred at (cx, cy) into frame [H, W, 3] in place."""
    height, width = frame.shape[:2]
    ys, xs = np.ogrid[:height, :width]
    if shape == "circle":
        mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= r**2
    else:
        mask = (np.abs(xs - cx) <= r) & (np.abs(ys - cy) <= r)
    frame[mask] = colour


def render_clip(labels: list[str], num_frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 frames [num_frames, size, size, 3]: each labelled shape moves on a straight line."""
    frames = np.full((num_frames, size, size, 3), BACKGROUND, dtype=np.uint8)
    radius = size / 7
    low, high = radius + 1, size - radius - 1
    for label in labels:
        colour, shape = label.split(" ")
        start, end = rng.uniform(low, high, 2), rng.uniform(low, high, 2)
        for t in range(num_frames):
            cx, cy = start + (end - start) * t / max(1, num_frames - 1)
            draw_shape(frames[t], shape, COLOURS[colour], cx, cy, radius)
    return frames


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int) -> Path:
    """Encode RGB frames [N, H, W, 3] (even H and W) as H.264 yuv420p mp4."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.options = {"preset": "ultrafast", "crf": "18", "threads": "1"}
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24"))
            )
        container.mux(stream.encode())
    return path


def clip_labels(num_videos: int, rng: np.random.Generator) -> list[list[str]]:
    """1-2 labels per clip; clip i always shows label i mod 6, so every label is present and absent somewhere."""
    result = []
    for i in range(num_videos):
        labels = [LABELS[i % len(LABELS)]]
        if rng.random() < 0.5:
            others = [label for label in LABELS if label != labels[0]]
            labels.append(others[int(rng.integers(len(others)))])
        result.append(sorted(labels, key=LABELS.index))
    return result


def make_synthetic_dataset(
    out_dir: str | os.PathLike,
    num_videos: int = 12,
    seconds: float = 3,
    size: int = 64,
    fps: int = 8,
    seed: int = 0,
) -> tuple[Path, Path, Path]:
    """Write clips, a manifest, a vocabulary and a base/novel split under ``out_dir``.

    Args:
        out_dir: created if needed; clips go to ``out_dir/videos``.
        num_videos: number of clips.
        seconds: length of each clip.
        size: frame side in pixels (even).
        fps: frame rate.
        seed: everything (labels, motion) is determined by it.

    Returns:
        (manifest path, vocabulary path, split path).
    """
    if size % 2:
        raise ValueError(f"size must be even (H.264 yuv420p), got {size}")
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    num_frames = max(1, round(seconds * fps))
    entries = []
    for i, labels in enumerate(clip_labels(num_videos, rng)):
        name = f"videos/shapes_{i:03d}.mp4"
        write_mp4(out_dir / name, render_clip(labels, num_frames, size, rng), fps)
        entries.append(ManifestEntry(name, labels))
    manifest = write_manifest(entries, out_dir / "manifest.jsonl")
    vocabulary = write_vocabulary(LABELS, out_dir / "vocabulary.txt")
    split = write_split(
        Split([label for label in LABELS if label not in NOVEL], list(NOVEL)), out_dir / "split.json"
    )
    return manifest, vocabulary, split
