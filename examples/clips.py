"""The app's example clips: toy-world stories rendered with `ovmlv.toyworld` (numpy + PyAV).

Each example is a few 2-second scenes played one after the other, so its timeline has
something to show (a lime moving left, then a tomato growing...), with labels that mix base
nouns, novel nouns (never training labels of the toy model) and motions. The app renders them
into a cache folder at start-up when they are missing (nothing downloaded, nothing binary
committed). ``python -m examples.clips DIR`` renders them by hand.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ovmlv.toyworld import ToyClip, render_scene, scripted_scene, write_clip_mp4

SCENE_FRAMES = 16  # 2 s at 8 fps: one default window per scene
FPS = 8
UPSCALE = 4  # 64 px scenes drawn at 256 px (nearest neighbour), so the player shows them crisply
NOISE = 0.02

Spec = tuple[str, str, str]  # (colour, shape, motion)


@dataclass(frozen=True)
class Example:
    """One example clip: its scenes (a list of objects each) and the labels typed for it."""

    name: str
    scenes: tuple[tuple[Spec, ...], ...]
    labels: str
    seed: int

    def truth(self) -> list[dict[str, bool]]:
        """Per scene (= per 2 s window): which of `labels` are present (nouns and motions)."""
        from ovmlv.toyworld import noun_for

        wanted = [label.strip() for label in self.labels.split(",")]
        rows = []
        for scene in self.scenes:
            present = {noun_for(c, s) for c, s, _ in scene} | {m for _, _, m in scene}
            rows.append({label: label in present for label in wanted})
        return rows


EXAMPLES: tuple[Example, ...] = (
    Example(
        "lime_left_then_tomato_growing.mp4",
        (
            (("green", "circle", "moving left"),),
            (("green", "circle", "moving left"), ("blue", "square", "still")),
            (("red", "circle", "growing"),),
        ),
        "lime, moving left, tomato, growing",
        seed=11,
    ),
    Example(
        "bagel_up_plum_down.mp4",
        (
            (("orange", "ring", "moving up"),),
            (("purple", "circle", "moving down"), ("orange", "ring", "still")),
            (("purple", "circle", "moving down"),),
        ),
        "bagel, moving up, plum, moving down",
        seed=12,
    ),
    Example(
        "cheese_blinking_then_sail_right.mp4",
        (
            (("yellow", "square", "blinking"),),
            (("blue", "triangle", "moving right"),),
            (("blue", "triangle", "moving right"), ("yellow", "square", "shrinking")),
        ),
        "cheese, blinking, sail, moving right",
        seed=13,
    ),
)
# [file name, labels] pairs, in the app's order.
EXAMPLE_CLIPS: list[tuple[str, str]] = [(e.name, e.labels) for e in EXAMPLES]


def render_example(example: Example) -> np.ndarray:
    """uint8 frames [T, 256, 256, 3] of the example's scenes, one after the other."""
    parts = []
    for index, specs in enumerate(example.scenes):
        scene = scripted_scene(example.seed * 100 + index, list(specs), num_frames=SCENE_FRAMES)
        parts.append(render_scene(scene, noise=NOISE, noise_seed=example.seed * 100 + index))
    frames = np.concatenate(parts)
    return frames.repeat(UPSCALE, axis=1).repeat(UPSCALE, axis=2)


def write_example(example: Example, path: Path) -> Path:
    """Write the example as an h264/yuv420p mp4 (browser-playable), atomically."""
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.mp4")  # concurrent start-ups
    clip = ToyClip(frames=render_example(example), objects=[], labels=[])
    write_clip_mp4(clip, partial, fps=FPS)
    partial.replace(path)
    return path


def ensure_example_clips(directory: str | os.PathLike) -> list[list[str]]:
    """Render the example clips into ``directory`` unless present; return [[path, labels], ...]."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    examples = []
    for example in EXAMPLES:
        path = directory / example.name
        if not path.exists():
            write_example(example, path)
        examples.append([str(path), example.labels])
    return examples


if __name__ == "__main__":
    for clip, labels in ensure_example_clips(sys.argv[1] if len(sys.argv) > 1 else "examples/clips"):
        print(f"{clip}\t{labels}")
