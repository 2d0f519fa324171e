"""Done-means stories: many clips like the app's first example, each judged as a user would judge it.

A story is three 2-second scenes: a novel noun doing a motion alone, then the same beside a still
base-noun object, then a base noun doing another motion. The user types the novel noun and the
motion. The story is right when both labels cross the model's default threshold exactly in the
windows where they are present (the app's segments). The app's example clips are three stories of
this kind with fixed layouts; drawing many layouts measures a rate instead of letting one layout
decide (checkpoints/toy/README.md).

    python -m training.toyworld.stories checkpoints/toy [--count 40] [--seed 21]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ovmlv.toyworld import (
    BASE_NOUNS,
    MOTIONS,
    NOVEL_NOUNS,
    ToyClip,
    render_scene,
    scripted_scene,
    write_clip_mp4,
)
from ovmlv.toyworld.vocabulary import NOUN_BY_NAME

STORY_MOTIONS = tuple(m for m in MOTIONS if m != "still")  # the typed motion; "still" is the bystander
UPSCALE = 4  # drawn at 256 px, as the app's example clips
NOISE = 0.02


@dataclass(frozen=True)
class Story:
    """One story clip, the two labels typed for it, and where each is present (per window)."""

    path: Path
    labels: tuple[str, str]
    present: dict[str, tuple[bool, ...]]


def make_stories(folder: Path, count: int = 40, seed: int = 21) -> list[Story]:
    """Render `count` stories into `folder` (mp4, 8 fps), deterministically from `seed`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    stories = []
    for k in range(count):
        novel = NOUN_BY_NAME[NOVEL_NOUNS[rng.integers(len(NOVEL_NOUNS))]]
        bystander, last = (NOUN_BY_NAME[BASE_NOUNS[i]] for i in rng.integers(len(BASE_NOUNS), size=2))
        motion = STORY_MOTIONS[rng.integers(len(STORY_MOTIONS))]
        others = [m for m in STORY_MOTIONS if m != motion]
        scenes = [
            [(novel.colour, novel.shape, motion)],
            [(novel.colour, novel.shape, motion), (bystander.colour, bystander.shape, "still")],
            [(last.colour, last.shape, others[rng.integers(len(others))])],
        ]
        parts = []
        for index, specs in enumerate(scenes):
            scene_seed = seed * 100_000 + 10 * k + index
            parts.append(render_scene(scripted_scene(scene_seed, specs), noise=NOISE, noise_seed=scene_seed))
        frames = np.concatenate(parts).repeat(UPSCALE, axis=1).repeat(UPSCALE, axis=2)
        path = folder / f"story_{k:03d}.mp4"
        write_clip_mp4(ToyClip(frames=frames, objects=[], labels=[]), path, fps=8)
        present = {novel.name: (True, True, False), motion: (True, True, False)}
        stories.append(Story(path, (novel.name, motion), present))
    return stories


def judge_stories(classifier, stories: list[Story]) -> dict:
    """How many stories (and of them, nouns and motions) the classifier marks exactly right."""
    right = {"stories": 0, "nouns": 0, "motions": 0}
    missed_motions: dict[str, int] = {}
    for story in stories:
        result = classifier.classify(story.path, list(story.labels))
        marked = result.timeline >= np.float32(classifier.threshold)
        good = [tuple(marked[:, c].tolist()) == story.present[label] for c, label in enumerate(result.labels)]
        right["nouns"] += good[0]
        right["motions"] += good[1]
        right["stories"] += all(good)
        if not good[1]:
            missed_motions[story.labels[1]] = missed_motions.get(story.labels[1], 0) + 1
    return {"count": len(stories), "right": right, "missed_motions": missed_motions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.toyworld.stories", description=__doc__.splitlines()[0]
    )
    parser.add_argument("model", help="a checkpoint directory or preset name (e.g. checkpoints/toy)")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--out", type=Path, default=Path("runs/stories"), help="where the clips are written")
    args = parser.parse_args(argv)
    from ovmlv.classifier import VideoClassifier

    classifier = VideoClassifier.from_pretrained(args.model, device="cpu", label_db_path=None)
    result = judge_stories(classifier, make_stories(args.out, args.count, args.seed))
    right, count = result["right"], result["count"]
    print(
        f"{args.model} (threshold {classifier.threshold:.2f}): stories right {right['stories']}/{count}, "
        f"nouns {right['nouns']}/{count}, motions {right['motions']}/{count}; "
        f"missed motions {result['missed_motions']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
