"""Test session settings: offline by construction, shared tiny models, the sample-video folder."""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"
TINY_PRESETS = ["tiny-clip", "tiny-siglip"]


@pytest.fixture(scope="session")
def tiny_models():
    """One fp32 CPU instance per tiny preset, built once (tests must not modify them in place)."""
    import ovmlv

    return {name: ovmlv.create_model(name, device="cpu") for name in TINY_PRESETS}


@pytest.fixture
def fresh_tiny():
    """A factory for a new tiny model that a test may modify."""
    import ovmlv

    def make(name: str = "tiny-clip", **kwargs):
        return ovmlv.create_model(name, device="cpu", **kwargs)

    return make


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory) -> Path:
    """The tiny Llama-style LLM saved with save_pretrained, as the real presets' files are."""
    from ovmlv.tiny_llm import save_tiny_llm

    return save_tiny_llm(tmp_path_factory.mktemp("tiny-llm"))


@pytest.fixture
def shared_videos() -> Path:
    if not SHARED_VIDEOS.is_dir():
        pytest.skip("../shared/videos is not present in this checkout")
    return SHARED_VIDEOS


def random_frames(batch: int, frames: int, size: int, seed: int = 0) -> torch.Tensor:
    """Video-like normalised frames: a shared image per clip plus per-frame change.

    (Independent noise frames have nearly cancelling embeddings, whose mean is dominated by
    float rounding once normalised.)
    """
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(batch, 1, 3, size, size, generator=generator)
    return base + 0.5 * torch.randn(batch, frames, 3, size, size, generator=generator)
