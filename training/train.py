"""Command line of the trainer: `python -m training --config FILE.yaml [key=value ...]`.

    python -m training --config training/configs/smoke.yaml run_dir=/tmp/smoke
    accelerate launch --num_processes 4 -m training --config training/configs/charades_clip_b16.yaml

Several --config files merge in order; `key=value` overrides (dotted keys) come last. The
resolved config is written to run_dir/config.yaml; rerunning the same command resumes the run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ovmlv.errors import OvmlvError
from training.config import TrainConfigError, dump_config, load_config

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "base.yaml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Fine-tune an ovmlv model on a multi-label video dataset with a base/novel split.",
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="YAML",
        help=f"config file (repeatable, later files win; default {DEFAULT_CONFIG.name})",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="overrides, e.g. optim.lr=3e-4 run_dir=runs/a"
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv, run (or resume) training; exit status 0 on success, 2 on a bad config or data file."""
    args = build_parser().parse_args(argv)
    is_main = int(os.environ.get("RANK", "0")) == 0
    # Our own loggers at INFO on rank 0 only; dependencies (open_clip logs to the root logger) at WARNING.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("training", "ovmlv"):
        logging.getLogger(name).setLevel(logging.INFO if is_main else logging.WARNING)
    try:
        cfg = load_config(args.config or [DEFAULT_CONFIG], args.overrides)
    except TrainConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    from training.data import ManifestError
    from training.trainer import train

    try:
        summary = train(cfg)
    except (OvmlvError, ManifestError) as exc:  # bad paths, data files, presets: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if is_main:
        evaluation = summary.pop("evaluation", None)
        if evaluation is not None:
            summary["evaluation"] = {
                system: {k: v for k, v in numbers.items() if k != "per_class_ap"}
                for system, numbers in evaluation["systems"].items()
            }
        print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
