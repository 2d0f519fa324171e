"""Presets: the registry, the real presets' offline failure, the LLM loader's precision modes."""

from __future__ import annotations

import time

import pytest
import torch

import ovmlv
from ovmlv.config import LLMConfig, ModelConfig
from ovmlv.errors import ConfigError
from ovmlv.llm import load_llm, resolve_quantization
from ovmlv.presets import load_preset


def test_list_presets():
    assert {"tiny-clip", "tiny-siglip", "toy", "clip-b16", "siglip2-b16"} <= set(ovmlv.list_presets())


def test_real_presets_name_their_hub_sources():
    clip = load_preset("clip-b16")
    assert (
        clip.clip.arch == "ViT-B-16-quickgelu"
        and clip.clip.hub_repo == "timm/vit_base_patch16_clip_224.openai"
    )
    siglip = load_preset("siglip2-b16")
    assert siglip.clip.hub_repo == siglip.clip.tokenizer_repo == "timm/ViT-B-16-SigLIP2"
    for config in (clip, siglip):
        assert config.llm.name == "Qwen/Qwen2.5-1.5B-Instruct" and config.llm.revision
        assert (
            config.temporal.num_last_blocks == 4
            and config.labels.num_prefix == config.labels.num_queries == 8
        )
        assert ModelConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "preset, repo",
    [("clip-b16", "timm/vit_base_patch16_clip_224.openai"), ("siglip2-b16", "timm/ViT-B-16-SigLIP2")],
)
def test_real_preset_offline_fails_fast_with_one_clear_line(preset, repo, tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    start = time.monotonic()
    with pytest.raises(ovmlv.WeightsUnavailableError) as info:
        ovmlv.create_model(preset, device="cpu")
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert elapsed < 10
    assert "\n" not in message
    assert repr(preset) in message and repo in message and "HF_HUB_OFFLINE=1" in message
    assert "fix:" in message and "tiny-clip" in message


def test_quantization_resolution():
    assert resolve_quantization("auto", "cpu") == "none"
    assert resolve_quantization("auto", torch.device("cuda")) == "4bit"
    assert resolve_quantization("8bit", "cpu") == "8bit"
    with pytest.raises(ConfigError, match="unknown LLM quantization"):
        resolve_quantization("3bit", "cpu")


@pytest.mark.parametrize("mode", ["none", "bf16", "8bit", "4bit"])
def test_llm_loads_from_a_directory_in_every_mode(tiny_llm_dir, mode):
    """The same loader as the real presets, on the tiny model saved with save_pretrained."""
    if mode in ("8bit", "4bit"):
        pytest.importorskip("bitsandbytes")
    llm = load_llm(LLMConfig(name=str(tiny_llm_dir), quantization=mode), "test", device="cpu")
    reference = load_llm(LLMConfig(name=str(tiny_llm_dir), quantization="none"), "test", device="cpu")
    ids = llm.tokenizer("a video of a dog", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = llm.model(input_ids=ids).logits.float()
        expected = reference.model(input_ids=ids).logits.float()
    assert llm.quantization == mode
    assert not any(p.requires_grad for p in llm.model.parameters())
    tolerance = {"none": 1e-6, "bf16": 0.05, "8bit": 0.2, "4bit": 0.5}[mode]
    assert (logits - expected).abs().max() <= tolerance
    if mode != "none":
        assert (logits - expected).abs().max() > 0  # it really is another precision


def test_missing_llm_directory_is_a_clear_error():
    with pytest.raises(ConfigError, match="does not exist"):
        load_llm(LLMConfig(name="./no/such/dir"), "test")


def test_import_is_light():
    """`import ovmlv` loads no model code (no torch import side effects beyond the package)."""
    import subprocess
    import sys

    code = "import sys, ovmlv; print('open_clip' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
