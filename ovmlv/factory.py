"""The front door: create_model(name) for presets, checkpoint directories and hf-hub: checkpoints."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from .checkpoint import is_checkpoint_dir, load_trained_state, read_checkpoint_config
from .clip_loader import load_clip
from .config import ModelConfig, merge_overrides
from .errors import ConfigError
from .hub import resolve_hf_hub
from .llm import load_llm
from .model import OVMLVModel
from .presets import list_presets, load_preset, preset_checkpoint_dir

logger = logging.getLogger(__name__)


def resolve_config(name_or_path: str | Path) -> tuple[ModelConfig, Path | None]:
    """(config, checkpoint directory or None) for a preset name, a local directory or hf-hub:org/repo."""
    text = str(name_or_path)
    if text.startswith("hf-hub:"):
        directory = resolve_hf_hub(text)
        return read_checkpoint_config(directory), directory
    if text in list_presets():
        directory = preset_checkpoint_dir(text)
        if directory is not None:  # a trained checkpoint shipped in the repository (toy)
            return read_checkpoint_config(directory), directory
        return load_preset(text), None
    path = Path(text).expanduser()
    if path.is_dir():
        if not is_checkpoint_dir(path):
            raise ConfigError(f"{path} is a directory but not an ovmlv checkpoint (no config.json)")
        return read_checkpoint_config(path), path
    raise ConfigError(
        f"unknown model {text!r}: use a preset ({', '.join(list_presets())}), a checkpoint directory, "
        "or hf-hub:org/repo"
    )


def create_model(
    name: str | Path,
    pretrained: bool = True,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    overrides: dict[str, Any] | None = None,
) -> OVMLVModel:
    """Build an OVMLVModel from a preset, a checkpoint directory or `hf-hub:org/repo`.

    Args:
        name: preset name (see `list_presets()`), checkpoint directory, or `hf-hub:org/repo[@revision]`.
        pretrained: load the base CLIP weights (False: random weights with the same architecture;
            a checkpoint's trained parameters are loaded either way).
        device: where the model runs (default: CUDA if available, else CPU).
        dtype: parameter dtype of the CLIP towers and adapters (default float32).
        overrides: nested dict merged into the config before building (e.g. {"llm": {"quantization": "4bit"}}).
    """
    config, directory = resolve_config(name)
    if overrides:
        config = ModelConfig.from_dict(merge_overrides(config.to_dict(), overrides))
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = dtype or torch.float32
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)  # random base weights (tiny presets) are reproducible
        clip = load_clip(config.clip, config.name, pretrained=pretrained, base_dir=directory)
    llm = load_llm(config.llm, config.name, device=device, dtype=dtype, base_dir=directory, seed=config.seed)
    model = OVMLVModel(config, clip, llm)
    if directory is not None and (directory / "model.safetensors").exists():
        load_trained_state(model, directory)
    elif directory is not None and config.adapter_trained:
        raise ConfigError(f"{directory} says it is trained but has no model.safetensors")
    return model.to(device=device, dtype=dtype).eval()
