"""Pretrain the toy world's base models: `python -m training.toyworld.pretrain --out DIR [--quick]`.

Writes DIR/open_clip/ (open_clip local-dir folder), DIR/llm/ (save_pretrained folder) and
DIR/pretrain_report.json (settings, timings, verification numbers, sizes). Both models are
loaded back through the library's own loaders before they are checked, so the numbers are
those of the saved files. The whole experiment (this, then fine-tuning and the ablation
table) is `python -m training.toyworld`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from . import LOG_FORMAT
from .toy_clip import ToyClipConfig, save_toy_clip, train_toy_clip
from .toy_llm import ToyLLMConfig, check_toy_llm, save_toy_llm, train_toy_llm

logger = logging.getLogger(__name__)

QUICK_CLIP = {"steps": 30, "batch_size": 32, "warmup_steps": 5, "shape_steps": 10, "compile": False}
QUICK_LLM = {"steps": 30, "batch_size": 16, "warmup_steps": 5, "num_documents": 200}


def folder_size(path: Path) -> int:
    """Bytes of all files under `path`."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def verify_clip(directory: Path, eval_frames: int) -> dict[str, Any]:
    """Load the saved toy CLIP with open_clip and with ovmlv's loader; attribute retrieval numbers."""
    import open_clip

    from ovmlv.clip_loader import load_clip
    from ovmlv.config import ClipConfig

    from .clip_eval import evaluate_toy_clip

    direct = open_clip.create_model(f"local-dir:{directory}")
    bundle = load_clip(ClipConfig(arch="toy", local_dir=str(directory)), "toy")
    same = all(
        torch.equal(a, b) for a, b in zip(direct.state_dict().values(), bundle.model.state_dict().values())
    )
    if not same:
        raise RuntimeError("open_clip and ovmlv.clip_loader loaded different weights")
    numbers = evaluate_toy_clip(bundle.model, bundle.tokenizer, count=eval_frames)
    numbers["image_size"] = bundle.image_size
    return numbers


def verify_llm(directory: Path) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Load the saved toy LLM with ovmlv.llm.load_llm and check its attribute lists."""
    from ovmlv.config import LLMConfig
    from ovmlv.llm import load_llm

    bundle = load_llm(LLMConfig(name=str(directory), quantization="none"), "toy")
    return check_toy_llm(bundle)


def pretrain(
    out: Path,
    clip_cfg: ToyClipConfig,
    llm_cfg: ToyLLMConfig,
    eval_frames: int,
) -> dict:
    """Train, save, reload and verify both models; returns the report (also written to disk)."""
    report: dict[str, Any] = {"clip_config": asdict(clip_cfg), "llm_config": asdict(llm_cfg)}
    timings: dict[str, float] = {}
    start = tic = time.perf_counter()
    clip_model, clip_stats = train_toy_clip(clip_cfg)
    save_toy_clip(clip_model, clip_cfg, out / "open_clip")
    timings["clip_train_s"] = time.perf_counter() - tic
    tic = time.perf_counter()
    report["clip"] = verify_clip(out / "open_clip", eval_frames)
    timings["clip_verify_s"] = time.perf_counter() - tic
    tic = time.perf_counter()
    llm_model, tokenizer, llm_stats = train_toy_llm(llm_cfg)
    save_toy_llm(llm_model, tokenizer, out / "llm")
    timings["llm_train_s"] = time.perf_counter() - tic
    tic = time.perf_counter()
    report["llm"], phrases = verify_llm(out / "llm")
    report["llm_examples"] = {name: phrases[name] for name in sorted(phrases) if " " not in name}
    timings["llm_verify_s"] = time.perf_counter() - tic
    timings["total_s"] = time.perf_counter() - start
    report["clip_training"], report["llm_training"] = clip_stats, llm_stats
    report["timings"] = timings
    report["sizes_bytes"] = {"open_clip": folder_size(out / "open_clip"), "llm": folder_size(out / "llm")}
    report["threads"] = torch.get_num_threads()
    (out / "pretrain_report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--quick", action="store_true", help="a few steps only (CI): loadable, not good")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clip-steps", type=int, default=None, help="override the toy CLIP's steps")
    parser.add_argument("--llm-steps", type=int, default=None, help="override the toy LLM's steps")
    parser.add_argument("--eval-frames", type=int, default=None, help="held-out frames per CLIP test")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    logging.getLogger("training").setLevel(logging.INFO)  # progress lines; dependencies stay quiet
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:
        torch.set_num_threads(args.threads)
    clip_cfg = ToyClipConfig(seed=args.seed, **(QUICK_CLIP if args.quick else {}))
    llm_cfg = ToyLLMConfig(seed=args.seed, **(QUICK_LLM if args.quick else {}))
    if args.clip_steps is not None:
        clip_cfg = replace(
            clip_cfg, steps=args.clip_steps, warmup_steps=min(clip_cfg.warmup_steps, args.clip_steps)
        )
    if args.llm_steps is not None:
        llm_cfg = replace(
            llm_cfg, steps=args.llm_steps, warmup_steps=min(llm_cfg.warmup_steps, args.llm_steps)
        )
    eval_frames = args.eval_frames or (40 if args.quick else 500)
    args.out.mkdir(parents=True, exist_ok=True)
    report = pretrain(args.out, clip_cfg, llm_cfg, eval_frames)
    keys = ("clip", "llm", "timings", "sizes_bytes")
    print(json.dumps({k: report[k] for k in keys if k in report}, indent=2))
    for name in ("lime", "brick", "pharmacy", "sail", "cheese", "onion", "cone", "bagel"):
        print(f"{name}: {report['llm_examples'].get(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
