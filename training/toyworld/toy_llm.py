"""Pretraining the toy LLM: a small Llama-style causal LM that knows what every toy noun looks like.

The tokenizer is a byte-level BPE built with the `tokenizers` library on the corpus (any
text still tokenises), wrapped as a PreTrainedTokenizerFast with the same chat template as
`ovmlv.tiny_llm`. The model learns the definitions and the chat answers of corpus.py; the
loss of a chat example covers only the answer. Saved with save_pretrained (safetensors), it
loads through `ovmlv.llm.load_llm(LLMConfig(name=DIR, quantization="none"), ...)`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ovmlv import prompts
from ovmlv.tiny_llm import train_chat_tokenizer
from training.precision import check_precision, compute_precision

from . import optimiser_step
from .corpus import chat_examples, definition_documents, tokenizer_corpus

logger = logging.getLogger(__name__)

IGNORE = -100


@dataclass
class ToyLLMConfig:
    """Size and training schedule of the toy LLM."""

    vocab_size: int = 768  # byte-level BPE merges learned on the corpus
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 384
    steps: int = 1800  # optimisation steps (1000 left the shape of a noun undecodable from the soft prompt)
    batch_size: int = 32  # sequences per step
    chat_fraction: float = 0.75  # of each batch: chat answers; the rest are definition documents
    lr: float = 3e-3  # peak AdamW learning rate
    warmup_steps: int = 50
    num_documents: int = 3000  # definition documents (a few sentences each)
    soft_repeat: int = 3  # how often each soft-instruction example is in the chat pool
    seed: int = 0
    precision: str = "bf16"  # or "fp32"; bf16 is training/precision.py's autocast with float32 master
    # weights: 0.17 s a step instead of 0.21 s on 2 cores, phrases exact either way (session 13). Since
    # session 29 a step runs the chats' shared prompt once (shared_prompt_loss): 0.195 s against 0.28-0.32

    def __post_init__(self) -> None:
        check_precision(self.precision)


def build_tokenizer(vocab_size: int = 768) -> Any:
    """A PreTrainedTokenizerFast (byte-level BPE trained on the corpus, chat template, pad/bos/eos)."""
    return train_chat_tokenizer(tokenizer_corpus(), vocab_size)


def build_model(cfg: ToyLLMConfig, tokenizer: Any) -> Any:
    """A randomly initialised LlamaForCausalLM of the configured size."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def encode_examples(
    tokenizer: Any, rng: np.random.Generator, num_documents: int, soft_repeat: int = 1
) -> tuple[list, list]:
    """(chat, documents): lists of (input ids, target ids) with IGNORE on chat prompts.

    Soft-instruction examples are repeated `soft_repeat` times: their first answer token
    (colour or shape, see corpus.soft_answers) is what shapes the states the adapter reads.
    """
    eos = tokenizer.eos_token_id
    chats = []
    for example in chat_examples():
        prompt = prompts.chat_ids(tokenizer, example.user)
        answer = tokenizer(example.answer, add_special_tokens=False)["input_ids"] + [eos]
        row = (prompt + answer, [IGNORE] * len(prompt) + answer)
        chats += [row] * (soft_repeat if example.kind == "soft" else 1)
    documents = []
    for text in definition_documents(rng, num_documents):
        ids = [tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]
        documents.append((ids, ids))
    return chats, documents


def collate(rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask and labels."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id)
    labels = torch.full((len(rows), width), IGNORE)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (inputs, targets) in enumerate(rows):
        ids[i, : len(inputs)] = torch.tensor(inputs)
        labels[i, : len(targets)] = torch.tensor(targets)
        mask[i, : len(inputs)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def shared_prompt_length(chats: list[tuple[list[int], list[int]]]) -> int:
    """How many leading tokens every chat row shares (the chat template's system prompt and the
    start of the user turn), cut so that none of them, nor the token after them, is a target."""
    shortest = min(len(ids) for ids, _ in chats)
    length = 0
    while length < shortest and len({ids[length] for ids, _ in chats}) == 1:
        length += 1
    while length and any(IGNORE != t for _, targets in chats for t in targets[: length + 1]):
        length -= 1
    return length


def shared_prompt_loss(
    model: Any,
    chats: list[tuple[list[int], list[int]]],
    documents: list[tuple[list[int], list[int]]],
    prompt_length: int,
    pad_id: int,
) -> torch.Tensor:
    """The loss `model(**collate(chats + documents, pad_id)).loss` is (the mean next-token cross
    entropy over every target), computed with the chats' shared first `prompt_length` tokens
    (`shared_prompt_length`) run once for the batch, not once per chat row, and without padding the
    documents to the chats' width: a batch of 24 chats of 106-135 tokens, 79 of them shared, and
    8 documents of 22-52 is ~1800 tokens instead of ~4300.
    """
    from transformers import DynamicCache

    decoder, head = model.get_decoder(), model.get_output_embeddings()
    parts = []  # (hidden states, targets) of the chats and of the documents
    if chats:
        cache, past = None, None
        if prompt_length:
            cache = DynamicCache(config=model.config)
            decoder(input_ids=torch.tensor([chats[0][0][:prompt_length]]), cache=cache, use_cache=True)
            cache.batch_repeat_interleave(len(chats))  # every row attends to the one shared prompt
            past = torch.ones(len(chats), prompt_length, dtype=torch.long)
        rest = collate([(ids[prompt_length:], targets[prompt_length:]) for ids, targets in chats], pad_id)
        width = rest["input_ids"].shape[1]
        states = decoder(
            input_ids=rest["input_ids"],
            attention_mask=rest["attention_mask"]
            if past is None
            else torch.cat([past, rest["attention_mask"]], 1),
            position_ids=(prompt_length + torch.arange(width)).unsqueeze(0).expand(len(chats), -1),
            cache=cache,
            use_cache=cache is not None,
        ).last_hidden_state
        parts.append((states, rest["labels"]))
    if documents:
        docs = collate(documents, pad_id)
        states = decoder(input_ids=docs["input_ids"], attention_mask=docs["attention_mask"]).last_hidden_state
        parts.append((states, docs["labels"]))
    hidden, targets = [], []
    for states, labels in parts:
        after = labels[:, 1:]  # position j predicts the token at j + 1
        scored = after != IGNORE
        hidden.append(states[:, :-1][scored])
        targets.append(after[scored])
    logits = head(torch.cat(hidden)).float()  # the output layer only where there is a target
    return torch.nn.functional.cross_entropy(logits, torch.cat(targets))


def train_toy_llm(cfg: ToyLLMConfig, log_every: int = 100) -> tuple[Any, Any, dict[str, float]]:
    """Build the tokenizer and train the toy LLM; returns (model in eval mode, tokenizer, stats)."""
    start = time.perf_counter()
    tokenizer = build_tokenizer(cfg.vocab_size)
    model = build_model(cfg, tokenizer).train()
    rng = np.random.default_rng(cfg.seed)
    chats, documents = encode_examples(tokenizer, rng, cfg.num_documents, cfg.soft_repeat)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.98))
    prompt_length = shared_prompt_length(chats)
    running = 0.0
    for step in range(cfg.steps):
        if step < cfg.warmup_steps:
            lr = cfg.lr * (step + 1) / cfg.warmup_steps
        else:
            lr = (
                cfg.lr
                * 0.5
                * (1 + math.cos(math.pi * (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)))
            )
        for group in optimizer.param_groups:
            group["lr"] = lr
        num_chat = round(cfg.batch_size * cfg.chat_fraction)
        chat_rows = [chats[i] for i in rng.choice(len(chats), size=num_chat, replace=False)]
        doc_rows = [
            documents[i] for i in rng.choice(len(documents), size=cfg.batch_size - num_chat, replace=False)
        ]
        with compute_precision(cfg.precision):
            loss = shared_prompt_loss(model, chat_rows, doc_rows, prompt_length, tokenizer.pad_token_id)
        running = optimiser_step(model, optimizer, loss, running, step)
        if (step + 1) % log_every == 0 or step + 1 == cfg.steps:
            logger.info(
                "toy LLM step %d/%d loss %.4f (%.1f s)",
                step + 1,
                cfg.steps,
                running,
                time.perf_counter() - start,
            )
    stats = {"train_s": time.perf_counter() - start, "final_loss": running, "chat_examples": len(chats)}
    return model.eval(), tokenizer, stats


def save_toy_llm(model: Any, tokenizer: Any, out_dir: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """save_pretrained (safetensors, weights stored as `dtype`) + the tokenizer files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to(dtype).save_pretrained(out_dir)
    model.to(torch.float32)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def check_toy_llm(llm: Any, num_attributes: int = 3) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Greedy attribute lists through the library (`ovmlv.describe`) for every noun, scored.

    Args:
        llm: an `ovmlv.llm.LLMBundle` holding the toy LLM.
        num_attributes: N of the attribute prompt.

    Returns:
        ({"base_exact", "novel_exact", "colour_shape_exact", "motion_exact"}: fractions of labels
        whose phrases are exactly the expected ones, plus `soft_state_probe`), and the phrases.
    """
    from ovmlv.config import LabelConfig
    from ovmlv.describe import generate_attributes
    from ovmlv.toyworld import vocabulary as vocab

    from .corpus import MOTION_PHRASES, noun_attributes

    pairs = [f"{c} {s}" for c in vocab.COLOURS for s in vocab.SHAPES]
    labels = [n.name for n in vocab.NOUNS] + pairs + list(vocab.MOTIONS)
    phrases = generate_attributes(llm, labels, LabelConfig(num_attributes=num_attributes, max_new_tokens=32))

    def exact(names: list[str], expected: Any) -> float:
        return float(np.mean([phrases[n] == expected(n)[:num_attributes] for n in names]))

    by_name = vocab.NOUN_BY_NAME
    scores = {
        "base_exact": exact(list(vocab.BASE_NOUNS), lambda n: noun_attributes(by_name[n])),
        "novel_exact": exact(list(vocab.NOVEL_NOUNS), lambda n: noun_attributes(by_name[n])),
        # the parser drops a phrase equal to the label: "red circle" -> ["red colour", "circle shape"]
        "colour_shape_exact": exact(pairs, lambda p: [f"{p.split()[0]} colour", f"{p.split()[1]} shape"]),
    }
    scores["motion_exact"] = exact(list(vocab.MOTIONS), lambda m: MOTION_PHRASES[m])
    scores.update(soft_state_probe(llm))
    return scores, phrases


def _leave_one_out(features: np.ndarray, classes: list[str], ridge: float = 1e-2) -> float:
    """Accuracy of a ridge-regression readout fitted on all rows but one, on the row left out."""
    x = features - features.mean(axis=0)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-8
    names = sorted(set(classes))
    targets = np.eye(len(names))[[names.index(c) for c in classes]]
    hits = 0
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        a = x[keep]
        weights = a.T @ np.linalg.solve(a @ a.T + ridge * np.eye(len(a)), targets[keep])
        hits += int(np.argmax(x[i] @ weights) == names.index(classes[i]))
    return hits / len(x)


def reversal_cosines(states: dict[str, np.ndarray]) -> dict[str, float]:
    """Cosine between the states of each motion and its time reversal, both centred on the mean of
    every state given: {"moving left / moving right": ..., ...}."""
    from ovmlv.toyworld import REVERSAL_PAIRS

    from .motion_probe import pair_cosines

    rows = torch.from_numpy(np.stack(list(states.values())))
    index = {label: i for i, label in enumerate(states)}
    return pair_cosines(rows - rows.mean(dim=0), index, REVERSAL_PAIRS)


@torch.no_grad()
def soft_state_probe(llm: Any) -> dict[str, float]:
    """How well the LLM's last hidden state of the soft prompt codes what a label looks like.

    Leave-one-noun-out accuracy of a linear readout over the 24 nouns (chance: 1/6 and 1/5): a
    noun-independent code, which is what lets soft attributes generalise to novel nouns. And the
    cosine between the states of each motion and its time reversal, centred on the mean state of
    every noun and motion (`soft_state_cos <pair>`): near 1, the soft attributes of the two start
    alike, and fine-tuning hardly tells the pair apart (session 22: "growing" / "shrinking" at
    0.999 scored 0.46 / 0.50, against 0.84 / 0.83 with another toy LLM at 0.76).
    """
    from ovmlv.prompts import soft_prompt_ids
    from ovmlv.toyworld import MOTIONS, NOUNS

    def state(label: str) -> np.ndarray:
        ids = torch.tensor([soft_prompt_ids(llm.tokenizer, label)], device=llm.device)
        hidden = llm.model.get_decoder()(input_ids=ids).last_hidden_state
        return hidden[0, -1].float().cpu().numpy()

    states = {label: state(label) for label in [n.name for n in NOUNS] + list(MOTIONS)}
    features = np.stack([states[n.name] for n in NOUNS])
    scores = {
        "soft_state_colour_loo": _leave_one_out(features, [n.colour for n in NOUNS]),
        "soft_state_shape_loo": _leave_one_out(features, [n.shape for n in NOUNS]),
    }
    scores.update({f"soft_state_cos {pair}": cos for pair, cos in reversal_cosines(states).items()})
    return scores
