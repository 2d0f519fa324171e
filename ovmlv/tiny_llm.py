"""A tiny random Llama-style LLM with a real tokenizer, built offline for the tiny presets and tests.

The tokenizer is a byte-level BPE trained (in milliseconds) with the `tokenizers` library on a
small fixed corpus, so any text (non-Latin scripts, emoji) tokenises. Saved with
`save_pretrained`, the model loads back through the same loader as the real presets.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
_CORPUS = [
    "Describe the visual attributes of the label as it appears in a video.",
    "List up to five short visual attributes, one per line.",
    "a video of a person running dribbling a ball crowd cheering red circle blue square",
    "1. round shape 2. bright colour 3. moving left 4. moving right 5. growing shrinking blinking",
    "- green triangle - yellow star - purple cross - orange ring - the quick brown fox",
]


def train_chat_tokenizer(corpus: Iterable[str], vocab_size: int):
    """A PreTrainedTokenizerFast: byte-level BPE trained on `corpus`, chat template, pad/bos/eos set.

    Byte-level, so any text (non-Latin scripts, emoji) tokenises whatever the corpus held.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,  # it would print to stdout (fd level) on every load
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        bos_token="<|bos|>",
        eos_token="<|end|>",
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_tokenizer():
    """The tiny presets' tokenizer (512 tokens, trained on a small fixed corpus)."""
    return train_chat_tokenizer(_CORPUS * 4, vocab_size=512)


def build_tiny_llm(seed: int = 0, hidden_size: int = 64, layers: int = 2):
    """(model, tokenizer): a random LlamaForCausalLM sized for tests."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


def save_tiny_llm(directory: str | Path, seed: int = 0) -> Path:
    """Write the tiny LLM + tokenizer with save_pretrained (safetensors) and return the directory."""
    model, tokenizer = build_tiny_llm(seed)
    directory = Path(directory)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
