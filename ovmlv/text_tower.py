"""The CLIP text tower run on token embeddings, with soft tokens inserted before the end token.

open_clip's `encode_text` starts from token ids. The label encoder needs to feed K soft
tokens (vectors, not ids), so this module runs the SAME submodules on embeddings. With no
soft tokens the result equals `encode_text` (tested). Inserting tokens moves the pooled
position, so positions are tracked here and never re-derived from ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class TextParts:
    """Uniform view over the text parts of open_clip's CLIP and CustomTextCLIP."""

    token_embedding: nn.Embedding
    positional_embedding: torch.Tensor
    transformer: nn.Module
    ln_final: nn.Module
    text_projection: Any  # Parameter [W, D] (x @ P), nn.Linear, or None
    attn_mask: torch.Tensor | None  # causal mask for CLIP, None for SigLIP
    pool_type: str  # argmax | eos | last | first
    eos_id: int | None


def text_parts(clip: nn.Module) -> TextParts:
    """The text tower of an open_clip model, whichever class holds it."""
    text = getattr(clip, "text", None)
    if text is None:  # CLIP keeps the text parts on the model itself
        return TextParts(
            clip.token_embedding,
            clip.positional_embedding,
            clip.transformer,
            clip.ln_final,
            clip.text_projection,
            clip.attn_mask,
            clip.text_pool_type,
            getattr(clip, "text_eos_id", None),
        )
    if not hasattr(text, "token_embedding") or text.cls_emb is not None or text.use_pad_mask:
        raise TypeError(f"unsupported text tower {type(text).__name__}: need open_clip's TextTransformer")
    return TextParts(
        text.token_embedding,
        text.positional_embedding,
        text.transformer,
        text.ln_final,
        text.text_projection,
        text.attn_mask,
        text.pool_type,
        getattr(text, "eos_id", None),
    )


class TextTower:
    """Tokenise, insert soft tokens, and encode with a frozen open_clip text tower."""

    def __init__(self, clip: nn.Module, tokenizer: Any) -> None:
        self.clip = clip
        self.tokenizer = tokenizer
        self.parts = text_parts(clip)
        self.context_length = int(self.parts.positional_embedding.shape[0])
        self.pad_id = 0
        end = getattr(tokenizer, "eot_token_id", None)
        if end is None and hasattr(tokenizer, "tokenizer"):
            end = tokenizer.tokenizer.eos_token_id
        self.end_id = end

    @property
    def width(self) -> int:
        return int(self.parts.token_embedding.weight.shape[1])

    def token_norm(self) -> float:
        """Mean L2 norm of the token embeddings: the scale of every input this tower has seen."""
        return float(self.parts.token_embedding.weight.detach().float().norm(dim=-1).mean())

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        device = self.parts.token_embedding.weight.device
        return self.tokenizer(texts).to(device)

    def pool_positions(self, ids: torch.Tensor) -> torch.Tensor:
        """Pooled position per row for plain token ids [N, C] (no soft tokens)."""
        if self.parts.pool_type == "argmax":
            return ids.argmax(dim=-1)
        if self.parts.pool_type == "eos":
            return (ids == self.parts.eos_id).int().argmax(dim=-1)
        if self.parts.pool_type == "last":
            return torch.full_like(ids[:, 0], ids.shape[1] - 1)
        if self.parts.pool_type == "first":
            return torch.zeros_like(ids[:, 0])
        raise TypeError(f"unsupported text pooling {self.parts.pool_type!r}")

    def _insertion_point(self, row: torch.Tensor) -> int:
        length = int((row != self.pad_id).sum())
        ends_with_end = self.end_id is not None and length > 0 and int(row[length - 1]) == self.end_id
        return length - 1 if ends_with_end else length

    def embed_with_soft_tokens(
        self, ids: torch.Tensor, soft: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings [N, C, W] with soft tokens [N, K, W] inserted, and pooled positions [N]."""
        weight = self.parts.token_embedding.weight
        embeddings = self.parts.token_embedding(ids)  # [N, C, W]
        positions = self.pool_positions(ids)
        if soft is None or soft.shape[1] == 0:
            return embeddings, positions
        k, c = soft.shape[1], ids.shape[1]
        rows, new_positions = [], []
        for i in range(ids.shape[0]):
            at = self._insertion_point(ids[i])
            length = int((ids[i] != self.pad_id).sum())
            overflow = max(0, length + k - c)  # text tokens dropped to make room (from the end of the text)
            keep_text = embeddings[i, : at - overflow]
            tail = embeddings[i, at:]
            row = torch.cat([keep_text, soft[i].to(weight.dtype), tail], dim=0)[:c]  # trailing pads fall off
            pos = int(positions[i])
            if self.parts.pool_type in ("argmax", "eos") and pos >= at:
                pos = min(pos - overflow + k, c - 1)
            rows.append(row)
            new_positions.append(pos)
        return torch.stack(rows), torch.tensor(new_positions, device=ids.device)

    def encode_embeddings(self, embeddings: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Unnormalised text features [N, D] from token embeddings [N, C, W]."""
        p = self.parts
        cast = p.transformer.get_cast_dtype()
        x = embeddings.to(cast) + p.positional_embedding.to(cast)
        mask = p.attn_mask
        x = p.transformer(x, attn_mask=mask)
        x = p.ln_final(x)
        pooled = x[torch.arange(x.shape[0], device=x.device), positions]
        if p.text_projection is None:
            return pooled
        if isinstance(p.text_projection, nn.Linear):
            return p.text_projection(pooled)
        return pooled @ p.text_projection

    def encode(self, texts: list[str], soft: torch.Tensor | None = None) -> torch.Tensor:
        """Unnormalised features [N, D] of `texts`, with optional soft tokens [N, K, W]."""
        ids = self.tokenize(texts)
        embeddings, positions = self.embed_with_soft_tokens(ids, soft)
        return self.encode_embeddings(embeddings, positions)
