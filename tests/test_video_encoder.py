"""The temporal video encoder against open_clip's own encode_image (both vision families)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_PRESETS, random_frames


def framewise_reference(model, frames: torch.Tensor) -> torch.Tensor:
    per_frame = torch.stack([model.clip.encode_image(frames[:, t]) for t in range(frames.shape[1])], dim=1)
    return F.normalize(per_frame.mean(dim=1), dim=-1)


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_init_equals_framewise_encode_image(tiny_models, preset):
    model = tiny_models[preset]
    frames = random_frames(3, model.num_frames, model.image_size)
    with torch.no_grad():
        ours = model.encode_video(frames)
        reference = framewise_reference(model, frames)
    assert ours.shape == (3, model.clip.encode_image(frames[:, 0]).shape[-1])
    assert (ours - reference).abs().max() <= 1e-5


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_init_equality_holds_with_grad_enabled(tiny_models, preset):
    """In training mode the branch is computed (for the gate's gradient) and still adds nothing."""
    model = tiny_models[preset]
    frames = random_frames(2, model.num_frames, model.image_size, seed=1)
    ours = model.encode_video(frames)
    with torch.no_grad():
        reference = framewise_reference(model, frames)
    assert (ours.detach() - reference).abs().max() <= 1e-5


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_nonzero_gate_makes_frame_order_matter(fresh_tiny, preset):
    model = fresh_tiny(preset)
    frames = random_frames(2, model.num_frames, model.image_size, seed=2)
    reversed_frames = frames.flip(1)
    with torch.no_grad():
        blind = (model.encode_video(frames) - model.encode_video(reversed_frames)).abs().max()
        for branch in model.temporal.branches.values():
            branch.gate.fill_(1.0)
            branch.frame_position.normal_(0.0, 1.0)  # as after training: positions carry order
        forward = model.encode_video(frames)
        backward = model.encode_video(reversed_frames)
    assert blind <= 1e-5  # frame-order-blind at initialisation: mean pooling
    assert (forward - backward).abs().max() > 1e-3


def test_position_table_starts_at_the_configured_spread_and_init_stays_framewise(fresh_tiny):
    default = fresh_tiny("tiny-clip")
    wide = fresh_tiny("tiny-clip", overrides={"temporal": {"position_init_std": 0.3}})
    frames = random_frames(2, wide.num_frames, wide.image_size, seed=5)
    for model, std in ((default, 0.02), (wide, 0.3)):
        table = torch.cat([b.frame_position.detach().flatten() for b in model.temporal.branches.values()])
        assert table.std().item() == pytest.approx(std, rel=0.1)
        with torch.no_grad():  # the gates are closed: the table cannot change the embedding yet
            assert (model.encode_video(frames) - framewise_reference(model, frames)).abs().max() <= 1e-5


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_gradients_reach_temporal_parameters(fresh_tiny, preset):
    model = fresh_tiny(preset)
    with torch.no_grad():
        for branch in model.temporal.branches.values():
            branch.gate.fill_(0.5)
    model.temporal.requires_grad_(True)
    frames = random_frames(2, model.num_frames, model.image_size, seed=3)
    model.encode_video(frames).sum().backward()
    for name, param in model.temporal.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.clip.visual.parameters())  # the tower stays frozen


def test_gate_gets_gradient_at_initialisation(fresh_tiny):
    """tanh'(0) = 1: training can open a gate that starts closed."""
    model = fresh_tiny("tiny-clip")
    frames = random_frames(2, model.num_frames, model.image_size, seed=4)
    target = torch.randn(2, model.encode_video(frames).shape[-1])
    (model.encode_video(frames) * target).sum().backward()
    gates = [b.gate.grad for b in model.temporal.branches.values()]
    assert all(g is not None and g.abs() > 0 for g in gates)


def test_alpha_scales_the_gates(fresh_tiny):
    model = fresh_tiny("tiny-siglip")
    frames = random_frames(2, model.num_frames, model.image_size, seed=5)
    with torch.no_grad():
        reference = framewise_reference(model, frames)
        for branch in model.temporal.branches.values():
            branch.gate.fill_(0.8)
        both = model.encode_video_alphas(frames, (0.0, 0.5, 1.0))
        singles = [model.encode_video(frames, alpha=a) for a in (0.0, 0.5, 1.0)]
    assert (both[0] - reference).abs().max() <= 1e-5  # alpha 0 is pure frame-wise CLIP
    for shared, single in zip(both, singles):
        assert (shared - single).abs().max() <= 1e-5
    assert (both[1] - both[2]).abs().max() > 1e-4


def test_configurable_blocks(fresh_tiny):
    model = fresh_tiny("tiny-clip", overrides={"temporal": {"blocks": [0, 2]}})
    assert model.temporal.block_indices == [0, 2]
    with pytest.raises(ValueError, match="outside"):
        fresh_tiny("tiny-clip", overrides={"temporal": {"blocks": [7]}})
