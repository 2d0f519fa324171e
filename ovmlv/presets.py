"""Preset registry: one JSON file per preset in ovmlv/presets (adding a model = adding a file).

A preset file is either a model config, or `{"checkpoint": "checkpoints/NAME"}`: a trained
checkpoint shipped in the repository (the toy world's model), resolved against the repository
root (or $OVMLV_CHECKPOINTS, a folder holding NAME/).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from .config import ModelConfig
from .errors import ConfigError, WeightsUnavailableError

_PRESET_DIR = "presets"
DEFAULT_PRESET = "siglip2-b16"
_REPO_ROOT = Path(__file__).resolve().parent.parent  # where checkpoint presets live in a clone


def _preset_files() -> dict[str, Path]:
    folder = resources.files(__package__).joinpath(_PRESET_DIR)
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".json")}


def list_presets() -> list[str]:
    """Names of the built-in presets, sorted."""
    return sorted(_preset_files())


def preset_path(name: str) -> Path:
    """The JSON file of preset `name` (ConfigError naming the known presets if unknown)."""
    files = _preset_files()
    if name not in files:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(files))}")
    return files[name]


def _read(name: str) -> dict:
    return json.loads(preset_path(name).read_text(encoding="utf-8"))


def preset_checkpoint_dir(name: str) -> Path | None:
    """The shipped checkpoint directory of preset `name`, or None for a plain model-config preset.

    Raises:
        WeightsUnavailableError: the preset names a checkpoint that is not on this machine.
    """
    data = _read(name)
    if set(data) != {"checkpoint"}:
        return None
    relative = Path(data["checkpoint"])
    override = os.environ.get("OVMLV_CHECKPOINTS")
    candidates = [Path(override) / relative.name] if override else []
    candidates.append(_REPO_ROOT / relative)
    for directory in candidates:
        if (directory / "config.json").is_file():
            return directory
    raise WeightsUnavailableError(
        f"preset {name!r}: its checkpoint ships in the ovmlv repository as {relative} and was not found "
        f"(looked in {', '.join(str(c) for c in candidates)}); run from a clone of the repository, set "
        f"OVMLV_CHECKPOINTS to a folder holding {relative.name}/, or regenerate it with "
        "`python -m training.toyworld`"
    )


def load_preset(name: str) -> ModelConfig:
    """The ModelConfig of preset `name` (for a checkpoint preset: the checkpoint's config)."""
    directory = preset_checkpoint_dir(name)
    if directory is not None:
        from .checkpoint import read_checkpoint_config

        return read_checkpoint_config(directory)
    return ModelConfig.from_dict(_read(name))
