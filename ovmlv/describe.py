"""Zero-shot attributes (DESIGN §2.3): the LLM writes short visual phrases for each label.

Used without a trained adapter: the label embedding is the normalised mean of the text
embeddings of the plain template and of the template with each phrase. The phrases are
also what the user sees as the explanation of a label.
"""

from __future__ import annotations

import torch

from .attribute_parser import parse_attributes
from .config import LabelConfig
from .llm import LLMBundle
from .prompts import attribute_prompt_ids


@torch.no_grad()
def generate_attributes(
    llm: LLMBundle, labels: list[str], cfg: LabelConfig, batch_size: int = 16
) -> dict[str, list[str]]:
    """Attribute phrases per label (greedy decoding, parsed; [] when nothing useful came out)."""
    phrases: dict[str, list[str]] = {}
    tokenizer = llm.tokenizer
    pad_id = tokenizer.pad_token_id
    for start in range(0, len(labels), batch_size):
        batch = labels[start : start + batch_size]
        prompts = [attribute_prompt_ids(tokenizer, label, cfg.num_attributes) for label in batch]
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=llm.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=llm.device)
        out = llm.model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=cfg.max_new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
        )
        texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
        for label, text in zip(batch, texts):
            phrases[label] = parse_attributes(text, label, max_phrases=cfg.num_attributes)
    return phrases


def attribute_texts(label: str, phrases: list[str], cfg: LabelConfig) -> list[str]:
    """The CLIP texts averaged for one label: the plain template, then one per phrase."""
    texts = [cfg.template.format(label=label)]
    texts += [cfg.attribute_template.format(label=label, attribute=phrase) for phrase in phrases]
    return texts
