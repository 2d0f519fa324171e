"""Motion diagnostics for the toy world: which side keeps "moving left" from "moving right".

Four checks, used for the analysis in checkpoints/toy/README.md:

- `supervised_motion_probe`, the video side alone: on an ovmlv model, train only the temporal
  branches and a head on the 8 motion labels (BCE), then report held-out AP per motion. With a
  free linear head (the default), every motion gets its own direction, so the probe measures
  whether the frozen vision tower lets a temporal branch learn a motion at all. With the label
  anchors as the head (`--head anchors`: e0 of each motion, frozen, with a learned scale and
  per-label bias), it measures how far the video side alone can go toward the directions the
  zero-shot label side offers: the ceiling of a fine-tuning whose label side stays at e0.
- `label_pair_cosines`, the label side alone: the cosine between the two labels of each
  time-reversal pair ("moving left" / "moving right", ...) at every stage of the label encoder.
  When the two labels of a pair are (nearly) one vector, left-moving and right-moving clips get
  the same gradient in fine-tuning (their frame-wise embeddings start out alike too), so neither
  side can start to tell them apart, whatever the video side could learn.

- `side_swap_map`, which side learned what: mAP of base nouns, novel nouns and reversal motions
  with the window embeddings and the label embeddings each taken at alpha 0 (zero-shot) or
  alpha 1 (tuned), on held-out one-window clips.
- `label_gate_sweep`, what the label gate costs and buys: the same groups' mAP with the tuned
  windows and the label embeddings combined at other values of the label gate (0: the anchor
  e0; 1: e_soft alone), so that it shows whether the labels or the windows hold a group back.

    python -m training.toyworld.motion_probe probe runs/toyworld/base --blocks 0,1,2,3,4,5
    python -m training.toyworld.motion_probe probe runs/toyworld/base --head anchors --steps 250
    python -m training.toyworld.motion_probe labels checkpoints/toy
    python -m training.toyworld.motion_probe sides checkpoints/toy
    python -m training.toyworld.motion_probe gates checkpoints/toy --gates 0,0.05,0.3,1
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ovmlv.model import OVMLVModel, combine_label_embeddings
from ovmlv.toyworld import MOTIONS, REVERSAL_MOTIONS, REVERSAL_PAIRS, render_clip
from training.metrics import average_precision

logger = logging.getLogger(__name__)

TRAIN_SEED, TEST_SEED = 1_000_000, 2_000_000  # the pipeline's seed-0 train and test seeds


def motion_clips(
    model: OVMLVModel, seed: int, count: int, size: int = 64, labels: Sequence[str] = MOTIONS
) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` rendered clips as normalised pixels [N, T, 3, S, S] and targets [N, len(labels)].

    Clips are rendered with 2T frames and every other one is kept (the pipeline's windows do
    the same: 16 rendered frames, 8 sampled).
    """
    from ovmlv.classifier import VideoClassifier
    from ovmlv.label_db import LabelDB

    frames_per_window = model.num_frames
    clips = [render_clip(seed + i, num_frames=2 * frames_per_window, size=size) for i in range(count)]
    pixels = VideoClassifier(model, LabelDB(None), name="probe").preprocess(
        np.stack([clip.frames[::2] for clip in clips])
    )
    targets = torch.tensor([[float(m in clip.labels) for m in labels] for clip in clips])
    return pixels.to(model.device, model.dtype), targets.to(model.device)


def encode_windows(model: OVMLVModel, pixels: torch.Tensor, alpha: float) -> torch.Tensor:
    """Window embeddings [N, D] of clips [N, T, 3, S, S] at `alpha`, 64 clips at a time."""
    return torch.cat([model.encode_video(chunk, alpha) for chunk in pixels.split(64)])


class AnchorHead(torch.nn.Module):
    """Logits exp(s) * <window, e0(motion)> + b(motion): the label anchors as a frozen head."""

    def __init__(self, model: OVMLVModel) -> None:
        super().__init__()
        with torch.no_grad():
            self.register_buffer("anchors", model.anchor_label_embeddings(list(MOTIONS)).float())
        self.log_scale = torch.nn.Parameter(model.logit_scale.detach().float().clone())
        self.bias = torch.nn.Parameter(torch.full((len(MOTIONS),), float(model.logit_bias)))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.log_scale.exp() * windows.float() @ self.anchors.T + self.bias


class FreeHead(torch.nn.Linear):
    """A linear head on the window embeddings (x10: unit vectors need a scale)."""

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return super().forward(windows.float() * 10)


def supervised_motion_probe(
    model: OVMLVModel,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    steps: int = 600,
    lr: float = 3e-3,
    gate_lr: float = 5e-2,
    head_lr: float = 1e-2,
    batch_size: int = 16,
    seed: int = 0,
    head: str = "free",
) -> dict[str, float]:
    """Held-out AP per motion of the temporal branches + a head trained on the motions.

    Only `model.temporal` and the head learn (AdamW, weight decay 0.01, constant learning
    rates: `lr` for the branches' weights, `gate_lr` for their gates, `head_lr` for the head);
    the model is left in eval mode, frozen, with its trained branches. `head`: "free" (a linear
    head) or "anchors" (`AnchorHead`: only its scale and biases learn, at `gate_lr`).
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.requires_grad_(False)
    model.temporal.requires_grad_(True)
    pixels, targets = train
    if head == "anchors":  # a scale and biases only: scalars, at the gates' learning rate
        scorer: torch.nn.Module = AnchorHead(model).to(model.device)
        scorer_lr = gate_lr
    elif head == "free":
        with torch.no_grad():
            width = model.encode_video(pixels[:1], 0.0).shape[-1]
        scorer = FreeHead(width, len(MOTIONS)).to(model.device)
        scorer_lr = head_lr
    else:
        raise ValueError(f"head must be 'free' or 'anchors', got {head!r}")
    gates = [branch.gate for branch in model.temporal.branches.values()]
    weights = [p for p in model.temporal.parameters() if all(p is not g for g in gates)]
    groups = [{"params": weights, "lr": lr}, {"params": gates, "lr": gate_lr}]
    optimizer = torch.optim.AdamW(
        groups + [{"params": scorer.parameters(), "lr": scorer_lr}], weight_decay=0.01
    )
    model.train()
    for step in range(steps):
        batch = torch.randint(0, len(pixels), (batch_size,), generator=generator)
        logits = scorer(model.encode_video(pixels[batch], 1.0))
        loss = F.binary_cross_entropy_with_logits(logits, targets[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step + 1) % 100 == 0:
            logger.info("motion probe step %d/%d loss %.3f", step + 1, steps, loss.item())
    model.eval().requires_grad_(False)
    test_pixels, test_targets = test
    with torch.no_grad():
        windows = encode_windows(model, test_pixels, 1.0)
        scores = scorer(windows)
    return dict(zip(MOTIONS, average_precision(scores, test_targets).tolist(), strict=True))


@torch.no_grad()
def side_swap_map(
    model: OVMLVModel, pixels: torch.Tensor, targets: torch.Tensor, labels: Sequence[str]
) -> dict[str, float]:
    """mAP of `labels` with each side at its zero-shot end (alpha 0) or tuned (alpha 1).

    Keys "video a / labels b": window embeddings encoded at alpha a, label embeddings at
    alpha b. When "video 1 / labels 0" matches "video 1 / labels 1", the trained label side adds
    nothing: everything the model learned is in the video encoder, aligned to the anchors.
    """
    return {key: float(ap.nanmean()) for key, ap in _side_swap_ap(model, pixels, targets, labels).items()}


def _side_swap_ap(
    model: OVMLVModel, pixels: torch.Tensor, targets: torch.Tensor, labels: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Per-label AP [L] for each (video alpha, label alpha); windows and labels encoded once each."""
    windows = {a: encode_windows(model, pixels, a) for a in (0.0, 1.0)}
    label_rows = {a: model.encode_labels(list(labels), a) for a in (0.0, 1.0)}
    return {
        f"video {va:.0f} / labels {la:.0f}": average_precision(windows[va] @ label_rows[la].T, targets)
        for va in (0.0, 1.0)
        for la in (0.0, 1.0)
    }


def pair_cosines(rows: torch.Tensor, index: dict[str, int], pairs) -> dict[str, float]:
    """The cosine between rows[index[a]] and rows[index[b]] (each row flattened), keyed "a / b"."""
    flat = F.normalize(rows.flatten(1).float(), dim=-1)
    return {f"{a} / {b}": float(flat[index[a]] @ flat[index[b]]) for a, b in pairs}


@torch.no_grad()
def label_pair_cosines(
    model: OVMLVModel, pairs: Sequence[tuple[str, str]] = REVERSAL_PAIRS
) -> dict[str, dict[str, float]]:
    """stage -> "a / b" -> cosine, for the stages of the label encoder (see the module docstring).

    Stages: "llm_states" (the K query states, flattened), "soft_tokens", "e_soft", "e0" (the
    anchor, `labels.anchor`) and "label" (what `encode_labels` returns at alpha 1).
    """
    labels = sorted({label for pair in pairs for label in pair})
    index = {label: i for i, label in enumerate(labels)}
    encoder = model.label_encoder
    stages: dict[str, torch.Tensor] = {}
    if hasattr(encoder, "llm_states"):  # the no-LLM ablation has learned context tokens instead
        states = encoder.llm_states(model.llm, labels)
        stages["llm_states"] = states
        stages["soft_tokens"] = encoder.soft_tokens(states)
    stages["e_soft"] = model.soft_embedding(labels)
    stages["e0"] = model.anchor_label_embeddings(labels)
    stages["label"] = model.encode_labels(labels)
    return {name: pair_cosines(rows, index, pairs) for name, rows in stages.items()}


@torch.no_grad()
def label_gate_sweep(
    model: OVMLVModel,
    pixels: torch.Tensor,
    targets: torch.Tensor,
    labels: Sequence[str],
    gates: Sequence[float],
) -> dict[str, torch.Tensor]:
    """Per-label AP [L] with the tuned windows (alpha 1) and the labels at each label gate value.

    Keys "gate g": label embeddings normalise(e0 + g * (e_soft - e0)) (DESIGN §2.2); g = 0 is the
    anchor, the model's own tanh(h) is what it scores with, 1 is e_soft alone.
    """
    windows = encode_windows(model, pixels, 1.0)
    anchors = model.anchor_label_embeddings(list(labels))
    soft = model.soft_embedding(list(labels))
    return {
        f"gate {gate:g}": average_precision(
            windows @ combine_label_embeddings(anchors, soft, gate).T, targets
        )
        for gate in gates
    }


REPORT_GROUPS = ("base nouns", "novel nouns", "reversal motions")


def _group_report(model: OVMLVModel, count: int, per_label_ap) -> dict[str, dict[str, float]]:
    """group -> key -> mean AP, for `per_label_ap(model, pixels, targets, labels)` on `count` test clips."""
    from ovmlv.toyworld import BASE_NOUNS, NOVEL_NOUNS

    groups = dict(zip(REPORT_GROUPS, (BASE_NOUNS, NOVEL_NOUNS, REVERSAL_MOTIONS), strict=True))
    every = [label for labels in groups.values() for label in labels]
    pixels, targets = motion_clips(model, TEST_SEED, count, labels=every)
    per_label = per_label_ap(model, pixels, targets, every)  # one encode of the clips and labels
    report, start = {}, 0
    for name, labels in groups.items():
        span = slice(start, start + len(labels))
        start += len(labels)
        report[name] = {key: round(float(ap[span].nanmean()), 4) for key, ap in per_label.items()}
    return report


def side_swap_report(model: OVMLVModel, count: int) -> dict[str, dict[str, float]]:
    """`side_swap_map` for base nouns, novel nouns and reversal motions on `count` test clips."""
    return _group_report(model, count, _side_swap_ap)


def label_gate_report(model: OVMLVModel, count: int, gates: Sequence[float]) -> dict[str, dict[str, float]]:
    """`label_gate_sweep` for base nouns, novel nouns and reversal motions on `count` test clips."""
    return _group_report(
        model, count, lambda m, pixels, targets, labels: label_gate_sweep(m, pixels, targets, labels, gates)
    )


def _block_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected block numbers like 0,1,2, got {text!r}") from None


def _gate_list(text: str) -> list[float]:
    try:
        gates = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected gate values like 0,0.05,1, got {text!r}") from None
    if not all(0.0 <= gate <= 1.0 for gate in gates):
        raise argparse.ArgumentTypeError(f"gate values must be in [0, 1], got {text!r}")
    return gates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.toyworld.motion_probe", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    probe = sub.add_parser("probe", help="train temporal branches + a linear head on the motions")
    probe.add_argument("model", help="an ovmlv checkpoint directory (e.g. OUT/base of a toy-world run)")
    probe.add_argument(
        "--blocks",
        type=_block_list,
        default=None,
        help="temporal blocks, e.g. 0,1,2,3,4,5 (default: the model's)",
    )
    probe.add_argument("--steps", type=int, default=600)
    probe.add_argument(
        "--head", choices=("free", "anchors"), default="free", help="a free linear head, or the label anchors"
    )
    probe.add_argument("--lr", type=float, default=3e-3)
    probe.add_argument("--train-clips", type=int, default=1200)
    probe.add_argument("--test-clips", type=int, default=400)
    labels = sub.add_parser("labels", help="cosines between the labels of each time-reversal pair")
    labels.add_argument("model", help="an ovmlv checkpoint directory or preset")
    sides = sub.add_parser("sides", help="mAP with each side zero-shot or tuned (which side learned what)")
    sides.add_argument("model", help="a fine-tuned ovmlv checkpoint directory or preset")
    sides.add_argument("--clips", type=int, default=300, help="held-out one-window clips")
    gates = sub.add_parser("gates", help="mAP with the tuned windows and the labels at other label gates")
    gates.add_argument("model", help="a fine-tuned ovmlv checkpoint directory or preset")
    gates.add_argument(
        "--gates", type=_gate_list, default=[0.0, 0.05, 0.1, 0.3, 0.5, 1.0], help="e.g. 0,0.3,1"
    )
    gates.add_argument("--clips", type=int, default=300, help="held-out one-window clips")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    from ovmlv.errors import OvmlvError
    from ovmlv.factory import create_model

    overrides = {"temporal": {"blocks": args.blocks}} if args.command == "probe" and args.blocks else None
    try:
        model = create_model(args.model, device="cpu", overrides=overrides)
    except (OvmlvError, OSError, ValueError) as exc:
        print(f"error: cannot load {args.model}: {exc}", file=sys.stderr)
        return 2
    if args.command == "labels":
        print(json.dumps(label_pair_cosines(model), indent=2))
        return 0
    if args.command == "sides":
        print(json.dumps(side_swap_report(model, args.clips), indent=2))
        return 0
    if args.command == "gates":
        print(json.dumps(label_gate_report(model, args.clips, args.gates), indent=2))
        return 0
    train = motion_clips(model, TRAIN_SEED, args.train_clips)
    test = motion_clips(model, TEST_SEED, args.test_clips)
    result = supervised_motion_probe(model, train, test, steps=args.steps, lr=args.lr, head=args.head)
    print(json.dumps({k: round(v, 3) for k, v in result.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
