"""The token-embedding text path against open_clip's encode_text (causal/end-token and last-token pooling)."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY_PRESETS

TEXTS = ["a video of a dog", "a video of people cheering in a crowded gym", "跳舞 🐶", ""]


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_equals_encode_text_without_soft_tokens(tiny_models, preset):
    model = tiny_models[preset]
    ids = model.tokenizer(TEXTS)
    with torch.no_grad():
        reference = model.clip.encode_text(ids)
        ours = model.text_tower.encode(TEXTS)
    assert (ours - reference).abs().max() <= 1e-5


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_soft_tokens_equal_to_real_token_embeddings_reproduce_the_longer_text(tiny_models, preset):
    """Inserting the embeddings of real words before the end token == tokenising the longer text."""
    model = tiny_models[preset]
    tower = model.text_tower
    extra_ids = model.tokenizer(["running fast"])[0]
    extra_ids = extra_ids[1 : int((extra_ids != 0).sum()) - 1]  # strip start/end tokens and padding
    soft = tower.parts.token_embedding(extra_ids).unsqueeze(0).repeat(2, 1, 1)  # [2, K, W]
    with torch.no_grad():
        ours = tower.encode(["a video of a dog", "a video of a cat"], soft)
        reference = model.clip.encode_text(
            model.tokenizer(["a video of a dog running fast", "a video of a cat running fast"])
        )
    assert (ours - reference).abs().max() <= 1e-5


def test_pool_position_is_tracked_not_rederived(tiny_models):
    """With soft tokens the end token is no longer at argmax(ids); the tracked position is used."""
    tower = tiny_models["tiny-clip"].text_tower
    ids = tower.tokenize(["a dog"])
    soft = torch.zeros(1, 3, tower.width)
    embeddings, positions = tower.embed_with_soft_tokens(ids, soft)
    assert int(ids.argmax()) == 3  # [SOT, a, dog, EOT]
    assert int(positions[0]) == 6
    assert torch.equal(embeddings[0, 6], tower.parts.token_embedding.weight[tower.end_id])


def test_long_text_is_truncated_but_keeps_the_end_token(tiny_models):
    tower = tiny_models["tiny-clip"].text_tower
    ids = tower.tokenize([" ".join(["word"] * 200)])
    soft = torch.zeros(1, 4, tower.width)
    embeddings, positions = tower.embed_with_soft_tokens(ids, soft)
    assert embeddings.shape[1] == tower.context_length
    assert int(positions[0]) == tower.context_length - 1
    assert torch.equal(embeddings[0, -1], tower.parts.token_embedding.weight[tower.end_id])
    assert torch.equal(embeddings[0, -5:-1], soft[0])


def test_last_token_pooling_keeps_the_last_position(tiny_models):
    tower = tiny_models["tiny-siglip"].text_tower
    assert tower.parts.pool_type == "last" and tower.parts.attn_mask is None
    ids = tower.tokenize(["a dog"])
    _, positions = tower.embed_with_soft_tokens(ids, torch.zeros(1, 3, tower.width))
    assert int(positions[0]) == tower.context_length - 1
