"""Checkpoint directories: round trip, strict loading, hf-hub resolution, config validation."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import ovmlv
from ovmlv.checkpoint import CONFIG_FILE, WEIGHTS_FILE, save_checkpoint
from ovmlv.errors import CheckpointError, ConfigError

from conftest import random_frames


def trained_tiny(fresh_tiny):
    model = fresh_tiny("tiny-siglip")
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for tensor in model.trained_state_dict().values():
            tensor.add_(0.3 * torch.randn(tensor.shape, generator=generator))
    model.config.adapter_trained = True
    return model


def test_round_trip_restores_trained_parameters_and_outputs(fresh_tiny, tmp_path):
    model = trained_tiny(fresh_tiny)
    save_checkpoint(model, tmp_path / "ckpt")
    stored = load_file(str(tmp_path / "ckpt" / WEIGHTS_FILE))
    assert not any(name.startswith("clip.") for name in stored)  # only what training changed
    assert set(stored) == set(model.trained_state_dict())
    loaded = ovmlv.create_model(tmp_path / "ckpt", device="cpu")
    for name, tensor in model.trained_state_dict().items():
        assert torch.equal(loaded.trained_state_dict()[name], tensor), name
    frames = random_frames(2, model.num_frames, model.image_size)
    with torch.no_grad():
        assert torch.allclose(loaded.encode_video(frames), model.encode_video(frames), atol=1e-6)
        assert torch.allclose(
            loaded.encode_labels(["dog", "cat"]), model.encode_labels(["dog", "cat"]), atol=1e-6
        )
    assert loaded.config == model.config
    assert loaded.fingerprint() == model.fingerprint()
    assert loaded.fingerprint() != fresh_tiny("tiny-siglip").fingerprint()


def test_checkpoint_has_no_pickles(fresh_tiny, tmp_path):
    save_checkpoint(fresh_tiny("tiny-clip"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    payload = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert payload["format"] == "ovmlv-checkpoint" and payload["model"]["clip"]["arch"] == "tiny-clip"


def test_missing_and_unexpected_keys_are_listed(fresh_tiny, tmp_path):
    save_checkpoint(fresh_tiny("tiny-clip"), tmp_path)
    state = load_file(str(tmp_path / WEIGHTS_FILE))
    del state["label_encoder.prefix"]
    state["surprise.weight"] = torch.zeros(2)
    save_file(state, str(tmp_path / WEIGHTS_FILE))
    with pytest.raises(CheckpointError) as info:
        ovmlv.create_model(tmp_path, device="cpu")
    message = str(info.value)
    assert "label_encoder.prefix" in message and "surprise.weight" in message and "\n" not in message


def test_wrong_shapes_are_an_error(fresh_tiny, tmp_path):
    save_checkpoint(fresh_tiny("tiny-clip"), tmp_path)
    state = load_file(str(tmp_path / WEIGHTS_FILE))
    state["logit_bias"] = torch.zeros(3)
    save_file(state, str(tmp_path / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match="wrong shape"):
        ovmlv.create_model(tmp_path, device="cpu")


def test_unknown_config_keys_are_an_error(fresh_tiny, tmp_path):
    save_checkpoint(fresh_tiny("tiny-clip"), tmp_path)
    payload = json.loads((tmp_path / CONFIG_FILE).read_text())
    payload["model"]["temporal"]["num_framez"] = 4
    (tmp_path / CONFIG_FILE).write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match="num_framez"):
        ovmlv.create_model(tmp_path, device="cpu")


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="not an ovmlv checkpoint"):
        ovmlv.create_model(tmp_path, device="cpu")
    (tmp_path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        ovmlv.create_model(tmp_path, device="cpu")
    with pytest.raises(ConfigError, match="unknown model"):
        ovmlv.create_model("no-such-preset", device="cpu")


def fake_hub_cache(root, repo: str, files_from) -> None:
    """Lay files out exactly as huggingface_hub caches a downloaded repo."""
    commit = "0" * 40
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    shutil.copytree(files_from, folder / "snapshots" / commit)


def test_hf_hub_checkpoint_resolves_through_the_hub_cache(fresh_tiny, tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    model = trained_tiny(fresh_tiny)
    save_checkpoint(model, tmp_path / "src")
    fake_hub_cache(tmp_path / "hub", "someone/ovmlv-tiny", tmp_path / "src")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loaded = ovmlv.create_model("hf-hub:someone/ovmlv-tiny", device="cpu")
    assert torch.equal(loaded.logit_bias, model.logit_bias)
    with pytest.raises(ovmlv.WeightsUnavailableError, match="someone/absent"):
        ovmlv.create_model("hf-hub:someone/absent", device="cpu")


def test_a_checkpoint_carries_its_default_threshold(fresh_tiny, tmp_path):
    from ovmlv.checkpoint import set_checkpoint_threshold

    model = trained_tiny(fresh_tiny)
    directory = save_checkpoint(model, tmp_path / "ckpt", extra={"training": {"steps": 3}})
    weights = (directory / WEIGHTS_FILE).read_bytes()
    assert ovmlv.VideoClassifier.from_pretrained(directory, device="cpu", label_db_path=None).threshold == 0.5
    fingerprint = ovmlv.create_model(directory, device="cpu").fingerprint()
    set_checkpoint_threshold(directory, 0.31, {"threshold": {"best_f1": 0.7}})
    payload = json.loads((directory / CONFIG_FILE).read_text())
    assert payload["model"]["threshold"] == 0.31
    assert payload["extra"] == {"training": {"steps": 3}, "threshold": {"best_f1": 0.7}}  # merged, kept
    assert (directory / WEIGHTS_FILE).read_bytes() == weights
    classifier = ovmlv.VideoClassifier.from_pretrained(directory, device="cpu", label_db_path=None)
    assert classifier.threshold == 0.31
    # Label embeddings do not depend on the threshold: the label cache key stays the same.
    assert ovmlv.create_model(directory, device="cpu").fingerprint() == fingerprint
    before = (directory / CONFIG_FILE).read_bytes()
    with pytest.raises(CheckpointError, match="threshold must be in"):
        set_checkpoint_threshold(directory, 1.5)
    assert (directory / CONFIG_FILE).read_bytes() == before  # nothing written
    payload["model"]["threshold"] = -0.1
    (directory / CONFIG_FILE).write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match="threshold must be in"):
        ovmlv.create_model(directory, device="cpu")
