"""Training checkpoints: everything needed to continue a run exactly where it stopped.

    run_dir/checkpoints/step-00000400/
        config.json, model.safetensors   the trained parameters, as an ovmlv checkpoint
                                         (so any checkpoint can also be evaluated or served)
        optimizer.pt, scheduler.pt       state dicts (tensors and numbers; loaded weights_only)
        rng.pt                           every process's RNG states (torch, CUDA, numpy, random)
        trainer_state.json               step, epoch, world size

A checkpoint is written into `step-N.tmp` and renamed when complete, so a run killed while
saving leaves the previous checkpoint as the newest complete one.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ovmlv.checkpoint import load_trained_state, save_checkpoint

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
RNG_FILE = "rng.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step-{step:08d}"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run as (step, directory), oldest first."""
    folder = Path(run_dir) / CHECKPOINTS
    found = []
    for path in folder.iterdir() if folder.is_dir() else []:
        match = _STEP_DIR.match(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


# ---- RNG -----------------------------------------------------------------------------------
def rng_state() -> dict[str, torch.Tensor]:
    """This process's RNG states as tensors (so they load with weights_only=True)."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_meta": torch.tensor([np_state[2], np_state[3]], dtype=torch.int64),
        "numpy_gauss": torch.tensor(np_state[4], dtype=torch.float64),
        "python": torch.tensor([py_version, *py_internal], dtype=torch.int64),
        "python_gauss": torch.tensor(float("nan") if py_gauss is None else py_gauss, dtype=torch.float64),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    """Restore what `rng_state` captured."""
    torch.set_rng_state(state["torch"])
    meta = state["numpy_meta"].tolist()
    np.random.set_state(
        (
            "MT19937",
            state["numpy_keys"].numpy().astype(np.uint32),
            meta[0],
            meta[1],
            float(state["numpy_gauss"]),
        )
    )
    python = state["python"].tolist()
    gauss = float(state["python_gauss"])
    random.setstate((python[0], tuple(python[1:]), None if gauss != gauss else gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


# ---- save / load -----------------------------------------------------------------------------
def save_training_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rng_states: list[dict[str, torch.Tensor]],
    trainer_state: dict[str, Any],
) -> Path:
    """Write a complete checkpoint to `directory` (atomically: via `directory`.tmp). Main process only."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_checkpoint(model, tmp, extra={"training": {"step": trainer_state["step"]}})
    torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
    torch.save(scheduler.state_dict(), tmp / SCHEDULER_FILE)
    torch.save({f"rank{rank}": state for rank, state in enumerate(rng_states)}, tmp / RNG_FILE)
    (tmp / STATE_FILE).write_text(json.dumps(trainer_state, indent=2), encoding="utf-8")
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    return directory


def load_training_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rank: int,
) -> dict[str, Any]:
    """Restore model, optimiser, scheduler and this rank's RNG from `directory`; returns the trainer state."""
    state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    load_trained_state(model, directory)  # strict: missing or unexpected tensors are an error
    optimizer.load_state_dict(torch.load(directory / OPTIMIZER_FILE, map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(directory / SCHEDULER_FILE, map_location="cpu", weights_only=True))
    rng = torch.load(directory / RNG_FILE, map_location="cpu", weights_only=True)
    if f"rank{rank}" in rng:
        set_rng_state(rng[f"rank{rank}"])
    else:
        logger.warning(
            "%s has no RNG state for rank %d (different world size): RNG not restored", directory, rank
        )
    return state


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (keep <= 0: keep all)."""
    if keep <= 0:
        return
    for _, path in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
