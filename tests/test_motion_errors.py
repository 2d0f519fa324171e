"""training.toyworld.motion_errors: the grouping of a model's reversal-motion misses, on hand-made scenes."""

from __future__ import annotations

import numpy as np
import pytest

from ovmlv.toyworld import ToyObject
from training.toyworld.motion_errors import REVERSAL_MOTIONS, ends_in_clear_place, motion_errors


def thing(motion: str, x: float = 32.0, y: float = 32.0, travel: float = 0.0) -> ToyObject:
    return ToyObject("red", "circle", "tomato", motion, x=x, y=y, travel=travel)


def test_where_a_move_ends_decides_its_place():
    # moving left ends at x (the leftmost end); "clear" is beyond 0.15 of the frame from the midline
    assert ends_in_clear_place(thing("moving left", x=10, travel=30), 16, 64) is True
    assert ends_in_clear_place(thing("moving left", x=24, travel=30), 16, 64) is False  # 0.375 of 64
    assert ends_in_clear_place(thing("moving right", x=20, travel=30), 16, 64) is True  # ends at 50
    assert ends_in_clear_place(thing("moving down", y=5, travel=30), 16, 64) is False  # ends at 35
    assert ends_in_clear_place(thing("growing"), 16, 64) is None


def test_misses_are_counted_against_the_absent_clips_scores():
    scenes = [
        [thing("moving left", x=10, travel=30)],  # present, clear
        [thing("moving left", x=26, travel=30), thing("still"), thing("blinking")],  # present, midline
        [thing("still")],
        [thing("growing"), thing("moving down", y=5, travel=30)],
        [thing("blinking")],
        [thing("still", x=8)],  # absent, a still object on the left
    ]
    scores = np.full((6, len(REVERSAL_MOTIONS)), 0.5)
    left = REVERSAL_MOTIONS.index("moving left")
    scores[:, left] = [0.9, 0.2, 0.1, 0.6, 0.3, 0.7]
    row = motion_errors(scores, scenes)["moving left"]
    bar = np.quantile([0.1, 0.6, 0.3, 0.7], 0.9)  # 0.67
    assert row["bar"] == pytest.approx(bar) and row["present"] == 2 and row["missed"] == 1
    assert row["groups"] == {
        "1 object": {"n": 1, "mean": 0.9, "missed": 0},
        "3 objects": {"n": 1, "mean": 0.2, "missed": 1},
        "ends in a clear place": {"n": 1, "mean": 0.9, "missed": 0},
        "ends near the midline": {"n": 1, "mean": 0.2, "missed": 1},
        # clip 3's object moving down ends at x = 32, clip 4's blinking one too: none is on the left
        "absent, none in that place": {"n": 3, "mean": pytest.approx(1.0 / 3), "above": 0},
        "absent, an object in that place": {"n": 1, "mean": 0.7, "above": 1},  # the still one, x = 8
    }
    assert row["top_absent"][:2] == [(0.7, ["still"]), (0.6, ["growing", "moving down"])]
    assert [score for score, _ in row["top_absent"]] == [0.7, 0.6, 0.3, 0.1]
    # growing: present once (clip 3); every score 0.5, so nothing is below the bar
    assert motion_errors(scores, scenes)["growing"]["missed"] == 0
    # shrinking is in none of the clips: nothing to miss, so it is left out
    assert "shrinking" not in motion_errors(scores, scenes)
