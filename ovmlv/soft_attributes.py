"""LLM-guided soft attributes: the trainable label encoder of DESIGN §2.2.

LLM input (embeddings): [P learnable prefix vectors] + the embedded chat instruction for the
label + [K learnable attribute queries]. One differentiable forward pass through the frozen
LLM; the hidden states at the K query positions are the soft attributes. A small prompting
transformer maps them into the CLIP text tower's token-embedding space.

`ContextTokenEncoder` is the ablation without the LLM (`LabelConfig.soft_source="context"`):
K learned context vectors shared by every label (CoOp-style), same gate, same text path.

Soft tokens are rescaled to the mean norm of the text tower's own token embeddings: the
frozen tower only knows inputs of that scale, and a linear map of LLM states is ~100x larger
(the toy preset measured 10-21 against 0.16), which swamps the template's tokens and makes
every label's e_soft the same vector.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import LabelConfig
from .llm import LLMBundle
from .prompts import soft_prompt_ids


class SoftAttributeEncoder(nn.Module):
    """Prefix, queries, prompting transformer and the zero-shot-preserving gate."""

    def __init__(self, cfg: LabelConfig, llm_width: int, text_width: int, token_norm: float) -> None:
        super().__init__()
        self.token_norm = token_norm  # mean norm of the text tower's token embeddings (frozen)
        if text_width % cfg.prompting_heads:
            raise ValueError(f"prompting_heads={cfg.prompting_heads} must divide the text width {text_width}")
        self.prefix = nn.Parameter(torch.randn(cfg.num_prefix, llm_width) * 0.02)
        self.queries = nn.Parameter(torch.randn(cfg.num_queries, llm_width) * 0.02)
        self.state_norm = nn.LayerNorm(llm_width)
        self.to_text = nn.Linear(llm_width, text_width)
        self.prompting: nn.Module = nn.Identity()  # prompting_layers = 0: a linear map only
        if cfg.prompting_layers > 0:
            layer = nn.TransformerEncoderLayer(
                text_width,
                cfg.prompting_heads,
                4 * text_width,
                dropout=0.0,
                batch_first=True,
                norm_first=True,
            )
            self.prompting = nn.TransformerEncoder(layer, cfg.prompting_layers, enable_nested_tensor=False)
        self.gate = nn.Parameter(torch.zeros(()))

    def init_from_llm_embeddings(self, embedding_weight: torch.Tensor, seed: int) -> None:
        """Start prefix and queries at the scale of real token embeddings (stable LLM inputs)."""
        std = float(embedding_weight.float().std())
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param in (self.prefix, self.queries):
                param.copy_(torch.randn(param.shape, generator=generator) * std)

    def llm_states(self, llm: LLMBundle, labels: list[str]) -> torch.Tensor:
        """Hidden states [L, K, d_llm] at the query positions (float32, on this module's device)."""
        embed = llm.model.get_input_embeddings()
        dtype, device = embed.weight.dtype, embed.weight.device
        prompts = [soft_prompt_ids(llm.tokenizer, label) for label in labels]
        p, k = self.prefix.shape[0], self.queries.shape[0]
        total = p + max(len(ids) for ids in prompts) + k
        pad_id = llm.tokenizer.pad_token_id
        rows, masks = [], []
        for ids in prompts:
            pad = total - (p + len(ids) + k)  # left padding keeps the queries at the last K positions
            tokens = torch.tensor([pad_id] * pad + ids, device=device)
            text = embed(tokens)
            rows.append(
                torch.cat(
                    [text[:pad], self.prefix.to(device, dtype), text[pad:], self.queries.to(device, dtype)]
                )
            )
            masks.append(torch.tensor([0] * pad + [1] * (total - pad), device=device))
        inputs = torch.stack(rows)  # [L, total, d_llm]
        mask = torch.stack(masks)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = llm.model.get_decoder()(
            inputs_embeds=inputs, attention_mask=mask, position_ids=position_ids, use_cache=False
        ).last_hidden_state
        return hidden[:, -k:].to(device=self.prefix.device, dtype=torch.float32)

    def soft_tokens(self, states: torch.Tensor) -> torch.Tensor:
        """Soft tokens [L, K, W_text] from soft attributes [L, K, d_llm]."""
        dtype = self.to_text.weight.dtype
        x = self.prompting(self.to_text(self.state_norm(states.to(dtype))))
        return F.normalize(x, dim=-1) * self.token_norm

    def label_tokens(self, llm: LLMBundle, labels: list[str]) -> torch.Tensor:
        """Soft tokens [L, K, W_text] for `labels`: one LLM pass, then the prompting transformer."""
        return self.soft_tokens(self.llm_states(llm, labels))


class ContextTokenEncoder(nn.Module):
    """The no-LLM ablation: K learned context tokens, the same for every label, plus the gate."""

    def __init__(self, cfg: LabelConfig, text_width: int, token_norm: float) -> None:
        super().__init__()
        self.token_norm = token_norm  # soft tokens get the norm of the text tower's own tokens
        self.context = nn.Parameter(torch.randn(cfg.num_queries, text_width) * 0.02)
        self.gate = nn.Parameter(torch.zeros(()))

    def init_from_llm_embeddings(self, embedding_weight: torch.Tensor, seed: int) -> None:
        """Nothing to do: this encoder does not use the LLM (kept for a uniform interface)."""

    def label_tokens(self, llm: LLMBundle, labels: list[str]) -> torch.Tensor:
        """The context tokens [L, K, W_text], identical for every label (the LLM is not used)."""
        context = F.normalize(self.context, dim=-1) * self.token_norm
        return context.unsqueeze(0).expand(len(labels), -1, -1)


SOFT_SOURCES = ("llm", "context")


def build_label_encoder(cfg: LabelConfig, llm_width: int, text_width: int, token_norm: float) -> nn.Module:
    """The label encoder that `cfg.soft_source` names (ValueError for an unknown one).

    `token_norm`: the mean norm of the text tower's token embeddings (the soft tokens' scale).
    """
    if cfg.soft_source == "llm":
        return SoftAttributeEncoder(cfg, llm_width, text_width, token_norm)
    if cfg.soft_source == "context":
        return ContextTokenEncoder(cfg, text_width, token_norm)
    raise ValueError(f"labels.soft_source must be one of {SOFT_SOURCES}, got {cfg.soft_source!r}")
