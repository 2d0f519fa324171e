"""Preset registry: one JSON file per preset in ovmlv/presets (adding a model = adding a file)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from .config import ModelConfig
from .errors import ConfigError

_PRESET_DIR = "presets"
DEFAULT_PRESET = "siglip2-b16"


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


def load_preset(name: str) -> ModelConfig:
    """The ModelConfig of preset `name`."""
    path = preset_path(name)
    return ModelConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
