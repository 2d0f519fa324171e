"""The whole toy-world experiment, from nothing: pretrain, render, fine-tune, evaluate, package.

Stages (each writes under OUT; see `python -m training.toyworld --help`):

1. pretrain the toy CLIP (attribute captions) and the toy LLM (noun definitions): OUT/base/;
2. write OUT/base/config.json: an untrained ovmlv checkpoint that ships both base models;
3. render the data (mp4 + manifests): OUT/data/{train,test}, vocabulary.txt, split.json;
   training labels are base nouns and motions only;
4. fine-tune three variants with `training/` (configs/toyworld.yaml): the full method, the
   full method without the temporal branch, and without the LLM (learned context tokens);
5. evaluate five systems on the held-out test set with `training.evaluate`;
6. choose the full model's default threshold: the best micro-F1 on held-out validation clips
   (OUT/data/val, base labels only; never the test set);
7. package the full model as OUT/toy (config.json with that threshold, model.safetensors,
   open_clip/, llm/, README.md with the table), ready to copy to checkpoints/toy.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ovmlv.checkpoint import set_checkpoint_threshold

from . import LOG_FORMAT
from .report import GROUPS, summarise, write_checkpoint_readme
from .toy_clip import ToyClipConfig
from .toy_llm import ToyLLMConfig

logger = logging.getLogger(__name__)

FINETUNE_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "toyworld.yaml"
# Fine-tuning variants: name -> model config overrides, the longest fine-tuning first (ORDER).
VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "no_temporal": {"temporal": {"blocks": []}},
    "no_llm": {"labels": {"soft_source": "context", "anchor": "template"}},  # no LLM anywhere
}
# The five systems of the table: name -> (variant whose model is scored, training.evaluate baseline).
SYSTEMS: dict[str, tuple[str, str]] = {
    "zero-shot label text": ("full", "zero-shot"),
    "zero-shot + LLM attributes": ("full", "attributes"),
    "full method": ("full", "none"),
    "full method, no temporal branch": ("no_temporal", "none"),
    "full method, no LLM (context tokens)": ("no_llm", "none"),
}


@dataclass
class ToyWorldPlan:
    """Sizes and seeds of one regeneration (the defaults are the committed model's)."""

    seed: int = 0  # seeds pretraining, rendering and fine-tuning
    train_clips: int = 1200  # fine-tuning clips
    test_clips: int = 400  # held-out test clips (seed + 2,000,000: never overlaps training)
    val_clips: int = 200  # held-out validation clips (seed + 3,000,000), base labels: the default threshold
    finetune_steps: int = 500  # optimiser steps per variant, of toyworld.yaml's 8 clips (session 16:
    # reversal 83.3 / 85.8 over two seeds, against 74.8 / 83.0 with 250 steps of 16 clips, for 1.2x the time).
    # 1000 steps reach reversal 89.5-91.7 (session 24, four runs) but take the command from nothing past 45 min
    finetune_overrides: list[str] = field(default_factory=list)  # extra key=value for training/
    clip: ToyClipConfig = field(default_factory=ToyClipConfig)
    llm: ToyLLMConfig = field(default_factory=ToyLLMConfig)
    eval_frames: int = 500  # held-out frames of the toy CLIP's own attribute check

    @property
    def train_seed(self) -> int:
        return self.seed * 10_000_000 + 1_000_000

    @property
    def test_seed(self) -> int:
        return self.seed * 10_000_000 + 2_000_000

    @property
    def val_seed(self) -> int:
        return self.seed * 10_000_000 + 3_000_000


def toy_model_config() -> dict[str, Any]:
    """The ovmlv model config of the toy preset; base weights are the folders shipped beside it."""
    return {
        "name": "toy",
        "clip": {"arch": "toy", "local_dir": "open_clip"},
        "llm": {"name": "llm", "quantization": "none"},
        # every block: with the place-aware toy CLIP, branches in all six let a supervised probe
        # tell each motion from its reversal (held-out AP 0.95-1.0); in blocks 3-5 only, or in
        # block 5 only, left/right stayed at 0.3-0.65 (motion_probe.py, session-6 runs)
        # the position table starts at 0.3, not 0.02: it is added to layer-normed tokens, and at
        # 0.02 frame order is nearly invisible until it grows. With toyworld.yaml's lr 3e-3 the
        # reversal motions gained (86.4 / 84.3 over two fine-tuning seeds, against 79.8-83.9), at
        # lr 1e-2 they did not (79.3 / 83.0): a faster lr grows the table anyway (session 23)
        "temporal": {"num_frames": 8, "blocks": [0, 1, 2, 3, 4, 5], "heads": 4, "position_init_std": 0.3},
        "labels": {
            "num_prefix": 4,
            "num_queries": 4,
            # two prompting layers with loss.soft_weight 1 (toyworld.yaml): reversal motions 62.0,
            # against 51.4 with a linear map and no soft loss (session 10)
            "prompting_layers": 2,
            "prompting_heads": 4,
            "num_attributes": 3,
            # e0 = zero-shot attributes: the toy CLIP never saw a noun, so "a video of lime" alone
            # means nothing to it, while "…, which has green colour" does.
            "anchor": "attributes",
            "max_new_tokens": 32,
        },
    }


def write_base_checkpoint(base: Path) -> Path:
    """OUT/base/config.json: an untrained checkpoint over OUT/base/open_clip and OUT/base/llm."""
    from ovmlv.checkpoint import CONFIG_FILE, FORMAT, FORMAT_VERSION
    from ovmlv.config import ModelConfig

    config = ModelConfig.from_dict(toy_model_config())  # validates
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": config.to_dict()}
    (base / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")
    return base


def base_labels_only(full: Path) -> Path:
    """manifest.jsonl beside `full` (all.jsonl): the same clips, labelled with base nouns and motions only."""
    from ovmlv.toyworld import BASE_NOUNS, MOTIONS

    base = set(BASE_NOUNS) | set(MOTIONS)
    kept = full.with_name("manifest.jsonl")
    with open(full, encoding="utf-8") as source, open(kept, "w", encoding="utf-8") as target:
        for line in source:
            entry = json.loads(line)
            entry["labels"] = [label for label in entry["labels"] if label in base]
            target.write(json.dumps(entry) + "\n")
    return kept


def render_data(data: Path, plan: ToyWorldPlan) -> dict[str, str]:
    """Train, validation and test sets (mp4 + manifest), vocabulary.txt and split.json under `data`.

    The training and validation manifests keep only base nouns and motions; the test manifest
    has every label.
    """
    from ovmlv.toyworld import BASE_NOUNS, MOTIONS, NOVEL_NOUNS, all_labels, render_dataset

    test = render_dataset(data / "test", plan.test_clips, seed=plan.test_seed)
    train = base_labels_only(
        render_dataset(data / "train", plan.train_clips, seed=plan.train_seed, manifest_name="all.jsonl")
    )
    val = base_labels_only(
        render_dataset(data / "val", plan.val_clips, seed=plan.val_seed, manifest_name="all.jsonl")
    )
    (data / "vocabulary.txt").write_text("\n".join(all_labels()) + "\n", encoding="utf-8")
    split = {"base": list(BASE_NOUNS) + list(MOTIONS), "novel": list(NOVEL_NOUNS)}
    (data / "split.json").write_text(json.dumps(split, indent=2), encoding="utf-8")
    return {
        "train": str(train),
        "val": str(val),
        "test": str(test),
        "vocabulary": str(data / "vocabulary.txt"),
    }


def finetune(out: Path, variant: str, plan: ToyWorldPlan) -> Path:
    """Fine-tune one variant with `training/`; returns its final checkpoint directory."""
    from training.config import load_config
    from training.trainer import train

    overrides = [
        f"run_dir={out / 'runs' / variant}",
        f"seed={plan.seed}",
        f"max_steps={plan.finetune_steps}",
        f"model.name={out / 'base'}",
        f"model.overrides={json.dumps(VARIANTS[variant])}",
        f"data.train_manifest={out / 'data' / 'train' / 'manifest.jsonl'}",
        f"data.vocabulary={out / 'data' / 'vocabulary.txt'}",
        f"data.split={out / 'data' / 'split.json'}",
        *plan.finetune_overrides,
    ]
    cfg = load_config([FINETUNE_CONFIG], overrides)
    summary = train(cfg)
    if summary["final"] is None:
        raise RuntimeError(f"fine-tuning {variant} stopped before its last step")
    return Path(summary["final"])


def evaluate_systems(out: Path, variant: str, final: Path) -> dict[str, Any]:
    """The systems of SYSTEMS that score `variant`'s model, on the test set (one encode per video),
    float32 CPU; plus "_num_videos"."""
    from ovmlv.classifier import VideoClassifier
    from ovmlv.factory import create_model
    from ovmlv.label_db import LabelDB
    from training.data.manifest import read_manifest, read_split, read_vocabulary
    from training.evaluate import evaluate

    data = out / "data"
    entries = read_manifest(data / "test" / "manifest.jsonl")
    vocabulary = read_vocabulary(data / "vocabulary.txt")
    split = read_split(data / "split.json")
    baselines = {name: baseline for name, (v, baseline) in SYSTEMS.items() if v == variant}
    model = create_model(final, device="cpu", dtype=torch.float32)
    classifier = VideoClassifier(model, LabelDB(None), name=f"toy-{variant}")
    report = evaluate(classifier, entries, vocabulary, split, baseline=list(baselines.values()))
    results: dict[str, Any] = {name: report["systems"][baseline] for name, baseline in baselines.items()}
    results["_num_videos"] = report["num_videos"]
    return results


def choose_threshold(out: Path, final: Path) -> dict[str, Any]:
    """The fine-tuned model's best-F1 threshold on the validation clips (base labels), scored as
    the app, the CLI and `Result.segments` score: loaded by `VideoClassifier.from_pretrained` with
    its default weights (bfloat16). The F1 curve is flat at its top, so float32 scores can put its
    argmax elsewhere (0.38 against 0.32 for session 29's model)."""
    from ovmlv.classifier import VideoClassifier
    from ovmlv.toyworld import BASE_NOUNS, MOTIONS
    from training.data.manifest import read_manifest
    from training.evaluate import evaluate

    entries = read_manifest(out / "data" / "val" / "manifest.jsonl")
    classifier = VideoClassifier.from_pretrained(final, device="cpu", label_db_path=None)
    system = evaluate(classifier, entries, list(BASE_NOUNS) + list(MOTIONS), baseline="none")["systems"][
        "none"
    ]
    return {"value": system["f1_threshold"], "best_f1": system["best_f1"], "val_clips": len(entries)}


def package(out: Path, final: Path, report: dict[str, Any]) -> Path:
    """OUT/toy: the full model's checkpoint with its base models and README (the table)."""
    target = out / "toy"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(final, target)
    (target / "eval.json").unlink(missing_ok=True)  # the trainer's own evaluation (none is configured)
    threshold = report["threshold"]
    set_checkpoint_threshold(target, threshold["value"], {"threshold": threshold})
    (target / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    write_checkpoint_readme(target / "README.md", report)
    return target


PRETRAIN_REPORT_KEYS = ("clip", "llm", "llm_examples", "sizes_bytes")  # what report.json keeps of it


def reuse_pretrained(source: Path, base: Path) -> dict[str, Any]:
    """Copy pretrained models (open_clip/, llm/) and their checks into `base`; returns the checks.

    `source` is an earlier run's OUT/base (with pretrain_report.json) or a packaged toy model
    such as checkpoints/toy (its report.json keeps the pretraining checks under "pretrain"), so
    the shipped table can be re-made from the shipped base models on any machine.
    """
    if (source / "pretrain_report.json").is_file():
        report = json.loads((source / "pretrain_report.json").read_text(encoding="utf-8"))
    elif (source / "report.json").is_file():
        report = json.loads((source / "report.json").read_text(encoding="utf-8")).get("pretrain", {})
    else:
        raise FileNotFoundError(f"{source} has neither pretrain_report.json nor a toy model's report.json")
    missing = [f"{name}/" for name in ("open_clip", "llm") if not (source / name).is_dir()]
    missing += [f"pretraining check {key!r}" for key in PRETRAIN_REPORT_KEYS if key not in report]
    if missing:
        raise ValueError(f"{source} is not a pretrained toy base: it lacks {', '.join(missing)}")
    base.mkdir(parents=True, exist_ok=True)
    for name in ("open_clip", "llm"):
        shutil.copytree(source / name, base / name, dirs_exist_ok=True)
    (base / "pretrain_report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


# The order the variants are fine-tuned in, the longest first (VARIANTS' order). With two jobs the
# full method runs beside the two ablations in turn, and each evaluation waits behind the
# fine-tunings still to start (session 28: full 7.6 min, no temporal branch 3.4, no LLM 5.8).
ORDER: tuple[str, ...] = tuple(VARIANTS)


def finetune_task(
    out: Path, variant: str, plan: ToyWorldPlan, threads: int | None = None
) -> tuple[Path, float]:
    """(final checkpoint, seconds) of fine-tuning `variant`; runs in a worker process with jobs > 1."""
    if threads:
        torch.set_num_threads(threads)
    tic = time.perf_counter()
    final = finetune(out, variant, plan)
    return final, time.perf_counter() - tic


def evaluate_task(out: Path, variant: str, final: Path, threads: int | None = None) -> dict[str, Any]:
    """{"systems": ..., "threshold": ... (the full method only), "timings": ...} of one fine-tuned
    variant: its systems on the test set and, for the full method, its default threshold."""
    if threads:
        torch.set_num_threads(threads)
    tic = time.perf_counter()
    result: dict[str, Any] = {"systems": evaluate_systems(out, variant, final)}
    timings = {"evaluate_s": time.perf_counter() - tic}
    if variant == "full":
        tic = time.perf_counter()
        result["threshold"] = choose_threshold(out, final)
        timings["threshold_s"] = time.perf_counter() - tic
    result["timings"] = timings
    return result


def _log_like(levels: dict[str, int]) -> None:
    """A worker process's logging: the format of `python -m training.toyworld`, the parent's levels."""
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


class _Results:
    """What the variants' tasks return, gathered: finals, systems, threshold, summed timings."""

    def __init__(self) -> None:
        self.finals: dict[str, Path] = {}
        self.systems: dict[str, Any] = {}
        self.threshold: dict[str, Any] | None = None
        self.timings: dict[str, float] = {}

    def finetuned(self, variant: str, final: Path, seconds: float) -> None:
        self.finals[variant] = final
        self.timings[f"finetune_{variant}_s"] = seconds

    def evaluated(self, result: dict[str, Any]) -> None:
        self.systems.update(result["systems"])
        self.threshold = result.get("threshold", self.threshold)
        for name, seconds in result["timings"].items():
            self.timings[name] = self.timings.get(name, 0.0) + seconds


def run_variants(out: Path, plan: ToyWorldPlan, jobs: int = 1) -> _Results:
    """Fine-tune every variant (ORDER) and evaluate each: in this process (jobs 1), or in `jobs`
    worker processes that share this process's torch threads. A worker that finishes a fine-tuning
    starts the next one, and the variant's evaluation queues behind it: the first free worker
    takes it. On 2 cores a fine-tuning step of one 1-thread job beside the other takes ~1.05 s
    against ~0.59 s alone with 2 threads: the stage took 10.8 min side by side, about 11.7 in
    order (session 18, the wide toy CLIP)."""
    results = _Results()
    if jobs <= 1:
        for variant in ORDER:
            results.finetuned(variant, *finetune_task(out, variant, plan))
        for variant in ORDER:
            results.evaluated(evaluate_task(out, variant, results.finals[variant]))
        return results
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    threads = max(1, torch.get_num_threads() // jobs)
    levels = {name: logging.getLogger(name).level for name in ("training", "ovmlv")}
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch threads
    # An executor, not a multiprocessing Pool: a Pool's workers are daemons, which may not start the
    # DataLoader workers of `data.num_workers` > 0.
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_log_like, initargs=(levels,)) as pool:
        try:
            waiting = list(ORDER)
            running: dict[Future, tuple[str, str]] = {}

            def start_next_finetuning() -> None:
                variant = waiting.pop(0)
                running[pool.submit(finetune_task, out, variant, plan, threads)] = ("finetune", variant)

            for _ in range(min(jobs, len(waiting))):
                start_next_finetuning()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    kind, variant = running.pop(future)
                    if kind == "evaluate":
                        results.evaluated(future.result())
                        continue
                    final, seconds = future.result()
                    results.finetuned(variant, final, seconds)
                    if waiting:  # submitted first, so the free worker takes it before any evaluation
                        start_next_finetuning()
                    running[pool.submit(evaluate_task, out, variant, final, threads)] = ("evaluate", variant)
            return results
        except BaseException:  # an error, Ctrl-C, or the SIGTERM that the command turns into SystemExit
            terminate_workers(pool)  # leaving the `with` would otherwise wait for each fine-tuning to end
            raise


def terminate_workers(pool: Any) -> None:
    """Stop a ProcessPoolExecutor's worker processes now, whatever they are running."""
    if hasattr(pool, "terminate_workers"):  # Python 3.14
        pool.terminate_workers()
        return
    processes = list(pool._processes.values())  # before 3.14 the executor has no public way
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()


def run(
    out: Path, plan: ToyWorldPlan, command: str, reuse_base: Path | None = None, jobs: int = 1
) -> dict[str, Any]:
    """Run every stage; returns the report (also written to OUT/report.json and OUT/toy).

    Args:
        out: output folder.
        plan: sizes and seeds.
        command: the command line, recorded in the report.
        reuse_base: an earlier run's OUT/base: skip pretraining and copy its models.
        jobs: fine-tune and evaluate the variants in this many processes (`run_variants`), sharing
            the torch threads. Stage timings are summed over the processes; total_s is wall time.
    """
    from .pretrain import pretrain

    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = tic = time.perf_counter()
    if reuse_base is not None:
        pretrain_report = reuse_pretrained(reuse_base, out / "base")
    else:
        pretrain_report = pretrain(out / "base", plan.clip, plan.llm, plan.eval_frames)
    write_base_checkpoint(out / "base")
    timings["pretrain_s"] = time.perf_counter() - tic
    tic = time.perf_counter()
    paths = render_data(out / "data", plan)
    timings["render_s"] = time.perf_counter() - tic
    tic = time.perf_counter()
    results = run_variants(out, plan, jobs)
    timings["variants_s"] = time.perf_counter() - tic
    systems = {name: results.systems[name] for name in SYSTEMS} | {
        "_num_videos": results.systems["_num_videos"]
    }
    timings.update(results.timings)
    timings["total_s"] = time.perf_counter() - start
    report = {
        "command": command,
        "plan": asdict(plan),
        "data": paths,
        "num_test_clips": systems.pop("_num_videos"),
        "groups": {name: list(labels) for name, labels in GROUPS.items()},
        "table": summarise(systems),
        "threshold": results.threshold,
        "systems": systems,
        "pretrain": {k: pretrain_report[k] for k in PRETRAIN_REPORT_KEYS},
        "timings": timings,
        "threads": torch.get_num_threads(),
        "jobs": max(1, jobs),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    package(out, results.finals["full"], report)
    return report
