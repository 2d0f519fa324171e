"""Typed configuration of an ovmlv model (architecture + which base weights to use).

Configs are plain dataclasses that round-trip through JSON. Unknown keys are an error,
so a typo in a preset or a checkpoint's config.json is caught at load time.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


@dataclass
class ClipConfig:
    """Which open_clip model to wrap, and where its weights come from."""

    arch: str  # open_clip model name (built-in) or the name of a packaged config in ovmlv/configs
    hub_repo: str | None = None  # Hub repo holding open_clip weights (None: random weights)
    hub_file: str = "open_clip_model.safetensors"  # weights file inside hub_repo
    revision: str = "main"  # Hub revision (branch, tag or commit) of hub_repo
    local_dir: str | None = None  # directory with open_clip_config.json + weights (relative to the preset)
    tokenizer_repo: str | None = None  # Hub repo of an HF tokenizer (SigLIP); None: open_clip's default


@dataclass
class LLMConfig:
    """The frozen decoder-only LLM behind the label encoder."""

    name: str  # Hub id, local directory, or "builtin:tiny-llama" (random, built offline)
    revision: str = "main"  # Hub revision when `name` is a Hub id
    quantization: str = "auto"  # auto | none | bf16 | 8bit | 4bit ("auto": 4bit on CUDA, none on CPU)


@dataclass
class TemporalConfig:
    """The divided temporal attention branch added to the vision tower."""

    num_frames: int = 8  # T: frames per window
    blocks: list[int] | None = None  # block indices that get a branch; None: the last `num_last_blocks`
    num_last_blocks: int = 4  # used when `blocks` is None
    heads: int | None = None  # attention heads; None: width // 64 (at least 1)
    max_frames: int = 32  # size of the learnable temporal position table
    position_init_std: float = 0.02  # its initial spread; it is added to layer-normed (unit-scale) tokens


@dataclass
class LabelConfig:
    """How labels become text embeddings (soft attributes and zero-shot attributes)."""

    template: str = "a video of {label}"  # CLIP text template
    attribute_template: str = "a video of {label}, which has {attribute}"  # used by zero-shot attributes
    num_prefix: int = 8  # P: learnable vectors before the LLM instruction
    num_queries: int = 8  # K: learnable attribute queries (= soft tokens in the text tower)
    prompting_layers: int = 2  # transformer layers mapping LLM states to soft tokens (0: linear map only)
    prompting_heads: int = 8  # heads of that transformer (must divide the text width)
    num_attributes: int = 5  # N: zero-shot attribute phrases per label (0: off)
    max_new_tokens: int = 80  # generation budget for the attribute phrases
    soft_source: str = "llm"  # llm: LLM soft attributes | context: learned context tokens only (ablation)
    anchor: str = "template"  # e0 of the gate: template (plain zero-shot) | attributes (zero-shot attributes)
    prompt_version: str = "v1"  # bump when prompts change, so cached label embeddings are not reused


@dataclass
class ModelConfig:
    """Everything needed to rebuild an ovmlv model (trained parameters live in safetensors)."""

    name: str  # preset or checkpoint name, shown to users
    clip: ClipConfig
    llm: LLMConfig
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    init_logit_scale: float | None = None  # log of the score scale a; None: the CLIP model's own
    init_logit_bias: float | None = None  # score bias b; None: the CLIP model's own (0 if it has none)
    adapter_trained: bool = False  # True once fine-tuned: the soft-attribute path is used
    train_vision_tower: bool = False  # the vision tower's weights are part of the trained state
    seed: int = 0  # seed for randomly initialised parts (tiny presets, fresh adapters)
    # Default probability from which a window counts as containing a label (segments, the app's
    # slider, the CLI's --threshold). Fine-tuning may set it: the threshold with the best F1 on
    # held-out clips of its base labels (the toy world does). Label embeddings do not depend on it.
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return dataclass_from_dict(cls, data, "config")


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge `overrides` into a copy of `base` (dicts merge, other values replace)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = value
    return merged


def dataclass_from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass `cls` from a dict, strictly: unknown keys and wrong types are a ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # ValueError: a dataclass's own check (__post_init__)
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(inner[0], value, where)
    if dataclasses.is_dataclass(hint):
        return dataclass_from_dict(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_coerce(item, v, where) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected int, got {value!r}")
    return value
