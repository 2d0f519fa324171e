"""Where a toy model's reversal motions go wrong, on the held-out test clips (the table's).

For each reversal motion, the clips where it is present are grouped by where the moving object
ends (inside one of the toy CLIP's clear places, or near the midline where its captions never
said "on the left") and by how many objects the clip shows; the clips where it is absent, by
whether an object ends where the motion ends. A present motion counts as missed when it scores
below the 90th percentile of its scores on the clips where it is absent, and an absent one as a
false alarm at or above it. The absent clips that score highest are listed with what their
objects do. This is the analysis behind "Why the reversal motions miss 0.90" in
checkpoints/toy/README.md.

    python -m training.toyworld.motion_errors checkpoints/toy [--seed 0] [--clips 400]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ovmlv.toyworld import REVERSAL_MOTIONS, ToyObject, object_state, sample_scene
from ovmlv.toyworld.vocabulary import MOVING_DOWN, MOVING_LEFT, MOVING_RIGHT, MOVING_UP

from .captions import PLACE_CLEAR

# the coordinate where each place motion ends (0: x, 1: y) and the side of the midline it ends on
END_AXIS = {MOVING_LEFT: (0, -1), MOVING_RIGHT: (0, 1), MOVING_UP: (1, -1), MOVING_DOWN: (1, 1)}
MISS_QUANTILE = 0.9


def ends_in_clear_place(obj: ToyObject, num_frames: int, size: int, motion: str | None = None) -> bool | None:
    """Whether `obj` ends beyond PLACE_CLEAR of the midline on the side where `motion` (default: its
    own) ends, i.e. where a caption says "on the left" for moving left (None: not a place motion)."""
    motion = motion or obj.motion
    if motion not in END_AXIS:
        return None
    axis, side = END_AXIS[motion]
    end = object_state(obj, num_frames - 1, num_frames)[axis] / size
    return side * (end - 0.5) > PLACE_CLEAR


def summarise_group(scores: Sequence[float], bar: float, absent: bool) -> dict:
    """n, mean score, and how many are on the wrong side of `bar`: below it for clips where the
    motion is present ("missed"), at or above it for clips where it is absent ("above")."""
    wrong = sum((s >= bar) if absent else (s < bar) for s in scores)
    return {"n": len(scores), "mean": float(np.mean(scores)), "above" if absent else "missed": int(wrong)}


def motion_errors(
    scores: np.ndarray, scenes: Sequence[Sequence[ToyObject]], num_frames: int = 16, size: int = 64
) -> dict[str, dict]:
    """Per reversal motion: its clips grouped by layout, and the absent clips that score highest
    (a motion present in every clip or in none is left out).

    Args:
        scores: [N, 6] video-level probabilities of REVERSAL_MOTIONS, in that order.
        scenes: the N clips' objects.
        num_frames, size: the clips' length in frames and side in pixels.
    """
    out = {}
    for column, motion in enumerate(REVERSAL_MOTIONS):
        score = scores[:, column]
        present = np.array([any(o.motion == motion for o in objects) for objects in scenes])
        if present.all() or not present.any():  # no bar to draw, or nothing to miss (a few clips)
            continue
        bar = float(np.quantile(score[~present], MISS_QUANTILE))
        groups: dict[str, list[float]] = {}
        for i in np.flatnonzero(present):
            objects = scenes[i]
            keys = [f"{len(objects)} object{'s' if len(objects) > 1 else ''}"]
            clear = ends_in_clear_place(next(o for o in objects if o.motion == motion), num_frames, size)
            if clear is not None:
                keys.append("ends in a clear place" if clear else "ends near the midline")
            for key in keys:
                groups.setdefault(key, []).append(float(score[i]))
        absent = np.flatnonzero(~present)
        if motion in END_AXIS:  # absent clips with an object where the motion ends (its anchor's place)
            for i in absent:
                placed = any(ends_in_clear_place(o, num_frames, size, motion) for o in scenes[i])
                key = "absent, an object in that place" if placed else "absent, none in that place"
                groups.setdefault(key, []).append(float(score[i]))
        top = absent[np.argsort(-score[absent], kind="stable")[:5]]
        out[motion] = {
            "bar": bar,
            "present": int(present.sum()),
            "missed": int((score[present] < bar).sum()),
            "groups": {
                key: summarise_group(groups[key], bar, absent=key.startswith("absent"))
                for key in sorted(groups, key=lambda k: (k.startswith("absent"), k))  # present clips first
            },
            "top_absent": [(float(score[i]), sorted(o.motion for o in scenes[i])) for i in top.tolist()],
        }
    return out


def score_test_clips(model: str, seed: int, clips: int) -> tuple[np.ndarray, list[list[ToyObject]]]:
    """Render the plan's test clips, score the reversal motions with `model`, and return their scenes."""
    from ovmlv.classifier import VideoClassifier
    from ovmlv.toyworld import render_dataset
    from training.data.manifest import read_manifest

    from .pipeline import ToyWorldPlan

    test_seed = ToyWorldPlan(seed=seed).test_seed
    classifier = VideoClassifier.from_pretrained(model, device="cpu", label_db_path=None)
    with tempfile.TemporaryDirectory() as folder:
        entries = read_manifest(render_dataset(Path(folder), clips, seed=test_seed))
        scores = np.stack(
            [classifier.classify(entry.video, list(REVERSAL_MOTIONS)).video_scores for entry in entries]
        )
    scenes = [list(sample_scene(test_seed + i).objects) for i in range(clips)]
    return scores, scenes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.toyworld.motion_errors", description=__doc__.splitlines()[0]
    )
    parser.add_argument("model", help="a checkpoint directory or preset name (e.g. checkpoints/toy)")
    parser.add_argument(
        "--seed", type=int, default=0, help="the plan's seed (test clips from seed*1e7 + 2e6)"
    )
    parser.add_argument("--clips", type=int, default=400)
    args = parser.parse_args(argv)
    scores, scenes = score_test_clips(args.model, args.seed, args.clips)
    for motion, row in motion_errors(scores, scenes).items():
        print(f"{motion}: {row['missed']}/{row['present']} present clips below {row['bar']:.2f}")
        for key, group in row["groups"].items():
            counted = f"{group['missed']} missed" if "missed" in group else f"{group['above']} above the bar"
            print(f"    {key}: {group['n']} clips, mean {group['mean']:.2f}, {counted}")
        for score, motions in row["top_absent"]:
            print(f"    absent, scored {score:.2f}: {', '.join(motions)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
