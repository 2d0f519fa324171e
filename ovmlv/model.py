"""OVMLVModel: the CLIP towers, the temporal branch, the label encoder and the sigmoid scorer.

Video side:  frames [B, T, 3, H, W] -> temporal ViT -> mean over frames -> normalise.
Label side:  f_t = normalise(e0 + alpha * tanh(h) * (e_soft - e0)) with e0 the zero-shot
             anchor (the template embedding, or with `labels.anchor = "attributes"` the
             zero-shot-attribute embedding) and e_soft the embedding with LLM soft tokens;
             without a trained adapter, labels get the zero-shot attributes (template + phrases).
Score:       p = sigmoid(exp(logit_scale) * <f_v, f_t> + logit_bias), per label independently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .clip_loader import ClipBundle
from .config import ModelConfig
from .describe import attribute_texts, generate_attributes
from .llm import LLMBundle
from .soft_attributes import build_label_encoder
from .temporal import TemporalVideoEncoder
from .text_tower import TextTower
from .vision_stages import vision_stages

FROZEN_PREFIXES = ("clip.",)
ANCHORS = ("template", "attributes")  # what e0, the zero-shot end of the label gate, is


class OVMLVModel(nn.Module):
    """Open-vocabulary multi-label video model (see module docstring)."""

    def __init__(self, config: ModelConfig, clip: ClipBundle, llm: LLMBundle) -> None:
        super().__init__()
        if config.labels.anchor not in ANCHORS:
            raise ValueError(f"labels.anchor must be one of {ANCHORS}, got {config.labels.anchor!r}")
        if config.labels.anchor == "attributes" and config.labels.num_attributes <= 0:
            raise ValueError(
                "labels.anchor 'attributes' needs labels.num_attributes > 0 (phrases to anchor at)"
            )
        self.config = config
        self.clip = clip.model
        self.tokenizer = clip.tokenizer
        self.image_size, self.mean, self.std = clip.image_size, clip.mean, clip.std
        self._llm = llm  # not a submodule: it may be quantised or live on another device
        self._stages = vision_stages(self.clip.visual)
        self.text_tower = TextTower(self.clip, self.tokenizer)
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            self.temporal = TemporalVideoEncoder(config.temporal, self._stages)
            self.label_encoder = build_label_encoder(
                config.labels, llm.hidden_size, self.text_tower.width, self.text_tower.token_norm()
            )
        self.label_encoder.init_from_llm_embeddings(llm.model.get_input_embeddings().weight, config.seed)
        scale, bias = self._initial_calibration()
        self.logit_scale = nn.Parameter(torch.tensor(scale))
        self.logit_bias = nn.Parameter(torch.tensor(bias))
        self.clip.requires_grad_(False)
        if config.train_vision_tower:
            self.clip.visual.requires_grad_(True)

    def _initial_calibration(self) -> tuple[float, float]:
        scale = self.config.init_logit_scale
        if scale is None:
            scale = float(self.clip.logit_scale.detach().float().reshape(-1)[0])
        bias = self.config.init_logit_bias
        if bias is None:
            clip_bias = getattr(self.clip, "logit_bias", None)
            bias = float(clip_bias.detach().float().reshape(-1)[0]) if clip_bias is not None else 0.0
        return scale, bias

    @property
    def llm(self) -> LLMBundle:
        return self._llm

    @property
    def num_frames(self) -> int:
        return self.config.temporal.num_frames

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    @property
    def dtype(self) -> torch.dtype:
        return self.logit_scale.dtype

    # ---- video -------------------------------------------------------------------------
    def encode_video(self, frames: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """Window embeddings [B, D] (L2-normalised) for normalised frames [B, T, 3, H, W]."""
        return self.encode_video_alphas(frames, (alpha,))[0]

    def encode_video_alphas(self, frames: torch.Tensor, alphas: Sequence[float]) -> torch.Tensor:
        """[A, B, D] embeddings, one per alpha; the blocks before the first branch run once."""
        frames = frames.to(device=self.device, dtype=self.dtype)
        return self.temporal(self._stages, frames, tuple(float(a) for a in alphas))

    def has_temporal_effect(self) -> bool:
        """True when the temporal gates are non-zero (then alpha changes window embeddings)."""
        return bool(len(self.temporal.branches) and self.temporal.gate_values().abs().max() > 0)

    # ---- labels ------------------------------------------------------------------------
    def template_texts(self, labels: Sequence[str]) -> list[str]:
        return [self.config.labels.template.format(label=label) for label in labels]

    def zero_shot_label_embeddings(self, labels: Sequence[str]) -> torch.Tensor:
        """Plain zero-shot text embeddings of the template, [L, D], normalised."""
        return F.normalize(self.text_tower.encode(self.template_texts(labels)).float(), dim=-1)

    def soft_embedding(self, labels: Sequence[str]) -> torch.Tensor:
        """e_soft [L, D]: the template with the label's LLM soft tokens, normalised."""
        labels = list(labels)
        soft = self.label_encoder.label_tokens(self._llm, labels)
        return F.normalize(self.text_tower.encode(self.template_texts(labels), soft).float(), dim=-1)

    def label_gate(self, alpha: float = 1.0) -> torch.Tensor:
        """alpha * tanh(h): how far label embeddings move from zero-shot toward e_soft."""
        return alpha * torch.tanh(self.label_encoder.gate.float())

    def anchor_label_embeddings(
        self, labels: Sequence[str], attributes: dict[str, list[str]] | None = None
    ) -> torch.Tensor:
        """e0 [L, D], the zero-shot end of the label gate (`labels.anchor`), normalised.

        "template": the plain template embedding. "attributes": the zero-shot-attribute
        embedding (DESIGN §2.3; phrases generated here unless `attributes` is given), for
        backbones whose text tower knows attributes but not the label words themselves.
        """
        if self.config.labels.anchor == "attributes":
            return self.zero_shot_attribute_embeddings(labels, attributes)
        return self.zero_shot_label_embeddings(labels)

    def soft_label_embeddings(
        self, labels: Sequence[str], alpha: float = 1.0, anchor: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The gated soft-attribute embeddings [L, D] (DESIGN §2.2), normalised.

        `anchor`: e0 [L, D] when the caller already has it (it is constant: frozen text tower).
        """
        labels = list(labels)
        if anchor is None:
            with torch.no_grad():  # the anchor has no trainable part
                anchor = self.anchor_label_embeddings(labels)
        e0 = anchor
        gate = self.label_gate(alpha)
        if not torch.is_grad_enabled() and float(gate) == 0.0:
            return e0  # the soft path provably contributes nothing: skip the LLM
        return combine_label_embeddings(e0, self.soft_embedding(labels), gate)

    def describe_labels(self, labels: Sequence[str]) -> dict[str, list[str]]:
        """LLM-written attribute phrases per label ({} entries are [] when disabled or unusable)."""
        if self.config.labels.num_attributes <= 0:
            return {label: [] for label in labels}
        return generate_attributes(self._llm, list(labels), self.config.labels)

    def zero_shot_attribute_embeddings(
        self, labels: Sequence[str], attributes: dict[str, list[str]] | None = None
    ) -> torch.Tensor:
        """Zero-shot attributes [L, D] (DESIGN §2.3), writing the phrases unless `attributes` is given."""
        labels = list(labels)
        if attributes is None:
            attributes = self.describe_labels(labels)
        return self.attribute_label_embeddings(labels, attributes)

    def attribute_label_embeddings(
        self, labels: Sequence[str], attributes: dict[str, list[str]]
    ) -> torch.Tensor:
        """Zero-shot attributes (DESIGN §2.3): normalised mean of template + phrase embeddings."""
        texts, owner = [], []
        for i, label in enumerate(labels):
            for text in attribute_texts(label, attributes.get(label, []), self.config.labels):
                texts.append(text)
                owner.append(i)
        features = F.normalize(self.text_tower.encode(texts).float(), dim=-1)
        index = torch.tensor(owner, device=features.device)
        sums = torch.zeros(len(labels), features.shape[1], device=features.device).index_add_(
            0, index, features
        )
        return F.normalize(sums, dim=-1)

    def encode_labels(
        self, labels: Sequence[str], alpha: float = 1.0, attributes: dict[str, list[str]] | None = None
    ) -> torch.Tensor:
        """Label embeddings [L, D], normalised.

        With a trained adapter: the soft-attribute path at interpolation `alpha`. Without one:
        zero-shot attributes (generated here unless `attributes` is given) or the plain template.
        """
        labels = list(labels)
        if self.config.adapter_trained:
            with torch.no_grad():
                anchor = self.anchor_label_embeddings(labels, attributes)
            return self.soft_label_embeddings(labels, alpha, anchor)
        return self.zero_shot_attribute_embeddings(labels, attributes)

    # ---- scoring -----------------------------------------------------------------------
    def logits(self, window_embeddings: torch.Tensor, label_embeddings: torch.Tensor) -> torch.Tensor:
        """Independent per-label logits [W, L] (never a softmax across labels)."""
        similarity = window_embeddings.float() @ label_embeddings.float().T
        return self.logit_scale.float().exp() * similarity + self.logit_bias.float()

    def probabilities(self, window_embeddings: torch.Tensor, label_embeddings: torch.Tensor) -> torch.Tensor:
        """Per-label probabilities [W, L] in [0, 1]."""
        return torch.sigmoid(self.logits(window_embeddings, label_embeddings))

    # ---- state -------------------------------------------------------------------------
    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """Only what training changes: everything but the frozen CLIP (and the LLM, never a submodule)."""
        keep_visual = self.config.train_vision_tower
        return {
            name: tensor
            for name, tensor in self.state_dict().items()
            if not name.startswith(FROZEN_PREFIXES) or (keep_visual and name.startswith("clip.visual."))
        }

    def fingerprint(self) -> str:
        """Identifies what label embeddings depend on: config + label-side weights (by content)."""
        config = {key: value for key, value in self.config.to_dict().items() if key != "threshold"}
        digest = hashlib.sha256(json.dumps(config, indent=2, sort_keys=True).encode())
        label_side = {k: v for k, v in self.trained_state_dict().items() if not k.startswith("temporal.")}
        for name in sorted(label_side):
            digest.update(name.encode())
            digest.update(label_side[name].detach().float().cpu().numpy().tobytes())
        sample = self.text_tower.parts.token_embedding.weight.detach().float().flatten()[:4096]
        digest.update(sample.cpu().numpy().tobytes())  # distinguishes random text towers
        digest.update(self._llm.quantization.encode())
        return digest.hexdigest()[:20]


def combine_label_embeddings(
    e0: torch.Tensor, e_soft: torch.Tensor, gate: torch.Tensor | float
) -> torch.Tensor:
    """The zero-shot-preserving gate: normalise(e0 + gate * (e_soft - e0))."""
    return F.normalize(e0 + gate * (e_soft - e0), dim=-1)
