"""Self-describing checkpoint directories: config.json + model.safetensors (trained parameters only).

config.json holds the architecture and references to the base weights (Hub repos, revisions);
model.safetensors holds only what training changed. No pickles anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig
from .errors import CheckpointError, ConfigError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "ovmlv-checkpoint"
FORMAT_VERSION = 1


def is_checkpoint_dir(path: str | Path) -> bool:
    """True if `path` is a directory with an ovmlv config.json."""
    return (Path(path) / CONFIG_FILE).is_file()


def save_checkpoint(
    model: torch.nn.Module, directory: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write `model`'s config and trained parameters to `directory` (created if needed)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.config.to_dict()}
    if extra:
        payload["extra"] = extra
    (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")
    state = {
        name: t.detach().to("cpu").contiguous().clone() for name, t in model.trained_state_dict().items()
    }
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT})
    return directory


def read_checkpoint_config(directory: str | Path) -> ModelConfig:
    """The ModelConfig stored in a checkpoint directory (CheckpointError if absent or invalid)."""
    path = Path(directory) / CONFIG_FILE
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{directory} is not an ovmlv checkpoint: {CONFIG_FILE} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an ovmlv checkpoint config (format != {FORMAT!r})")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} needs a newer ovmlv (format_version {payload['format_version']})")
    try:
        return ModelConfig.from_dict(payload["model"])
    except (ConfigError, KeyError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def set_checkpoint_threshold(
    directory: str | Path, threshold: float, extra: dict[str, Any] | None = None
) -> None:
    """Store `threshold` as the checkpoint's default (ModelConfig.threshold), weights untouched.

    `extra` (e.g. how the threshold was chosen) is merged into config.json's "extra".
    """
    config = read_checkpoint_config(directory)  # validates the file first
    path = Path(directory) / CONFIG_FILE
    payload = json.loads(path.read_text(encoding="utf-8"))
    try:
        payload["model"] = ModelConfig.from_dict(
            {**config.to_dict(), "threshold": float(threshold)}
        ).to_dict()
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    if extra:
        payload["extra"] = {**payload.get("extra", {}), **extra}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")


def load_trained_state(model: torch.nn.Module, directory: str | Path) -> None:
    """Load model.safetensors strictly: missing, unexpected or mis-shaped tensors are an error."""
    from safetensors.torch import load_file

    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} has no {WEIGHTS_FILE}")
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{path} could not be read: {exc}") from None
    expected = model.trained_state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match the model: missing keys {missing}, unexpected keys {unexpected}"
        )
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected
        if state[k].shape != expected[k].shape
    ]
    if wrong:
        raise CheckpointError(f"{path} has tensors of the wrong shape: {wrong}")
    model.load_state_dict(state, strict=False)


def shipped_base_dirs(config: ModelConfig, directory: str | Path) -> list[Path]:
    """The base-weight folders that `config` takes from inside checkpoint `directory`.

    A checkpoint may ship its base CLIP (`clip.local_dir`) and LLM (`llm.name`) as relative
    folders (the toy world's models, which are on no Hub); those that exist are returned.
    """
    directory = Path(directory)
    found = []
    for relative in (config.clip.local_dir, config.llm.name):
        if relative and not Path(relative).is_absolute() and (directory / relative).is_dir():
            found.append(directory / relative)
    return found


def copy_shipped_base(config: ModelConfig, source: str | Path, target: str | Path) -> list[Path]:
    """Copy the base-weight folders shipped in checkpoint `source` into checkpoint `target`.

    A model fine-tuned from such a checkpoint then loads from `target` alone.
    """
    import shutil

    copied = []
    for folder in shipped_base_dirs(config, source):
        destination = Path(target) / folder.name
        if destination.resolve() != folder.resolve():
            shutil.copytree(folder, destination, dirs_exist_ok=True)
        copied.append(destination)
    return copied
