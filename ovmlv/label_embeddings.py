"""Label embeddings through the label database: the LLM runs once per new label, never per video.

Entries are keyed by (model fingerprint, canonical label, prompt version). With a trained
adapter an entry stores both ends of the gate, [e0, e_soft], so any alpha is combined
exactly at no cost; without one it stores the zero-shot-attribute embedding. The phrases
the LLM wrote are stored with it for display.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from .label_db import LabelDB, LabelEntry
from .model import OVMLVModel, combine_label_embeddings

logger = logging.getLogger(__name__)


class LabelEmbedder:
    """Cached label embeddings and attribute phrases for one model."""

    def __init__(self, model: OVMLVModel, db: LabelDB, chunk_size: int = 32) -> None:
        self.model = model
        self.db = db
        self.chunk_size = chunk_size
        self.fingerprint = model.fingerprint()
        self.prompt_version = model.config.labels.prompt_version
        self.llm_calls = 0  # number of label batches computed (cache misses), for tests and the UI

    @torch.no_grad()
    def _compute(self, labels: list[str]) -> dict[str, LabelEntry]:
        self.llm_calls += 1
        phrases = self.model.describe_labels(labels)
        if self.model.config.adapter_trained:
            e0 = self.model.anchor_label_embeddings(labels, phrases)
            both = torch.cat([e0, self.model.soft_embedding(labels)], dim=-1)  # [L, 2D]
        else:
            both = self.model.attribute_label_embeddings(labels, phrases)  # [L, D]
        vectors = both.float().cpu().numpy()
        return {label: LabelEntry(vectors[i], phrases.get(label, [])) for i, label in enumerate(labels)}

    def entries(self, labels: Sequence[str]) -> dict[str, LabelEntry]:
        """Database entries for `labels`, computing (and storing) the missing ones."""
        labels = list(labels)
        found = self.db.get_many(self.fingerprint, labels, self.prompt_version)
        missing = [label for label in labels if label not in found]
        for start in range(0, len(missing), self.chunk_size):
            computed = self._compute(missing[start : start + self.chunk_size])
            self.db.put_many(self.fingerprint, computed, self.prompt_version)
            found.update(computed)
        return found

    def embeddings(
        self, labels: Sequence[str], alpha: float = 1.0
    ) -> tuple[torch.Tensor, dict[str, list[str]]]:
        """(label embeddings [L, D] at `alpha`, attribute phrases per label)."""
        entries = self.entries(labels)
        stacked = torch.from_numpy(np.stack([entries[label].embedding for label in labels]))
        if self.model.config.adapter_trained:
            e0, e_soft = stacked.chunk(2, dim=-1)
            stacked = combine_label_embeddings(e0, e_soft, self.model.label_gate(alpha).detach().cpu())
        return stacked, {label: list(entries[label].phrases) for label in labels}
