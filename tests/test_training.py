"""The trainer: config files, a smoke run that learns and exports, DDP, exact resume, no novel labels.

All runs use the tiny-clip preset on synthetic clips (training/data/synthetic.py) on the CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ovmlv
from ovmlv.model import OVMLVModel
from training.config import TrainConfigError, dump_config, load_config
from training.logs import read_metrics
from training.objective import TrainStep
from training.optim import parameter_groups, warmup_cosine
from training.trainer import enable_llm_gradient_checkpointing, train

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "training" / "configs"
SMOKE = CONFIGS / "smoke.yaml"


def run(run_dir: Path, *overrides: str, data: dict | None = None) -> dict:
    """Train the smoke config in this process (on `data` paths instead of generated clips if given)."""
    items = [f"run_dir={run_dir}", *overrides]
    if data is not None:
        items += [f"data.{key}={value}" for key, value in data.items()]
        items += ["data.synthetic_clips=0", "data.synthetic_eval_clips=0"]
    return train(load_config([SMOKE], items))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[Path, dict]:
    """The smoke config exactly as shipped (8 steps, generated clips, evaluation at the end)."""
    run_dir = tmp_path_factory.mktemp("smoke")
    return run_dir, train(load_config([SMOKE], [f"run_dir={run_dir}"]))


@pytest.fixture(scope="module")
def shapes(smoke_run) -> dict:
    """The smoke run's generated training set, reused by the other runs (no regeneration)."""
    folder = smoke_run[0] / "data" / "train"
    return {
        "train_manifest": folder / "manifest.jsonl",
        "vocabulary": folder / "vocabulary.txt",
        "split": folder / "split.json",
    }


@pytest.fixture(scope="module")
def own_tiny_model():
    """A tiny-clip model this module may accumulate gradients in (not the session's shared one)."""
    return ovmlv.create_model("tiny-clip", device="cpu")


# ---- config --------------------------------------------------------------------------------
def test_config_yaml_inherit_and_dotted_overrides():
    cfg = load_config(
        [SMOKE],
        [
            "optim.lr=3e-4",
            "model.overrides.llm.quantization=bf16",
            "data.eval_baselines=[none]",
            "run_dir=/tmp/r",
        ],
    )
    assert cfg.optim.lr == pytest.approx(3e-4) and isinstance(cfg.optim.lr, float)  # "3e-4" is a YAML string
    assert cfg.model.overrides == {"llm": {"quantization": "bf16"}}
    assert cfg.data.eval_baselines == ["none"] and cfg.run_dir == "/tmp/r"
    assert cfg.max_steps == 8 and cfg.model.name == "tiny-clip"  # from smoke.yaml
    assert cfg.optim.betas == [0.9, 0.999] and cfg.optim.grad_clip == 1.0  # inherited from base.yaml


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", r"config\.optim: unknown key\(s\) \['lrr'\]; allowed: \[.*'lr'"),
        ("bogus=1", r"config: unknown key\(s\) \['bogus'\]"),
        ("max_steps=many", r"config\.max_steps: expected int, got 'many'"),
        ("optim.lr.x=1", r"optim\.lr is not a section"),
        ("loss.kind=softmax", r"loss\.kind must be one of"),
        ("no_equals_sign", r"not key=value"),
        ("data.time_reversal_p=1.5", r"data\.time_reversal_p must be in \[0, 1\]"),
        ("data.time_reversal_pairs=[[a, a]]", r"pairs of two different labels"),
        ("data.time_reversal_pairs=[[a, b, c]]", r"pairs of two different labels"),
        ("optim.label_gate_from=0.3", r"optim\.label_gate_from .*needs optim\.label_gate_min"),
        ("optim.label_gate_hold=1.0", r"optim\.label_gate_hold must be in \[0, 1\)"),
        ("optim.label_gate_hold=0.5", r"optim\.label_gate_hold needs optim\.label_gate_from"),
        ("loss.label_weights={a: 0}", r"loss\.label_weights must map labels to numbers > 0"),
        ("loss.label_weights={a: true}", r"loss\.label_weights must map labels to numbers > 0"),
        ("loss.label_weights=[2]", r"loss\.label_weights must map labels to numbers > 0"),
    ],
)
def test_config_errors_name_the_key(override, message):
    with pytest.raises(TrainConfigError, match=message):
        load_config([SMOKE], [override])


def test_config_unknown_key_in_yaml_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(f"inherit: {SMOKE}\noptim:\n  warmup_step: 3\n  lr: 3e-4\n", encoding="utf-8")
    with pytest.raises(TrainConfigError, match=r"config\.optim: unknown key\(s\) \['warmup_step'\]"):
        load_config([path])
    path.write_text(f"inherit: {SMOKE}\noptim:\n  lr: 3e-4\n", encoding="utf-8")
    assert load_config([path]).optim.lr == pytest.approx(3e-4)  # YAML 1.1 alone would read a string


def test_main_reports_a_bad_config_or_missing_data_in_one_line(capsys, tmp_path):
    from training.train import main

    assert main(["--config", str(SMOKE), "optim.lrr=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: config.optim: unknown key(s) ['lrr']") and "\n" not in err
    missing = tmp_path / "missing.jsonl"
    args = [f"run_dir={tmp_path / 'run'}", "data.synthetic_clips=0", f"data.train_manifest={missing}"]
    assert main(["--config", str(SMOKE), *args, f"data.vocabulary={missing}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: data.train_manifest: {missing} does not exist") and "\n" not in err


def test_label_weights_may_name_base_labels_only(shapes, tmp_path):
    """A weight for a novel label (never in the loss) or a label the data lacks is a one-line config
    error before any model is built; base labels are accepted."""
    split = json.loads(Path(shapes["split"]).read_text(encoding="utf-8"))
    novel, base = split["novel"][0], split["base"][0]
    for label in (novel, "no such label"):
        with pytest.raises(TrainConfigError, match=rf"loss\.label_weights names '{label}': not a base label"):
            run(tmp_path / "bad", f"loss.label_weights={{{label}: 2}}", "max_steps=1", data=shapes)
    summary = run(tmp_path / "ok", f"loss.label_weights={{{base}: 2}}", "max_steps=1", data=shapes)
    assert summary["step"] == 1


def test_resolved_config_written_and_reloads(smoke_run):
    run_dir, _ = smoke_run
    written = run_dir / "config.yaml"
    expected = load_config([SMOKE], [f"run_dir={run_dir}"])
    assert load_config([written]) == expected
    assert written.read_text(encoding="utf-8") == dump_config(expected)


# ---- optimiser -------------------------------------------------------------------------------
def test_parameter_groups_and_schedule(fresh_tiny):
    from training.config import OptimSection

    model = fresh_tiny("tiny-clip", overrides={"train_vision_tower": True})
    cfg = OptimSection(lr=1e-3, vision_lr=1e-5, weight_decay=0.1)
    groups = {g["name"]: g for g in parameter_groups(model, cfg)}
    names = {id(p): n for n, p in model.named_parameters()}
    members = {key: {names[id(p)] for p in g["params"]} for key, g in groups.items()}
    no_decay = members["adapters/no_decay"]
    for name in (
        "label_encoder.prefix",
        "label_encoder.queries",
        "label_encoder.gate",
        "logit_scale",
        "logit_bias",
    ):
        assert name in no_decay
    assert "temporal.branches.2.frame_position" in no_decay and "temporal.branches.2.gate" in no_decay
    assert "label_encoder.to_text.weight" in members["adapters/decay"]
    assert "clip.visual.positional_embedding" in members["vision/no_decay"]
    assert groups["vision/decay"]["lr"] == 1e-5 and groups["adapters/decay"]["weight_decay"] == 0.1
    assert groups["vision/no_decay"]["weight_decay"] == 0.0
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set().union(*members.values()) == trainable
    assert not any(n.startswith("clip.transformer") for n in trainable)  # the text tower stays frozen
    ramp = [warmup_cosine(s, 4, 20, 0.1) for s in range(21)]
    assert ramp[0] == pytest.approx(0.2) and ramp[3] < ramp[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(ramp[4:], ramp[5:], strict=False)) and ramp[20] == pytest.approx(0.1)


@pytest.mark.parametrize("kind", ["bce", "asymmetric"])
def test_objective_at_initialisation_is_zero_shot_classification(own_tiny_model, kind):
    from training.config import LossSection
    from training.losses import asymmetric_loss, bce_loss

    from conftest import random_frames

    model = own_tiny_model
    step = TrainStep(model, LossSection(kind=kind, distill_weight=0.5))
    pixels = random_frames(3, model.num_frames, model.image_size)
    labels, targets = ["red circle", "blue square"], torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    losses = step(pixels, labels, targets)
    with torch.no_grad():  # reference: frame-wise CLIP against zero-shot text embeddings
        frames = pixels.flatten(0, 1)
        clip_windows = model.clip.encode_image(frames).reshape(3, model.num_frames, -1).mean(dim=1)
        logits = model.logits(
            torch.nn.functional.normalize(clip_windows, dim=-1), model.zero_shot_label_embeddings(labels)
        )
    expected = bce_loss(logits, targets) if kind == "bce" else asymmetric_loss(logits, targets)
    torch.testing.assert_close(losses["classification"], expected, rtol=1e-4, atol=1e-5)
    assert abs(losses["distill_video"].item()) < 1e-6 and abs(losses["distill_label"].item()) < 1e-6
    torch.testing.assert_close(losses["loss"], losses["classification"], rtol=0, atol=1e-6)
    losses["loss"].backward()  # zero gates still get gradients: the branches ran
    assert all(b.gate.grad is not None and b.gate.grad != 0 for b in model.temporal.branches.values())
    assert model.label_encoder.gate.grad is not None and model.label_encoder.gate.grad != 0
    model.zero_grad(set_to_none=True)  # the gradients are the only state this test leaves behind


def test_label_distillation_can_have_its_own_weight(fresh_tiny):
    from training.config import LossSection

    from conftest import random_frames

    model = fresh_tiny("tiny-clip")
    with torch.no_grad():  # open the gates, so that both distillation terms are non-zero
        for branch in model.temporal.branches.values():
            branch.gate.fill_(0.5)
        model.label_encoder.gate.fill_(0.5)
    pixels = random_frames(2, model.num_frames, model.image_size)
    labels, targets = ["red circle", "blue square"], torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    with torch.no_grad():
        own = TrainStep(model, LossSection(distill_weight=0.5, label_distill_weight=3.0))(
            pixels, labels, targets
        )
        shared = TrainStep(model, LossSection(distill_weight=0.5))(pixels, labels, targets)
    assert own["distill_video"].item() > 1e-4 and own["distill_label"].item() > 1e-4
    expected = own["classification"] + 0.5 * own["distill_video"] + 3.0 * own["distill_label"]
    torch.testing.assert_close(own["loss"], expected)
    expected = shared["classification"] + 0.5 * (shared["distill_video"] + shared["distill_label"])
    torch.testing.assert_close(shared["loss"], expected)
    torch.testing.assert_close(shared["distill_label"], own["distill_label"])


def test_vision_tower_option_distils_toward_a_frozen_copy(fresh_tiny):
    from training.config import LossSection

    model = fresh_tiny("tiny-clip", overrides={"train_vision_tower": True})
    step = TrainStep(model, LossSection(distill_weight=1.0))
    from conftest import random_frames

    pixels = random_frames(2, model.num_frames, model.image_size)
    frozen = step.frozen_windows(pixels)
    with torch.no_grad():
        assert torch.allclose(frozen, model.encode_video(pixels, 0.0), atol=1e-5)  # zero-shot CLIP
    optimizer = torch.optim.AdamW(parameter_groups(model, _optim(lr=1e-2, vision_lr=1e-2)))
    labels, targets = ["red circle", "blue square"], torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    for _ in range(2):
        losses = step(pixels, labels, targets)
        losses["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
    assert torch.equal(step.frozen_windows(pixels), frozen)  # the reference did not train
    with torch.no_grad():
        assert not torch.allclose(model.encode_video(pixels, 0.0), frozen, atol=1e-4)  # the tower did


def _optim(**kwargs):
    from training.config import OptimSection

    return OptimSection(**kwargs)


# ---- gradient checkpointing through the LLM ----------------------------------------------------
def test_gradient_checkpointing_through_llm_matches_plain_gradients():
    labels = ["red circle", "a person dribbling"]

    def gradients(checkpointing: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
        model = ovmlv.create_model("tiny-clip", device="cpu")
        with torch.no_grad():
            model.label_encoder.gate.fill_(0.7)  # at 0 the soft path (and so the prefix) gets no gradient
        if checkpointing:
            enable_llm_gradient_checkpointing(model)
        calls = []
        # A module at the start of the checkpointed layer (recomputation stops early once it has what it needs)
        inner = model.llm.model.get_decoder().layers[0].self_attn
        handle = inner.register_forward_hook(lambda *args: calls.append(1))
        embeddings = model.soft_label_embeddings(labels, 1.0)
        direction = torch.randn(embeddings.shape, generator=torch.Generator().manual_seed(0))
        (embeddings * direction).sum().backward()
        handle.remove()
        return model.label_encoder.prefix.grad, model.label_encoder.queries.grad, len(calls)

    prefix, queries, plain_calls = gradients(False)
    prefix_ckpt, queries_ckpt, ckpt_calls = gradients(True)
    assert prefix.abs().sum() > 0 and queries.abs().sum() > 0
    assert ckpt_calls == 2 * plain_calls  # the layer really was recomputed in backward
    torch.testing.assert_close(prefix_ckpt, prefix, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(queries_ckpt, queries, rtol=1e-5, atol=1e-7)


# ---- whole runs --------------------------------------------------------------------------------
def test_smoke_run_learns_and_exports_a_checkpoint(smoke_run):
    run_dir, summary = smoke_run
    losses = [m["loss"] for m in read_metrics(run_dir)]
    assert len(losses) == 8
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.02, losses
    final = Path(summary["final"])
    assert final == run_dir / "final" and (final / "model.safetensors").is_file()
    assert json.loads((final / "config.json").read_text())["model"]["adapter_trained"] is True
    assert (final / "eval.json").is_file() and summary["evaluation"]["systems"]["none"]["map"] is not None
    assert (run_dir / "tensorboard").is_dir() and any((run_dir / "tensorboard").iterdir())

    video = next((run_dir / "data" / "eval" / "videos").glob("*.mp4"))
    labels = (run_dir / "data" / "train" / "vocabulary.txt").read_text().split("\n")[:6]
    trained = ovmlv.VideoClassifier.from_pretrained(final, device="cpu", label_db_path=None)
    untrained = ovmlv.VideoClassifier.from_pretrained("tiny-clip", device="cpu", label_db_path=None)
    state = trained.encode_video(video)
    tuned_scores = trained.score(state, labels).timeline
    assert not torch.allclose(
        torch.from_numpy(tuned_scores),
        torch.from_numpy(trained.score(state, labels, alpha=0.0).timeline),
        atol=1e-4,
    )
    base_scores = untrained.classify(video, labels).timeline
    assert tuned_scores.shape == base_scores.shape
    assert not torch.allclose(torch.from_numpy(tuned_scores), torch.from_numpy(base_scores), atol=1e-4)


def test_no_novel_label_ever_reaches_the_loss(tmp_path, shapes, monkeypatch):
    from training.data import read_split

    seen: list[str] = []
    for method in ("soft_label_embeddings", "zero_shot_label_embeddings"):
        original = getattr(OVMLVModel, method)

        def spy(self, labels, *args, _original=original, **kwargs):
            seen.extend(labels)
            return _original(self, labels, *args, **kwargs)

        monkeypatch.setattr(OVMLVModel, method, spy)
    run(tmp_path, "max_steps=4", "loss.num_negatives=-1", data=shapes)
    split = read_split(shapes["split"])
    assert split.novel and set(split.base).isdisjoint(split.novel)
    assert set(seen) == set(split.base)  # every base label was scored (the spy works), nothing else


def test_killed_run_resumes_to_the_same_final_loss(tmp_path, shapes):
    steps = ["max_steps=6", "checkpoint_every=3"]  # 16 clips / 4 = 4 steps per epoch: resume mid-epoch
    straight = run(tmp_path / "straight", *steps, data=shapes)
    killed = run(tmp_path / "killed", *steps, "max_steps_this_run=5", data=shapes)
    assert killed["final"] is None and not (tmp_path / "killed" / "final").exists()
    assert [p.name for p in sorted((tmp_path / "killed" / "checkpoints").iterdir())] == ["step-00000003"]
    resumed = run(tmp_path / "killed", *steps, data=shapes)  # resume=auto: from step 3, steps 4-5 redone
    assert resumed["step"] == straight["step"] == 6
    assert resumed["losses"]["loss"] == pytest.approx(straight["losses"]["loss"], abs=1e-6)
    replayed = [m["loss"] for m in read_metrics(tmp_path / "killed")]
    assert replayed == pytest.approx([m["loss"] for m in read_metrics(tmp_path / "straight")], abs=1e-6)
    from safetensors.torch import load_file

    a = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "final" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_bf16_on_the_cpu_runs_under_autocast_with_the_math_attention_kernel(tmp_path, shapes, monkeypatch):
    """The toy world fine-tunes with mixed_precision bf16 on the CPU: autocast (first loss close
    to float32's, not equal) with the flash attention kernel switched off (its bf16 backward is
    slow), in the same process as float32 runs (accelerate's own CPU bf16 would refuse that)."""
    import contextlib

    import training.trainer as trainer_module

    original, seen = trainer_module.compute_precision, []

    @contextlib.contextmanager
    def spy(precision):
        with original(precision):
            seen.append(
                (precision, torch.is_autocast_enabled("cpu"), torch.backends.cuda.flash_sdp_enabled())
            )
            yield

    monkeypatch.setattr(trainer_module, "compute_precision", spy)
    first = {}
    for mode in ("no", "bf16"):
        # quoted: YAML reads a bare no as false
        run(tmp_path / mode, "max_steps=1", f"mixed_precision={mode!r}", data=shapes)
        first[mode] = read_metrics(tmp_path / mode)[0]["loss"]
    assert seen == [("fp32", False, True), ("bf16", True, False)]
    assert first["bf16"] != first["no"] and first["bf16"] == pytest.approx(first["no"], rel=0.05)
    assert torch.backends.cuda.flash_sdp_enabled() and not torch.is_autocast_enabled("cpu")  # restored


def test_a_bf16_reference_tower_gives_the_frozen_windows_of_the_model_at_alpha_0(fresh_tiny):
    """CPU bf16 runs the alpha-0 pass (a distillation target, no gradients) on a bf16 copy of the
    frozen vision tower: close to the model's own float32 frame-wise CLIP, inside the trainer's
    autocast too, and the model itself stays float32."""
    from training.config import LossSection
    from training.precision import compute_precision

    from conftest import random_frames

    model = fresh_tiny("tiny-clip")
    step = TrainStep(model, LossSection(distill_weight=1.0), torch.bfloat16)
    assert {p.dtype for p in step.reference_visual.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.clip.visual.parameters()} == {torch.float32}
    assert not any(p.requires_grad for p in step.reference_visual.parameters())
    pixels = random_frames(3, model.num_frames, model.image_size)
    with torch.no_grad():
        reference = model.encode_video(pixels, 0.0)
    for precision in ("fp32", "bf16"):
        with compute_precision(precision):
            frozen = step.frozen_windows(pixels)
        cosine = (frozen * reference).sum(-1)
        assert frozen.dtype == torch.float32 and cosine.min() > 0.999 and not torch.equal(frozen, reference)
    labels, targets = ["red circle", "blue square"], torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with compute_precision("bf16"):
        losses = step(pixels, labels, targets)
    # at initialisation (gates 0) the tuned windows are frame-wise CLIP: only bf16 rounding is left
    assert 0 <= losses["distill_video"].item() < 1e-3
    losses["loss"].backward()
    assert all(p.grad is None for p in step.reference_visual.parameters())


def test_the_trainer_uses_a_bf16_reference_tower_only_for_cpu_bf16(tmp_path, shapes):
    from training.trainer import Trainer

    for mode, expected in (("no", None), ("bf16", torch.bfloat16)):
        items = [f"run_dir={tmp_path / mode}", f"mixed_precision={mode!r}", "data.synthetic_clips=0"]
        items += [f"data.{key}={value}" for key, value in shapes.items()]
        reference = Trainer(load_config([SMOKE], items)).step_module.reference_visual
        assert (None if reference is None else next(reference.parameters()).dtype) == expected


@pytest.mark.slow
def test_two_process_cpu_ddp_run_writes_one_final_checkpoint(tmp_path, shapes):
    torchrun = Path(sys.executable).with_name("torchrun")
    run_dir = tmp_path / "ddp"
    command = [
        str(torchrun),
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "training",
        "--config",
        str(SMOKE),
        f"run_dir={run_dir}",
        "max_steps=4",
        "checkpoint_every=2",
        "data.synthetic_clips=0",
        "data.synthetic_eval_clips=0",
        *[f"data.{key}={value}" for key, value in shapes.items()],
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("final")) == ["final"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-00000002", "step-00000004"]
    metrics = read_metrics(run_dir)
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]  # one writer
    assert all(m["clips"] == 8 for m in metrics)  # two processes x 4 clips: the data was sharded
    model = ovmlv.create_model(run_dir / "final", device="cpu")
    assert model.config.adapter_trained and model.has_temporal_effect()
