"""Building the open_clip model, its tokenizer and preprocessing config from a ClipConfig.

The model always comes from open_clip itself: built-in architectures by name, packaged
tiny architectures from ovmlv/configs, weights from a Hub file or a local directory.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .config import ClipConfig
from .errors import ConfigError
from .hub import fetch_file, fetch_snapshot

logger = logging.getLogger(__name__)

_TOKENIZER_FILES = ["tokenizer*", "special_tokens_map.json", "*.model", "vocab*", "merges.txt"]


@dataclass
class ClipBundle:
    """An open_clip model with the pieces needed around it."""

    model: torch.nn.Module
    tokenizer: Any  # open_clip tokenizer: callable(list[str]) -> LongTensor [N, context]
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _packaged_config(arch: str) -> tuple[dict, Path] | None:
    path = resources.files(__package__).joinpath("configs", f"{arch}.json")
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")), Path(str(path))


def _register_tiny_timm() -> None:
    """Register the tiny timm ViT used by the tiny SigLIP-style preset (once, lazily)."""
    import timm
    from timm.models import register_model
    from timm.models.vision_transformer import VisionTransformer

    if "ovmlv_tiny_vit_siglip" in timm.list_models("ovmlv_*"):
        return

    def ovmlv_tiny_vit_siglip(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
        for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
            kwargs.pop(key, None)  # timm's factory passes these; the bare class does not take them
        kwargs.setdefault("global_pool", "map")
        return VisionTransformer(
            img_size=32, patch_size=8, embed_dim=64, depth=3, num_heads=2, class_token=False, **kwargs
        )

    register_model(ovmlv_tiny_vit_siglip)


def _model_cfg(cfg: ClipConfig, base_dir: Path | None) -> tuple[str, tuple[dict, Path] | None, Path | None]:
    """(open_clip name, packaged model config + its file or None, local weights dir or None)."""
    if cfg.local_dir is not None:
        local = Path(cfg.local_dir)
        if not local.is_absolute() and base_dir is not None:
            local = base_dir / local
        config_path = local / "open_clip_config.json"
        if not config_path.is_file():
            raise ConfigError(f"open_clip directory {local} has no open_clip_config.json")
        return f"local-dir:{local}", None, local
    return cfg.arch, _packaged_config(cfg.arch), None


def _build_model(cfg: ClipConfig, preset: str, pretrained: bool, base_dir: Path | None) -> tuple[Any, Any]:
    import open_clip

    name, inline, local = _model_cfg(cfg, base_dir)
    if inline is not None:
        model_cfg, config_file = inline
        if model_cfg.get("vision_cfg", {}).get("timm_model_name", "").startswith("ovmlv_"):
            _register_tiny_timm()
        if name not in open_clip.list_models():
            open_clip.add_model_config(config_file)
    if local is not None:
        return open_clip.create_model(name, load_weights=pretrained), local
    weights = None
    if pretrained and cfg.hub_repo:
        weights = str(fetch_file(cfg.hub_repo, cfg.hub_file, cfg.revision, preset))
    return open_clip.create_model(name, pretrained=weights), None


def _tokenizer(cfg: ClipConfig, name: str, preset: str, context_length: int, local: Path | None) -> Any:
    import open_clip

    if cfg.tokenizer_repo:
        tok_dir = fetch_snapshot(cfg.tokenizer_repo, cfg.revision, preset, _TOKENIZER_FILES)
        return open_clip.tokenizer.HFTokenizer(
            str(tok_dir), context_length=context_length, clean="canonicalize"
        )
    if local is not None:
        return open_clip.get_tokenizer(f"local-dir:{local}")
    if _packaged_config(cfg.arch) is not None:
        # open_clip guesses tokenizers from model names ("siglip" -> a download); ours use CLIP's BPE
        return open_clip.SimpleTokenizer(context_length=context_length)
    return open_clip.get_tokenizer(name, context_length=context_length)


def load_clip(
    cfg: ClipConfig, preset: str, pretrained: bool = True, base_dir: Path | None = None
) -> ClipBundle:
    """Build the open_clip model described by `cfg` (weights only if `pretrained`)."""
    model, local = _build_model(cfg, preset, pretrained, base_dir)
    model.eval()
    name = cfg.arch if local is None else f"local-dir:{local}"
    tokenizer = _tokenizer(cfg, name, preset, int(model.context_length), local)
    pp = getattr(model.visual, "preprocess_cfg", {}) or {}
    image_size = pp.get("size", getattr(model.visual, "image_size", 224))
    if isinstance(image_size, (tuple, list)):
        image_size = image_size[0]
    mean = tuple(pp.get("mean", (0.48145466, 0.4578275, 0.40821073)))
    std = tuple(pp.get("std", (0.26862954, 0.26130258, 0.27577711)))
    return ClipBundle(model=model, tokenizer=tokenizer, image_size=int(image_size), mean=mean, std=std)
