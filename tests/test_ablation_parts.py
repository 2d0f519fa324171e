"""The parts the toy world's ablations and training recipe rely on, on the tiny presets.

- no LLM: `labels.soft_source="context"` (learned context tokens shared by every label);
- no temporal branch: `temporal.num_last_blocks=0`;
- checkpoint presets (`{"checkpoint": ...}`) and base models shipped inside a checkpoint;
- optim.scalar_lr and optim.label_gate_min.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import ovmlv
from ovmlv.errors import WeightsUnavailableError
from ovmlv.soft_attributes import ContextTokenEncoder

from conftest import random_frames


def test_context_encoder_ignores_the_llm_and_starts_at_zero_shot(fresh_tiny):
    model = fresh_tiny("tiny-clip", overrides={"labels": {"soft_source": "context"}})
    assert isinstance(model.label_encoder, ContextTokenEncoder)
    labels = ["lime", "moving left", "a red circle"]
    with torch.no_grad():
        assert torch.allclose(model.soft_label_embeddings(labels), model.zero_shot_label_embeddings(labels))
        tokens = model.label_encoder.label_tokens(None, labels)  # no LLM needed at all
    assert tokens.shape == (3, model.config.labels.num_queries, model.text_tower.width)
    assert torch.equal(tokens[0], tokens[1]) and torch.equal(tokens[1], tokens[2])


def test_context_tokens_reach_the_text_tower_and_get_gradients(fresh_tiny):
    model = fresh_tiny("tiny-clip", overrides={"labels": {"soft_source": "context"}})
    with torch.no_grad():
        model.label_encoder.gate.fill_(0.5)
    labels = ["dog", "cat"]
    soft = model.label_encoder.label_tokens(None, labels)
    reference = F.normalize(model.text_tower.encode(model.template_texts(labels), soft).float(), dim=-1)
    embeddings = model.soft_label_embeddings(labels)
    expected = F.normalize(
        model.zero_shot_label_embeddings(labels)
        + math.tanh(0.5) * (reference - model.zero_shot_label_embeddings(labels)),
        dim=-1,
    )
    assert torch.allclose(embeddings, expected, atol=1e-6)
    embeddings.sum().backward()
    assert model.label_encoder.context.grad is not None and model.label_encoder.context.grad.abs().sum() > 0


def test_unknown_soft_source_is_a_clear_error(fresh_tiny):
    with pytest.raises(ValueError, match="soft_source must be one of"):
        fresh_tiny("tiny-clip", overrides={"labels": {"soft_source": "wordnet"}})


@pytest.mark.parametrize("preset", ["tiny-clip", "tiny-siglip"])
def test_no_temporal_branch_is_frame_wise_clip(fresh_tiny, preset):
    model = fresh_tiny(preset, overrides={"temporal": {"num_last_blocks": 0}})
    assert len(model.temporal.branches) == 0 and model.temporal.gate_values().numel() == 0
    assert not model.has_temporal_effect()
    frames = random_frames(2, model.num_frames, model.image_size)
    with torch.no_grad():
        video = model.encode_video(frames)
        per_frame = torch.stack([model.clip.encode_image(frames[:, t]) for t in range(frames.shape[1])], 1)
    assert torch.allclose(video, F.normalize(per_frame.mean(1), dim=-1), atol=1e-6)
    with torch.enable_grad():  # the training path (gradients wanted) works without branches too
        assert model.encode_video_alphas(frames, (0.0, 1.0)).shape == (2, 2, video.shape[-1])


def test_checkpoint_preset_resolves_and_reports_a_missing_checkpoint(tmp_path, monkeypatch, fresh_tiny):
    from ovmlv import presets
    from ovmlv.checkpoint import save_checkpoint

    model = fresh_tiny("tiny-clip")
    save_checkpoint(model, tmp_path / "ckpts" / "mine")
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "mine.json").write_text(json.dumps({"checkpoint": "checkpoints/mine"}))
    monkeypatch.setattr(presets, "_preset_files", lambda: {"mine": tmp_path / "presets" / "mine.json"})
    monkeypatch.setenv("OVMLV_CHECKPOINTS", str(tmp_path / "ckpts"))
    assert presets.preset_checkpoint_dir("mine") == tmp_path / "ckpts" / "mine"
    assert presets.load_preset("mine").name == "tiny-clip"
    loaded = ovmlv.create_model("mine", device="cpu")
    assert loaded.fingerprint() == model.fingerprint()
    monkeypatch.setenv("OVMLV_CHECKPOINTS", str(tmp_path / "empty"))
    monkeypatch.setattr(presets, "_REPO_ROOT", tmp_path / "nowhere")
    with pytest.raises(WeightsUnavailableError) as info:
        ovmlv.create_model("mine", device="cpu")
    message = str(info.value)
    assert "'mine'" in message and "checkpoints/mine" in message and "training.toyworld" in message
    assert "\n" not in message


def test_shipped_base_models_travel_with_a_fine_tuned_checkpoint(tmp_path, tiny_llm_dir, fresh_tiny):
    import shutil

    from ovmlv.checkpoint import copy_shipped_base, save_checkpoint, shipped_base_dirs

    model = fresh_tiny("tiny-clip")
    model.config.llm.name = "llm"  # an LLM shipped inside the checkpoint, by relative path
    source = save_checkpoint(model, tmp_path / "base")
    shutil.copytree(tiny_llm_dir, source / "llm")
    assert shipped_base_dirs(model.config, source) == [source / "llm"]
    target = save_checkpoint(model, tmp_path / "tuned")
    assert copy_shipped_base(model.config, source, target) == [target / "llm"]
    shutil.rmtree(source)  # the tuned checkpoint must not need the base one any more
    loaded = ovmlv.create_model(target, device="cpu")
    assert loaded.llm.hidden_size == model.llm.hidden_size
    with torch.no_grad():
        assert torch.allclose(loaded.encode_labels(["dog"]), model.encode_labels(["dog"]), atol=1e-5)


def test_scalar_lr_gets_its_own_group():
    from training.config import OptimSection
    from training.optim import parameter_groups

    model = ovmlv.create_model("tiny-clip", device="cpu")
    model.requires_grad_(False)
    for name, param in model.named_parameters():
        if not name.startswith("clip."):
            param.requires_grad_(True)
    groups = {g["name"]: g for g in parameter_groups(model, OptimSection(lr=1e-3, scalar_lr=0.05))}
    scalar_ids = {id(p) for p in groups["scalars"]["params"]}
    expected = [model.logit_scale, model.logit_bias, model.label_encoder.gate]
    expected += [branch.gate for branch in model.temporal.branches.values()]
    assert scalar_ids == {id(p) for p in expected}
    assert groups["scalars"]["lr"] == 0.05 and groups["scalars"]["weight_decay"] == 0.0
    others = [p for name, g in groups.items() if name != "scalars" for p in g["params"]]
    assert not scalar_ids & {id(p) for p in others}
    default = {g["name"] for g in parameter_groups(model, OptimSection(lr=1e-3))}
    assert "scalars" not in default


def test_label_gate_floor_projection(tmp_path):
    from training.config import load_config
    from training.trainer import Trainer

    cfg = load_config(
        ["training/configs/smoke.yaml"],
        [f"run_dir={tmp_path}", "optim.label_gate_min=0.2", "max_steps=1", "data.synthetic_eval_clips=0"],
    )
    trainer = Trainer(cfg)
    with torch.no_grad():
        trainer.model.label_encoder.gate.fill_(-1.0)
    trainer.project_label_gate()
    assert math.isclose(math.tanh(float(trainer.model.label_encoder.gate.detach())), 0.2, rel_tol=1e-5)
    with torch.no_grad():
        trainer.model.label_encoder.gate.fill_(0.9)
    trainer.project_label_gate()  # above the floor: unchanged
    assert float(trainer.model.label_encoder.gate.detach()) == pytest.approx(0.9)


def test_label_gate_held_on_a_line_from_label_gate_from_to_the_floor(tmp_path):
    from training.config import load_config
    from training.trainer import Trainer

    overrides = ["optim.label_gate_min=0.05", "optim.label_gate_from=0.45", "max_steps=4"]
    cfg = load_config(
        ["training/configs/smoke.yaml"], [f"run_dir={tmp_path}", *overrides, "data.synthetic_eval_clips=0"]
    )
    trainer = Trainer(cfg)
    assert [trainer.held_label_gate(step) for step in range(5)] == pytest.approx(
        [0.45, 0.35, 0.25, 0.15, 0.05]
    )
    assert trainer.held_label_gate(9) == pytest.approx(0.05)  # past max_steps: the end value
    trainer.cfg.optim.label_gate_hold = 0.5  # held at 0.45 for the first half, then the line
    assert [trainer.held_label_gate(step) for step in range(5)] == pytest.approx(
        [0.45, 0.45, 0.45, 0.25, 0.05]
    )
    trainer.cfg.optim.label_gate_hold = 0.0

    def gate() -> float:
        return math.tanh(float(trainer.model.label_encoder.gate.detach()))

    with torch.no_grad():
        trainer.model.label_encoder.gate.fill_(2.0)  # held means held: from above as from below
    trainer.step = 1
    trainer.project_label_gate()  # after the second update
    assert math.isclose(gate(), 0.25, rel_tol=1e-5)
    trainer.step = 0
    in_forward = []
    trainer.step_module.register_forward_pre_hook(lambda module, args: in_forward.append(gate()))
    trainer.fit()  # four real steps
    assert in_forward[:4] == pytest.approx([0.45, 0.35, 0.25, 0.15], rel=1e-4)  # the first one sees 0.45
    logged = [
        json.loads(line)["gate/label"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
    ]
    assert logged == pytest.approx([0.35, 0.25, 0.15, 0.05], rel=1e-4)
    assert math.isclose(gate(), 0.05, rel_tol=1e-5)  # and so does the exported model
