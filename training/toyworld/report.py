"""The toy world's ablation table: mAP per label group from training.evaluate's per-class AP."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ovmlv.toyworld import BASE_NOUNS, MOTIONS, NOVEL_NOUNS, REVERSAL_MOTIONS

GROUPS: dict[str, tuple[str, ...]] = {
    "base_nouns": BASE_NOUNS,
    "novel_nouns": NOVEL_NOUNS,
    "motions": MOTIONS,
    "reversal_motions": REVERSAL_MOTIONS,
}
COLUMNS = ("base_nouns", "novel_nouns", "harmonic_mean", "motions", "reversal_motions")
HEADERS = ("base nouns", "novel nouns", "HM (base, novel)", "all motions", "reversal motions")
TARGETS = {
    "novel_nouns": "full method >= 0.80 and >= 0.30 above zero-shot label text",
    "reversal_motions": "full method >= 0.90; near chance without the temporal branch",
    "base_nouns": "full method >= 0.90",
}


def group_map(per_class_ap: dict[str, float | None], labels: tuple[str, ...]) -> float | None:
    """Mean AP over the group's labels that have positives in the test set (None if none do)."""
    values = [per_class_ap[label] for label in labels if per_class_ap.get(label) is not None]
    return sum(values) / len(values) if values else None


def harmonic(a: float | None, b: float | None) -> float | None:
    """Harmonic mean of two mAPs (0 if either is 0, None if either is missing)."""
    if a is None or b is None:
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def summarise(systems: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """{system: {column: mAP}} for the table."""
    table = {}
    for name, report in systems.items():
        row = {group: group_map(report["per_class_ap"], labels) for group, labels in GROUPS.items()}
        row["harmonic_mean"] = harmonic(row["base_nouns"], row["novel_nouns"])
        table[name] = row
    return table


def chance_levels(manifest: str | Path) -> dict[str, float]:
    """Mean label frequency per group on the test manifest: the mAP of a random scorer."""
    entries = [json.loads(line) for line in Path(manifest).read_text(encoding="utf-8").splitlines() if line]
    out = {}
    for group, labels in GROUPS.items():
        rates = [sum(label in e["labels"] for e in entries) / max(1, len(entries)) for label in labels]
        out[group] = sum(rates) / len(rates)
    out["harmonic_mean"] = harmonic(out["base_nouns"], out["novel_nouns"]) or 0.0
    return out


def markdown_table(table: dict[str, dict[str, float | None]], chance: dict[str, float] | None = None) -> str:
    """The table as GitHub markdown (mAP x 100)."""

    def cell(value: float | None) -> str:
        return (
            "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"
        )

    lines = ["| system | " + " | ".join(HEADERS) + " |", "|---|" + "---:|" * len(HEADERS)]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(cell(row[c]) for c in COLUMNS) + " |")
    if chance:
        lines.append("| *chance (label frequency)* | " + " | ".join(cell(chance[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def overridden(overrides: list[str]) -> str:
    """The fine-tuning overrides of the command line, as a clause of the README's seeds sentence."""
    if not overrides:
        return ""
    return "; fine-tuning with " + ", ".join(f"`{item}`" for item in overrides) + " on top of `toyworld.yaml`"


def write_checkpoint_readme(path: Path, report: dict[str, Any]) -> Path:
    """checkpoints/toy/README.md: what the model is, the table, the seeds and the exact command."""
    chance = chance_levels(report["data"]["test"])
    plan = report["plan"]
    timings = report["timings"]
    threshold = report["threshold"]
    sizes = report["pretrain"]["sizes_bytes"]
    text = f"""# toy: the toy world's trained ovmlv model

Trained from nothing on a CPU by `python -m training.toyworld` (DESIGN §6): a toy CLIP that saw
single frames with captions of colours, shapes, places and sizes only ("a red circle on the
left and a big blue square"; never a noun or a motion word), a toy LLM that read definitions of
every noun and motion ("a lime is a green circle", "when something is moving left, it ends on
the left"), then open-vocabulary fine-tuning with `training/` on clips labelled with base nouns
and motions only. Novel nouns ({", ".join(GROUPS["novel_nouns"])})
never appear as training labels.

Load it with the `toy` preset (`ovmlv predict clip.mp4 --model toy --labels "lime, moving left"`,
`python app.py --model toy`) or as a directory (`VideoClassifier.from_pretrained("checkpoints/toy")`).

| file | what |
|---|---|
| `config.json`, `model.safetensors` | the ovmlv checkpoint: trained temporal branch, soft-attribute encoder, gates, scale and bias |
| `open_clip/` | the toy CLIP (open_clip `local-dir:` format, {sizes["open_clip"] / 1e6:.1f} MB) |
| `llm/` | the toy LLM (Llama-style, `save_pretrained` + `tokenizer.json`, {sizes["llm"] / 1e6:.1f} MB) |
| `report.json` | every number below, per-class AP, the pretraining checks, timings |

## Ablation: mAP x 100 on {report["num_test_clips"]} held-out test clips

{markdown_table(report["table"], chance)}

Systems: zero-shot label text = the template "a video of <label>" through the toy CLIP;
zero-shot + LLM attributes = template + the toy LLM's attribute phrases (DESIGN §2.3), no
training; full method = temporal branch + LLM soft attributes, fine-tuned, with the label
gate anchored at the zero-shot attributes (`labels.anchor: attributes`: alpha = 0 gives that
system back exactly); the two ablations are fine-tuned the same way with the temporal branch
removed, or with the LLM replaced by learned context tokens shared by all labels (and the
plain template as the anchor: no LLM anywhere). Reversal motions: moving left/right, up/down,
growing/shrinking (time reversals of each other). Chance = how often a label is present.

Targets: {"; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in TARGETS.items())}.

## Default threshold

`config.json` sets this model's default threshold (`model.threshold`, used by `Result.segments`,
the CLI's `--threshold` and the app's slider) to **{threshold["value"]:.2f}**: the threshold with
the best micro-F1 (every clip and label one prediction; {threshold["best_f1"]:.3f}) on
{threshold["val_clips"]} held-out validation clips (seed {plan["seed"] * 10_000_000 + 3_000_000}),
scored on base nouns and motions only, with the bfloat16 weights the app and the CLI load. The
test set takes no part in it. A threshold below 0.5
is what the best F1 asks for: a window where a label is likely, but not certain, is worth marking.

## Reproduce

```
{report["command"]}
```

Seeds: everything derives from seed {plan["seed"]} (toy CLIP {plan["clip"]["seed"]}, toy LLM
{plan["llm"]["seed"]}, fine-tuning clips from {plan["seed"] * 10_000_000 + 1_000_000}, test clips
from {plan["seed"] * 10_000_000 + 2_000_000}){overridden(plan["finetune_overrides"])}. {plan["train_clips"]} training clips,
{plan["finetune_steps"]} fine-tuning steps per variant. The whole run took
{timings["total_s"] / 60:.1f} min on {report["threads"]} CPU threads (pretraining
{timings["pretrain_s"] / 60:.1f} min). On one machine a rerun gives the same base models. On
another, float summation order changes the pretrained bits, and the fine-tuned numbers then move
by a few points (checkpoints/toy/README.md, "Two base models from one command").
"""
    path.write_text(text, encoding="utf-8")
    return path
