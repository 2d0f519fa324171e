"""The toy world's motion diagnostics (training/toyworld/motion_probe.py) on the tiny-clip preset."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ovmlv.factory import create_model
from ovmlv.toyworld import MOTIONS
from training.toyworld.motion_probe import (
    REVERSAL_PAIRS,
    label_pair_cosines,
    motion_clips,
    side_swap_map,
    supervised_motion_probe,
)


@pytest.fixture(scope="module")
def tiny_model():
    return create_model("tiny-clip", device="cpu")


def test_reversal_pairs_are_the_three_time_reversals():
    assert REVERSAL_PAIRS == (
        ("moving left", "moving right"),
        ("moving up", "moving down"),
        ("growing", "shrinking"),
    )


def test_motion_clips_match_the_renderer(tiny_model):
    pixels, targets = motion_clips(tiny_model, seed=5, count=3)
    assert pixels.shape == (3, tiny_model.num_frames, 3, tiny_model.image_size, tiny_model.image_size)
    from ovmlv.toyworld import render_clip

    for row, seed in zip(targets, (5, 6, 7)):
        labels = render_clip(seed, num_frames=2 * tiny_model.num_frames).labels
        assert [m for m, t in zip(MOTIONS, row) if t] == [m for m in MOTIONS if m in labels]


def test_probe_trains_only_the_temporal_branch():
    model = create_model("tiny-clip", device="cpu")
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("temporal.")}
    branches = {k: v.clone() for k, v in model.temporal.state_dict().items()}
    train = motion_clips(model, seed=0, count=12)
    test = motion_clips(model, seed=100, count=12)
    result = supervised_motion_probe(model, train, test, steps=3, batch_size=4)
    assert list(result) == list(MOTIONS)
    assert all(math.isnan(ap) or 0.0 <= ap <= 1.0 for ap in result.values())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())
    changed = [k for k, v in model.temporal.state_dict().items() if not torch.equal(v, branches[k])]
    assert any(k.endswith("gate") for k in changed) and any("attn" in k for k in changed)
    assert not any(p.requires_grad for p in model.parameters())


def test_probe_with_the_anchors_as_head_scores_windows_against_e0():
    from training.metrics import average_precision

    model = create_model("tiny-clip", device="cpu")
    with torch.no_grad():
        anchors = model.anchor_label_embeddings(list(MOTIONS)).float()
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("temporal.")}
    train = motion_clips(model, seed=0, count=12)
    test = motion_clips(model, seed=100, count=12)
    result = supervised_motion_probe(model, train, test, steps=3, batch_size=4, head="anchors")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())
    assert any(torch.tanh(b.gate).abs() > 0 for b in model.temporal.branches.values())  # the branches learned
    with torch.no_grad():  # per label, scale and bias are monotone: AP is that of <window, e0>
        expected = average_precision(model.encode_video(test[0], 1.0) @ anchors.T, test[1])
    got = torch.tensor([result[m] for m in MOTIONS])
    assert torch.allclose(got, expected.float(), atol=1e-6, equal_nan=True)
    with pytest.raises(ValueError, match="head must be"):
        supervised_motion_probe(model, train, test, steps=1, head="linear")


def test_label_pair_cosines_match_the_model(tiny_model):
    pairs = (("moving left", "moving right"), ("tomato", "tomato"))
    cosines = label_pair_cosines(tiny_model, pairs)
    assert set(cosines) == {"llm_states", "soft_tokens", "e_soft", "e0", "label"}
    for stage in cosines.values():
        assert stage["tomato / tomato"] == pytest.approx(1.0, abs=1e-5)
    with torch.no_grad():
        labels = tiny_model.encode_labels(["moving left", "moving right"])
        states = tiny_model.label_encoder.llm_states(tiny_model.llm, ["moving left", "moving right"])
    assert cosines["label"]["moving left / moving right"] == pytest.approx(
        float(labels[0] @ labels[1]), abs=1e-5
    )
    expected = F.cosine_similarity(states[0].flatten(), states[1].flatten(), dim=0)
    assert cosines["llm_states"]["moving left / moving right"] == pytest.approx(float(expected), abs=1e-5)
    assert cosines["llm_states"]["moving left / moving right"] < 0.9999  # the LLM reads the label


def test_cli_reports_a_model_that_does_not_load_in_one_line(capsys, tmp_path):
    from training.toyworld.motion_probe import main

    assert main(["labels", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot load {tmp_path / 'missing'}")
    assert main(["probe", "tiny-clip", "--blocks", "0,7", "--steps", "1"]) == 2
    assert "outside the tower" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage and one error line
        main(["probe", "tiny-clip", "--blocks", "last"])
    assert exit_info.value.code == 2 and "expected block numbers" in capsys.readouterr().err


def test_side_swap_map_scores_each_side_at_each_end(fresh_tiny):
    from training.metrics import average_precision

    model = fresh_tiny("tiny-clip", overrides={"adapter_trained": True})
    labels = ["moving left", "moving right", "blinking", "still"]
    pixels, targets = motion_clips(model, seed=20, count=16, labels=labels)
    closed = side_swap_map(model, pixels, targets, labels)
    assert len(set(closed.values())) == 1  # zero gates: both ends are the same model
    with torch.no_grad():
        for branch in model.temporal.branches.values():
            branch.gate.fill_(0.8)
        model.label_encoder.gate.fill_(0.8)
        result = side_swap_map(model, pixels, targets, labels)
        windows = model.encode_video(pixels, 1.0)
        zero_shot_labels = model.encode_labels(labels, 0.0)
        expected = float(average_precision(windows @ zero_shot_labels.T, targets).mean())
    assert result["video 1 / labels 0"] == pytest.approx(expected, abs=1e-6)
    assert result["video 0 / labels 0"] == pytest.approx(closed["video 0 / labels 0"], abs=1e-6)
    assert len({round(v, 6) for v in result.values()}) > 1  # the open gates change the scores


def test_label_gate_sweep_spans_the_anchor_the_model_and_e_soft(fresh_tiny):
    from training.metrics import average_precision
    from training.toyworld.motion_probe import label_gate_sweep

    model = fresh_tiny("tiny-clip", overrides={"adapter_trained": True})
    labels = ["moving left", "moving right", "blinking", "still"]
    pixels, targets = motion_clips(model, seed=30, count=16, labels=labels)
    with torch.no_grad():
        for branch in model.temporal.branches.values():
            branch.gate.fill_(0.8)
        model.label_encoder.gate.fill_(0.8)
        own = math.tanh(0.8)
        swept = label_gate_sweep(model, pixels, targets, labels, [0.0, own, 1.0])
        sides = side_swap_map(model, pixels, targets, labels)
        windows = model.encode_video(pixels, 1.0)
        soft_alone = average_precision(windows @ model.soft_embedding(labels).T, targets)
    assert list(swept) == ["gate 0", f"gate {own:g}", "gate 1"]
    assert float(swept["gate 0"].mean()) == pytest.approx(sides["video 1 / labels 0"], abs=1e-6)
    assert float(swept[f"gate {own:g}"].mean()) == pytest.approx(sides["video 1 / labels 1"], abs=1e-6)
    torch.testing.assert_close(swept["gate 1"], soft_alone)


def test_gates_cli_rejects_gates_outside_zero_to_one(capsys):
    from training.toyworld.motion_probe import main

    for bad in ("0,2", "open"):
        with pytest.raises(SystemExit) as exit_info:
            main(["gates", "tiny-clip", "--gates", bad])
        assert exit_info.value.code == 2 and "gate values" in capsys.readouterr().err
