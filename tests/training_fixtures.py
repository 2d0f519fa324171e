"""Hand-written annotation files for the training-data tests, with their expected conversions.

The Charades rows follow the real CSV's columns; they include an empty ``actions`` cell, quoted
fields holding commas, semicolons and escaped quotes, and an action class listed twice.
"""

from __future__ import annotations

from pathlib import Path

import torch

CHARADES_CLASSES = """\
c000 Holding some clothes
c001 Putting clothes somewhere
c002 Taking some clothes from somewhere
c003 Throwing clothes somewhere
"""

CHARADES_CSV = """\
id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length
46GP8,HR43,Kitchen,6,7,Yes,"A person cooking on a stove, then watching out a window.",food;stove;window,"A person cooks food on a stove, then looks out a window.",c002 11.90 21.20;c000 0.00 12.60;c002 25.00 30.00,24.83
N11GT,0KZ7,Stairs,6,7,Yes,"One person opens up a folded blanket, then throws it.",blanket;clothes,"A person walks down stairs, holding clothes.",,31.75
0IH69,6RE8,Bedroom,6,5,Yes,"A person is putting ""socks"", then a shirt, away",clothes,"A person puts clothes away; then throws a shirt.",c003 4.20 8.00;c001 1.00 5.50,20.38
"""

# What charades_to_manifest must write for the files above, with videos in "videos/" next to
# the manifest: one line per video, labels in class-id order, temporal annotations dropped.
EXPECTED_CHARADES_MANIFEST = [
    '{"video": "videos/46GP8.mp4", "labels": ["Holding some clothes", "Taking some clothes from somewhere"]}',
    '{"video": "videos/N11GT.mp4", "labels": []}',
    '{"video": "videos/0IH69.mp4", "labels": ["Putting clothes somewhere", "Throwing clothes somewhere"]}',
]
EXPECTED_CHARADES_VOCABULARY = [
    "Holding some clothes",
    "Putting clothes somewhere",
    "Taking some clothes from somewhere",
    "Throwing clothes somewhere",
]

GENERIC_CSV = """\
path,labels
a.mp4,dog;cat
sub/b.mp4,cat | bird
c.mp4,
"""


def write_charades_files(folder: Path) -> tuple[Path, Path]:
    """Write the Charades CSV and classes file above into ``folder``; return (csv, classes)."""
    csv_path, classes_path = folder / "Charades_v1_test.csv", folder / "Charades_v1_classes.txt"
    csv_path.write_text(CHARADES_CSV, encoding="utf-8")
    classes_path.write_text(CHARADES_CLASSES, encoding="utf-8")
    return csv_path, classes_path


def reference_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """AP of one class by its definition: the mean, over positives, of the precision at each one's rank.

    Assumes no tied scores.
    """
    order = torch.argsort(scores, descending=True)
    hits = targets[order].gt(0.5).double()
    precision_at_rank = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=torch.float64)
    return float((precision_at_rank * hits).sum() / hits.sum())


def reference_ece(probs: list[float], targets: list[int], bins: int) -> float:
    """ECE by its definition, with bins (0, 1/bins], ..., and probability 0 in the first bin."""
    total, ece = len(probs), 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [i for i, p in enumerate(probs) if (low < p <= high) or (b == 0 and p == 0)]
        if members:
            confidence = sum(probs[i] for i in members) / len(members)
            accuracy = sum(targets[i] for i in members) / len(members)
            ece += len(members) / total * abs(confidence - accuracy)
    return ece
