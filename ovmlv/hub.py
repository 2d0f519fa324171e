"""Fetching weights from the Hugging Face Hub (or its local cache) with one clear error.

Every real preset fetches its files through here, so "offline and not cached" always
ends in the same one-line message that names the preset, the missing repository and the fix.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from .errors import WeightsUnavailableError

logger = logging.getLogger(__name__)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def _unavailable(preset: str, repo: str, what: str, exc: Exception) -> WeightsUnavailableError:
    reason = (
        "HF_HUB_OFFLINE=1 is set" if _offline() else f"the Hub could not be reached ({type(exc).__name__})"
    )
    return WeightsUnavailableError(
        f"preset {preset!r} needs {what} from the Hugging Face Hub repo {repo!r}, which is not in the local "
        f"cache and {reason}; fix: run once with internet access (or `hf download {repo}`) so it is cached, "
        f"point HF_HOME at a cache that has it, or use the offline preset 'tiny-clip'"
    )


def fetch_file(repo: str, filename: str, revision: str, preset: str) -> Path:
    """Path of `filename` from Hub repo `repo` (cache first, then download)."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, filename, revision=revision))
    except Exception as exc:  # huggingface_hub raises several unrelated types for "not available"
        raise _unavailable(preset, repo, f"the file {filename!r}", exc) from exc


def fetch_snapshot(
    repo: str, revision: str, preset: str, allow_patterns: Sequence[str] | None = None
) -> Path:
    """Local directory holding the files of Hub repo `repo` matching `allow_patterns`."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(repo, revision=revision, allow_patterns=list(allow_patterns or [])))
    except Exception as exc:
        raise _unavailable(preset, repo, "its files", exc) from exc
    if not any(path.iterdir()):
        raise _unavailable(preset, repo, "its files", FileNotFoundError(str(path)))
    return path


def resolve_hf_hub(name: str, preset: str | None = None) -> Path:
    """Download (or find cached) an ovmlv checkpoint given as `hf-hub:org/repo[@revision]`."""
    spec = name.removeprefix("hf-hub:")
    repo, _, revision = spec.partition("@")
    return fetch_snapshot(
        repo,
        revision or "main",
        preset or name,
        allow_patterns=["config.json", "model.safetensors", "README.md", "open_clip/*", "llm/*"],
    )
