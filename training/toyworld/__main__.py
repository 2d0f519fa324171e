"""`python -m training.toyworld --out runs/toyworld`: regenerate the toy model and its ablation table.

    python -m training.toyworld --out runs/toyworld --threads 2 --jobs 2 --install checkpoints/toy
    python -m training.toyworld --out /tmp/toy-ci --quick      # minutes: every stage, tiny sizes

--install copies the packaged model (OUT/toy) over the given folder (the `toy` preset reads
checkpoints/toy). --reuse-base DIR skips pretraining and copies DIR/open_clip and DIR/llm
(from an earlier run's OUT/base, or a packaged toy model such as checkpoints/toy), to iterate on
fine-tuning alone or to re-make the shipped table from the shipped base models. --clip and --llm set one
field of ToyClipConfig / ToyLLMConfig each (repeatable), e.g. --clip vision_width=192; the
key=value arguments at the end are training/ overrides of configs/toyworld.yaml.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import signal
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from . import LOG_FORMAT

QUICK = {"train_clips": 48, "test_clips": 32, "val_clips": 16, "finetune_steps": 6, "eval_frames": 40}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.toyworld", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI): every stage runs, no quality")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument(
        "--jobs",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: fine-tune and evaluate the variants in two processes sharing --threads (faster on 2 cores)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clip-steps", type=int, default=None, help="toy CLIP pretraining steps")
    parser.add_argument("--llm-steps", type=int, default=None, help="toy LLM pretraining steps")
    parser.add_argument("--finetune-steps", type=int, default=None, help="steps per fine-tuned variant")
    parser.add_argument("--train-clips", type=int, default=None, help="fine-tuning clips")
    parser.add_argument("--test-clips", type=int, default=None, help="held-out test clips")
    parser.add_argument(
        "--clip", action="append", default=[], metavar="key=value", help="a toy CLIP setting (ToyClipConfig)"
    )
    parser.add_argument(
        "--llm", action="append", default=[], metavar="key=value", help="a toy LLM setting (ToyLLMConfig)"
    )
    parser.add_argument(
        "--reuse-base",
        type=Path,
        default=None,
        help="skip pretraining: copy this base (an OUT/base, or checkpoints/toy)",
    )
    parser.add_argument("--install", type=Path, default=None, help="copy OUT/toy here when done")
    parser.add_argument(
        "finetune_overrides", nargs="*", metavar="key=value", help="extra training/ overrides (optim.lr=1e-3)"
    )
    return parser


def with_settings(config: Any, pairs: list[str], option: str) -> Any:
    """`config` (a dataclass) with `pairs` ("key=value") applied, each value parsed as the type of
    the field's current value. ValueError names the option and the bad pair."""
    known = {f.name for f in fields(config)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or key not in known:
            raise ValueError(f"{option} {pair!r}: expected key=value with a key of {type(config).__name__}")
        current = getattr(config, key)
        try:
            if isinstance(current, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                changes[key] = text.lower() in ("true", "1")
            else:
                changes[key] = type(current)(text)
        except ValueError:
            raise ValueError(
                f"{option} {pair!r}: {key} takes {type(current).__name__} values like {current!r}"
            ) from None
    return replace(config, **changes)


def stop_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (`kill`, `timeout`) as SystemExit, so that the variants' worker processes are
    terminated with this one instead of fine-tuning on into OUT."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # `timeout` signals the process group too: once is enough,
    # and a second SystemExit must not interrupt the workers' termination
    print("python -m training.toyworld: stopped by SIGTERM", file=sys.stderr)
    raise SystemExit(128 + signum)


def make_plan(args: argparse.Namespace):
    from .pipeline import ToyWorldPlan
    from .pretrain import QUICK_CLIP, QUICK_LLM
    from .toy_clip import ToyClipConfig
    from .toy_llm import ToyLLMConfig

    clip = ToyClipConfig(seed=args.seed, **(QUICK_CLIP if args.quick else {}))
    llm = ToyLLMConfig(seed=args.seed, **(QUICK_LLM if args.quick else {}))
    clip = with_settings(clip, args.clip, "--clip")
    llm = with_settings(llm, args.llm, "--llm")
    if args.clip_steps is not None:
        clip = replace(clip, steps=args.clip_steps, warmup_steps=min(clip.warmup_steps, args.clip_steps))
    if args.llm_steps is not None:
        llm = replace(llm, steps=args.llm_steps, warmup_steps=min(llm.warmup_steps, args.llm_steps))
    plan = ToyWorldPlan(seed=args.seed, clip=clip, llm=llm, finetune_overrides=list(args.finetune_overrides))
    if args.quick:
        plan = replace(
            plan,
            **QUICK,
            finetune_overrides=["batch_size=4", "optim.warmup_steps=2", *plan.finetune_overrides],
        )
    for name in ("finetune_steps", "train_clips", "test_clips"):
        if getattr(args, name) is not None:
            plan = replace(plan, **{name: getattr(args, name)})
    return plan


def main(argv: list[str] | None = None) -> int:
    """Parse argv and run every stage; prints the table. Exit 2 on bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = make_plan(args)
    except ValueError as exc:  # a bad --clip/--llm setting, or one the config's own checks refuse
        parser.error(str(exc))
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    for name in ("training", "ovmlv"):
        logging.getLogger(name).setLevel(logging.INFO)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from .pipeline import run
    from .report import markdown_table

    command = "python -m training.toyworld " + shlex.join(argv if argv is not None else sys.argv[1:])
    report = run(args.out, plan, command, reuse_base=args.reuse_base, jobs=args.jobs)
    print(markdown_table(report["table"]))
    print(json.dumps(report["timings"], indent=2))
    if args.install is not None:
        if args.install.exists():
            shutil.rmtree(args.install)
        shutil.copytree(args.out / "toy", args.install)
        print(f"installed {args.install}")
    return 0


if __name__ == "__main__":
    # the command line only: main() called in-process (tests) leaves the caller's handler alone
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    raise SystemExit(main())
