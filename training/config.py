"""TrainConfig: every knob of a fine-tuning run, filled from YAML files plus `key=value` overrides.

    cfg = load_config(["training/configs/smoke.yaml"], ["run_dir=/tmp/run", "optim.lr=3e-4"])

A YAML file may start from others with `inherit: base.yaml` (paths relative to that file);
later files and overrides win. Override keys are dotted paths (`loss.distill_weight=0.5`) and
values are parsed as YAML (`model.overrides={llm: {quantization: 4bit}}`). Unknown keys and
wrong types are an error that names the key (and, for a key, what is allowed). Data paths are used as given (relative paths
are relative to the working directory, normally the repository root).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovmlv.config import dataclass_from_dict
from ovmlv.config import merge_overrides as deep_merge
from ovmlv.errors import ConfigError

INHERIT_KEY = "inherit"
MIXED_PRECISION_MODES = ("auto", "no", "bf16", "fp16")
LOSS_KINDS = ("bce", "asymmetric")
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class TrainConfigError(ConfigError):
    """A training config file or override is invalid; the message names the key."""


@dataclass
class ModelSection:
    """Which model to fine-tune and which of its parts train."""

    name: str = "tiny-clip"  # preset, checkpoint directory or hf-hub:org/repo to start from
    pretrained: bool = True  # load the base CLIP weights (False: random weights of the same shape)
    overrides: dict[str, Any] = field(default_factory=dict)  # merged into the model config
    train_vision_tower: bool = False  # also fine-tune the CLIP vision tower (at optim.vision_lr)
    gradient_checkpointing: bool = False  # recompute LLM activations in backward (less memory)


@dataclass
class DataSection:
    """The training data: a manifest, its vocabulary and the base/novel split."""

    train_manifest: str | None = None  # JSONL manifest (training/data/manifest.py)
    vocabulary: str | None = None  # one label per line, in class order
    split: str | None = None  # JSON {"base": [...], "novel": [...]}; None: every label is base
    eval_manifest: str | None = None  # evaluated with training.evaluate at the end (None: skip)
    eval_baselines: list[str] = field(default_factory=lambda: ["none", "zero-shot"])  # systems evaluated
    window_s: float = 2.0  # seconds per training window
    num_workers: int = 4  # DataLoader worker processes per training process (at most one per usable CPU)
    frame_cache_mb: float = 0.0  # decoded windows kept in memory (only useful with num_workers 0); 0: none
    time_reversal_p: float = 0.0  # training windows played backwards, with time_reversal_pairs swapped
    # in their targets; every label not in a pair must read the same backwards (an object, a colour)
    time_reversal_pairs: list[list[str]] = field(default_factory=list)  # [[moving left, moving right], ...]
    synthetic_clips: int = 0  # > 0: generate this many synthetic clips into run_dir/data and train on them
    synthetic_eval_clips: int = 0  # > 0: also generate an evaluation set (replaces eval_manifest)


@dataclass
class OptimSection:
    """AdamW with linear warmup then cosine decay."""

    lr: float = 1e-3  # peak learning rate of the adapters (temporal branches, label encoder, a, b)
    vision_lr: float = 1e-5  # peak learning rate of the vision tower when model.train_vision_tower
    scalar_lr: float | None = None  # peak learning rate of the gates, logit scale and bias (None: lr)
    label_gate_min: float | None = None  # after each step keep tanh(label gate) >= this (None: no floor)
    label_gate_from: float | None = None  # hold tanh(label gate) on a line from this down to label_gate_min
    label_gate_hold: float = 0.0  # share of max_steps that label_gate_from holds before its line starts
    weight_decay: float = 0.05  # for weight matrices; never gates, biases, norms, tables, prefix/queries
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW betas
    eps: float = 1e-8  # AdamW epsilon
    warmup_steps: int = 500  # linear warmup from 0 to the peak
    min_lr_ratio: float = 0.01  # the cosine ends at this fraction of the peak
    grad_clip: float = 1.0  # max global gradient norm (0: no clipping)


@dataclass
class LossSection:
    """Classification loss on base labels plus distillation toward the frozen zero-shot model."""

    kind: str = "bce"  # bce | asymmetric
    num_negatives: int = 64  # base-label negatives sampled per step (< 0: all); all positives always kept
    distill_weight: float = 1.0  # lambda of lambda * (1 - cos), applied to windows and to labels
    label_distill_weight: float | None = None  # lambda for the labels alone (null: distill_weight)
    soft_weight: float = 0.0  # weight of a second classification loss scored with e_soft alone (gate open)
    label_weights: dict[str, float] = field(default_factory=dict)  # base label -> weight of its terms in the
    # classification losses (others weigh 1), scaled to a mean of 1 over each step's labels; {}: unweighted
    asl_gamma_neg: float = 4.0  # asymmetric loss: focusing of negatives
    asl_gamma_pos: float = 0.0  # asymmetric loss: focusing of positives
    asl_clip: float = 0.05  # asymmetric loss: probability margin for negatives


@dataclass
class TrainConfig:
    """A whole training run (sections above; the top level is the loop)."""

    run_dir: str = "runs/default"  # config.yaml, checkpoints/, final/, tensorboard/ go here
    seed: int = 0  # seeds data order, label sampling and augmentation
    max_steps: int = 10000  # optimiser steps in total (the schedule's length)
    batch_size: int = 8  # clips per process per step
    mixed_precision: str = "auto"  # auto (bf16 on CUDA, none on CPU) | no | bf16 | fp16
    cpu: bool = False  # run on the CPU even when CUDA is present
    log_every: int = 10  # steps between TensorBoard scalars
    checkpoint_every: int = 1000  # steps between checkpoints (the last step is always saved)
    eval_every: int = 0  # steps between evaluations during training (0: only at the end)
    keep_checkpoints: int = 3  # newest checkpoints kept in run_dir/checkpoints (0: keep all)
    resume: str = "auto"  # auto: newest checkpoint in run_dir | none | a checkpoint directory
    max_steps_this_run: int | None = None  # stop after this many steps in this process (as if killed)
    deterministic: bool = False  # torch.use_deterministic_algorithms (bit-exact resume on GPU, slower)
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)

    def validate(self) -> None:
        """Raise TrainConfigError for values that are well-typed but unusable."""
        checks = [
            (self.max_steps > 0, "max_steps must be > 0"),
            (self.batch_size > 0, "batch_size must be > 0"),
            (self.log_every > 0, "log_every must be > 0"),
            (self.eval_every >= 0, "eval_every must be >= 0"),
            (self.checkpoint_every > 0, "checkpoint_every must be > 0"),
            (
                self.mixed_precision in MIXED_PRECISION_MODES,
                f"mixed_precision must be one of {MIXED_PRECISION_MODES}",
            ),
            (self.loss.kind in LOSS_KINDS, f"loss.kind must be one of {LOSS_KINDS}"),
            (self.loss.num_negatives != 0, "loss.num_negatives must be > 0 (or < 0: every base negative)"),
            (
                isinstance(self.loss.label_weights, dict)
                and all(
                    isinstance(w, int | float) and not isinstance(w, bool) and w > 0
                    for w in self.loss.label_weights.values()
                ),
                "loss.label_weights must map labels to numbers > 0",
            ),
            (len(self.optim.betas) == 2, "optim.betas must be two numbers"),
            (isinstance(self.model.overrides, dict), "model.overrides must be a mapping"),
            (self.optim.warmup_steps >= 0, "optim.warmup_steps must be >= 0"),
            (0.0 <= self.data.time_reversal_p <= 1.0, "data.time_reversal_p must be in [0, 1]"),
            (
                all(len(pair) == 2 and pair[0] != pair[1] for pair in self.data.time_reversal_pairs),
                "data.time_reversal_pairs must be pairs of two different labels",
            ),
            (
                self.optim.label_gate_min is None or 0.0 <= self.optim.label_gate_min < 1.0,
                "optim.label_gate_min must be in [0, 1) (or null)",
            ),
            (
                self.optim.label_gate_from is None
                or (self.optim.label_gate_min is not None and 0.0 <= self.optim.label_gate_from < 1.0),
                "optim.label_gate_from must be in [0, 1) and needs optim.label_gate_min",
            ),
            (0.0 <= self.optim.label_gate_hold < 1.0, "optim.label_gate_hold must be in [0, 1)"),
            (
                self.optim.label_gate_hold == 0.0 or self.optim.label_gate_from is not None,
                "optim.label_gate_hold needs optim.label_gate_from (it holds the gate there)",
            ),
            (
                self.max_steps_this_run is None or self.max_steps_this_run > 0,
                "max_steps_this_run must be > 0",
            ),
            (
                self.data.synthetic_clips > 0 or (self.data.train_manifest and self.data.vocabulary),
                "set data.train_manifest and data.vocabulary (or data.synthetic_clips > 0)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise TrainConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---- reading -----------------------------------------------------------------------------
def load_config(yaml_paths: Sequence[str | Path], overrides: Sequence[str] = ()) -> TrainConfig:
    """A validated TrainConfig from YAML files (merged in order) and `key=value` overrides."""
    merged: dict[str, Any] = {}
    for path in yaml_paths:
        merged = deep_merge(merged, read_yaml(Path(path)))
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(merged, key, value)
    try:  # the same strict dataclass reader as ovmlv's model configs: unknown keys, wrong types
        config = dataclass_from_dict(TrainConfig, merged, "config")
    except ConfigError as exc:
        raise TrainConfigError(str(exc)) from None
    config.validate()
    return config


def _yaml_loader() -> type:
    """yaml.SafeLoader that also reads `3e-4` (no dot) as a float, as YAML 1.2 does."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))
    return Loader


def read_yaml(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """One YAML config file with its `inherit:` files merged underneath it."""
    import yaml

    path = path.resolve()
    if path in _seen:
        raise TrainConfigError(f"{path}: circular 'inherit'")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_yaml_loader())
    except FileNotFoundError:
        raise TrainConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise TrainConfigError(f"{path} is not valid YAML: {exc}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise TrainConfigError(f"{path}: expected a mapping at the top level")
    parents = data.pop(INHERIT_KEY, [])
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merged = deep_merge(merged, read_yaml(path.parent / parent, (*_seen, path)))
    return deep_merge(merged, data)


def parse_override(item: str) -> tuple[str, Any]:
    """`a.b=value` -> ("a.b", value parsed as a YAML scalar or flow collection)."""
    import yaml

    key, sep, text = item.partition("=")
    key = key.strip().lstrip("-")
    if not sep or not key:
        raise TrainConfigError(f"override {item!r} is not key=value (e.g. optim.lr=3e-4)")
    try:
        value = yaml.load(text, Loader=_yaml_loader()) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key, value


def set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    """target[a][b] = value for key "a.b" (creating sections; a non-section in the way is an error)."""
    *parents, last = key.split(".")
    node = target
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise TrainConfigError(f"override {key!r}: {'.'.join(parents[: depth + 1])} is not a section")
        node = child
    node[last] = value


# ---- writing -----------------------------------------------------------------------------
def dump_config(config: TrainConfig) -> str:
    """The resolved config as YAML (loads back to an equal TrainConfig)."""
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=False)
