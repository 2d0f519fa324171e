"""Stage views over open_clip vision towers: embed -> blocks -> head.

The temporal branch runs between the blocks of the frozen tower, so the video encoder needs
the tower split into its stages. Each supported family gets a small adapter that calls the
tower's OWN submodules in the same order as its forward, so with no temporal contribution the
result equals `clip.encode_image` exactly. Adding a family is adding an adapter to _ADAPTERS.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class VisionStages:
    """Common interface: `embed(images)`, `blocks`, `head(tokens)`, `width`."""

    def __init__(self, visual: nn.Module) -> None:
        self.visual = visual

    @property
    def blocks(self) -> Sequence[nn.Module]:
        raise NotImplementedError

    @property
    def width(self) -> int:
        raise NotImplementedError

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def run_block(self, index: int, tokens: torch.Tensor) -> torch.Tensor:
        return self.blocks[index](tokens)

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class NativeViTStages(VisionStages):
    """open_clip's own VisionTransformer (CLIP ViT-B/16 and friends)."""

    @property
    def blocks(self) -> Sequence[nn.Module]:
        return self.visual.transformer.resblocks

    @property
    def width(self) -> int:
        return int(self.visual.transformer.width)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual._embeds(images)  # patchify + class token + positions + ln_pre

    def run_block(self, index: int, tokens: torch.Tensor) -> torch.Tensor:
        return self.blocks[index](tokens, attn_mask=None)

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        pooled, _ = self.visual._pool(tokens)
        if self.visual.proj is not None:
            pooled = pooled @ self.visual.proj
        return pooled


class TimmViTStages(VisionStages):
    """open_clip's TimmModel around a timm VisionTransformer (SigLIP / SigLIP2)."""

    @property
    def trunk(self) -> nn.Module:
        return self.visual.trunk

    @property
    def blocks(self) -> Sequence[nn.Module]:
        return self.trunk.blocks

    @property
    def width(self) -> int:
        return int(self.trunk.embed_dim)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        x = self.trunk.patch_embed(images)
        x = self.trunk._pos_embed(x)
        x = self.trunk.patch_drop(x)
        return self.trunk.norm_pre(x)

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.trunk.norm(tokens)
        x = self.trunk.forward_head(x)
        return self.visual.head(x)


def _is_timm_vit(visual: nn.Module) -> bool:
    trunk = getattr(visual, "trunk", None)
    return trunk is not None and hasattr(trunk, "blocks") and hasattr(trunk, "patch_embed")


_ADAPTERS = (
    (lambda v: hasattr(v, "transformer") and hasattr(v, "_embeds"), NativeViTStages),
    (_is_timm_vit, TimmViTStages),
)


def vision_stages(visual: nn.Module) -> VisionStages:
    """The stage adapter for an open_clip vision tower (TypeError if unsupported)."""
    for matches, adapter in _ADAPTERS:
        if matches(visual):
            return adapter(visual)
    raise TypeError(
        f"unsupported vision tower {type(visual).__name__}: only ViT towers (native or timm) work"
    )
