"""One training step of the toy LLM: the loss with the chats' shared prompt run once is the
plain padded batch's loss, gradients included (training/toyworld/toy_llm.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from training.toyworld.toy_llm import (
    IGNORE,
    ToyLLMConfig,
    build_model,
    build_tokenizer,
    collate,
    encode_examples,
    shared_prompt_length,
    shared_prompt_loss,
)


@pytest.fixture(scope="module")
def llm_and_rows():
    cfg = replace(ToyLLMConfig(), hidden_size=64, layers=2, intermediate_size=128)
    tokenizer = build_tokenizer(cfg.vocab_size)
    model = build_model(cfg, tokenizer).train()
    chats, documents = encode_examples(tokenizer, np.random.default_rng(0), num_documents=40)
    return model, tokenizer.pad_token_id, chats, documents


def _loss_and_grads(model, loss_fn) -> tuple[torch.Tensor, torch.Tensor]:
    model.zero_grad()
    loss = loss_fn()
    loss.backward()
    return loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters()])


def test_shared_prompt_is_the_chat_template_before_any_target(llm_and_rows):
    _, _, chats, _ = llm_and_rows
    length = shared_prompt_length(chats)
    assert 40 < length < min(len(ids) for ids, _ in chats)  # the system prompt and more, not a whole chat
    assert len({tuple(ids[:length]) for ids, _ in chats}) == 1
    assert all(t == IGNORE for _, targets in chats for t in targets[: length + 1])
    assert (
        len({ids[length] for ids, _ in chats}) > 1
        or any(  # one token more is not shared, or is a target
            t != IGNORE for _, targets in chats for t in targets[: length + 2]
        )
    )
    assert shared_prompt_length([([5, 6, 7], [IGNORE, 6, 7]), ([5, 6, 8], [IGNORE, 6, 8])]) == 0


@pytest.mark.parametrize("num_chats, num_documents", [(6, 2), (4, 0), (0, 3)])
def test_shared_prompt_loss_is_the_padded_batch_loss_with_its_gradients(
    llm_and_rows, num_chats, num_documents
):
    model, pad_id, chats, documents = llm_and_rows
    rng = np.random.default_rng(1)
    chat_rows = [chats[i] for i in rng.choice(len(chats), size=num_chats, replace=False)]
    doc_rows = [documents[i] for i in rng.choice(len(documents), size=num_documents, replace=False)]
    length = shared_prompt_length(chats)
    reference, reference_grads = _loss_and_grads(
        model, lambda: model(**collate(chat_rows + doc_rows, pad_id)).loss
    )
    loss, grads = _loss_and_grads(
        model, lambda: shared_prompt_loss(model, chat_rows, doc_rows, length, pad_id)
    )
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads, reference_grads, rtol=1e-4, atol=1e-6)
    assert reference_grads.abs().max() > 1e-3  # gradients that could differ
