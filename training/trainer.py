"""The fine-tuning loop (DESIGN §2.4) on Accelerate: one CPU, one GPU, many GPUs or machines.

One step: sample the labels to score (all base positives of the batch + sampled base
negatives; novel labels never), compute the objective (training/objective.py), backward,
clip, AdamW step, LR schedule step. Only rank 0 logs, evaluates and writes files. The run directory gets config.yaml,
checkpoints/step-N/ (resumable), final/ (an ovmlv checkpoint), tensorboard/ and metrics.jsonl.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from ovmlv.checkpoint import copy_shipped_base, save_checkpoint
from ovmlv.factory import create_model
from ovmlv.model import OVMLVModel
from training.checkpointing import (
    checkpoint_path,
    latest_checkpoint,
    load_training_checkpoint,
    prune_checkpoints,
    rng_state,
    save_training_checkpoint,
)
from training.config import TrainConfig, TrainConfigError, deep_merge, dump_config
from training.data import sample_labels
from training.inputs import TrainData, configured_paths, load_data, set_loader_epoch, synthesize, train_loader
from training.objective import LOSS_NAMES, TrainStep
from training.optim import build_optimizer, build_scheduler
from training.precision import compute_precision

logger = logging.getLogger(__name__)


def enable_llm_gradient_checkpointing(model: OVMLVModel) -> None:
    """Recompute the frozen LLM's activations in backward instead of storing them.

    transformers only checkpoints modules in training mode; the LLM has no dropout, so
    training mode changes nothing else.
    """
    llm = model.llm.model
    kwargs = {"use_reentrant": False}
    if hasattr(llm, "activation_checkpointing_enable"):  # transformers >= 5.x; the old name warns
        llm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    llm.train()


def set_train_mode(model: OVMLVModel) -> None:
    """Training mode for what trains; the frozen CLIP towers stay in eval mode."""
    model.train()
    model.clip.eval()
    if model.config.train_vision_tower:
        model.clip.visual.train()


def build_model(cfg: TrainConfig, device: torch.device) -> OVMLVModel:
    """The model to fine-tune, in training mode."""
    overrides = dict(cfg.model.overrides)
    if cfg.model.train_vision_tower:
        overrides = deep_merge(overrides, {"train_vision_tower": True})
    model = create_model(cfg.model.name, pretrained=cfg.model.pretrained, device=device, overrides=overrides)
    set_train_mode(model)
    if cfg.model.gradient_checkpointing:
        enable_llm_gradient_checkpointing(model)
    return model


def make_accelerator(cfg: TrainConfig):
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    mixed = "no" if cpu_bf16(cfg) else cfg.mixed_precision
    if mixed == "auto":
        mixed = (
            "bf16" if torch.cuda.is_available() and not cfg.cpu and torch.cuda.is_bf16_supported() else "no"
        )
    # cpu=True also when there is no GPU: Accelerate only sets up CPU DDP (gloo) under torchrun when told.
    cpu = cfg.cpu or not torch.cuda.is_available()
    # Other ranks wait at a barrier while rank 0 evaluates: allow a long evaluation.
    timeout = InitProcessGroupKwargs(timeout=timedelta(hours=3))
    return Accelerator(
        mixed_precision=mixed, cpu=cpu, step_scheduler_with_optimizer=False, kwargs_handlers=[timeout]
    )


def cpu_bf16(cfg: TrainConfig) -> bool:
    """bf16 asked for on the CPU: the trainer runs its steps under training.precision's autocast.

    Accelerate is then told "no": its CPU bf16 is the same autocast, but with the CPU flash
    attention kernel, whose bf16 backward is slower than float32, and its state is one per process
    (a second run with another precision in the same process is refused).
    """
    return cfg.mixed_precision == "bf16" and (cfg.cpu or not torch.cuda.is_available())


def check_label_weights(cfg: TrainConfig, base_labels: list[str]) -> None:
    """Every label that `loss.label_weights` names is a base label of the data (only those reach the loss)."""
    unknown = sorted(set(cfg.loss.label_weights) - set(base_labels))
    if unknown:
        raise TrainConfigError(
            f"loss.label_weights names {', '.join(map(repr, unknown))}: not a base label of the training data"
        )


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The label-sampling RNG of one step on one rank (a function of the step: resumable)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1_009 + rank)


class Trainer:
    """Builds everything from a TrainConfig; `fit()` runs (or resumes) the run."""

    def __init__(self, cfg: TrainConfig) -> None:
        from accelerate.utils import broadcast_object_list, set_seed

        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.accelerator = make_accelerator(cfg)
        self.main = self.accelerator.is_main_process
        set_seed(cfg.seed)
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")
        if cfg.data.synthetic_clips > 0:  # written once, by rank 0
            paths = broadcast_object_list([synthesize(cfg, self.run_dir) if self.main else None])[0]
        else:
            paths = configured_paths(cfg)  # every rank checks the files (and fails alike)
        self.data: TrainData = load_data(paths)
        check_label_weights(cfg, self.data.base_labels)
        self.model = build_model(cfg, self.accelerator.device)
        self.model.config.adapter_trained = True  # every checkpoint of the run serves the soft path
        optimizer = build_optimizer(self.model, cfg.optim)
        self.scheduler = build_scheduler(optimizer, cfg.optim, cfg.max_steps)
        model = self.model
        loader = train_loader(
            self.data.entries,
            self.data.vocabulary,
            cfg,
            model.num_frames,
            model.image_size,
            model.mean,
            model.std,
            pin_memory=self.accelerator.device.type == "cuda",
        )
        self.step_module, self.optimizer, self.loader = self.accelerator.prepare(
            TrainStep(self.model, cfg.loss, torch.bfloat16 if cpu_bf16(cfg) else None), optimizer, loader
        )
        if len(self.loader) == 0:
            raise ValueError(
                f"{len(self.data.entries)} clips make no full batch of {cfg.batch_size} on "
                f"{self.accelerator.num_processes} process(es): lower batch_size"
            )
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.step = 0
        self.last_losses: dict[str, float] = {}

    # ---- resume --------------------------------------------------------------------------
    def resume(self) -> None:
        """Load the checkpoint that cfg.resume names (auto: the run's newest, if any)."""
        choice = self.cfg.resume
        if choice == "none":
            return
        directory = latest_checkpoint(self.run_dir) if choice == "auto" else Path(choice)
        if directory is None:
            return
        state = load_training_checkpoint(
            directory, self.model, self.optimizer, self.scheduler, self.accelerator.process_index
        )
        self.step = int(state["step"])
        self.last_losses = state.get("losses", {})
        logger.info("resumed from %s (step %d)", directory, self.step)

    # ---- loop ----------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train to cfg.max_steps (or cfg.max_steps_this_run more steps), export and evaluate."""
        from training.logs import RunLogger

        cfg, accelerator = self.cfg, self.accelerator
        self.resume()
        log = self.log = RunLogger(self.run_dir, cfg, self.step, enabled=self.main)
        stop_at = (
            cfg.max_steps
            if cfg.max_steps_this_run is None
            else min(cfg.max_steps, self.step + cfg.max_steps_this_run)
        )
        steps_per_epoch = len(self.loader)
        try:
            while self.step < stop_at:
                epoch, done = divmod(self.step, steps_per_epoch)
                set_loader_epoch(self.loader, epoch)
                batches = accelerator.skip_first_batches(self.loader, done) if done else self.loader
                tick = time.perf_counter()
                for batch in batches:
                    metrics = self.train_step(batch)  # clips/s below includes waiting for the data
                    metrics["clips_per_s"] = metrics["clips"] / max(time.perf_counter() - tick, 1e-9)
                    log.step(self.step, metrics)
                    if self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps:
                        self.save()
                    if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.max_steps:
                        self.evaluate()
                        set_train_mode(self.model)
                    if self.step >= stop_at:
                        break
                    tick = time.perf_counter()
            summary: dict[str, Any] = {"step": self.step, "losses": self.last_losses, "final": None}
            if self.step >= cfg.max_steps:
                final = self.export()
                summary["final"] = str(final)
                summary["evaluation"] = report = self.evaluate()
                if report is not None:  # the exported checkpoint carries its own report
                    (final / "eval.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        finally:
            log.close()
        accelerator.wait_for_everyone()
        accelerator.end_training()
        return summary

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """One optimiser step; returns the losses (averaged over processes), lr and clip count."""
        cfg, accelerator = self.cfg, self.accelerator
        pixels, targets = batch["pixels"], batch["targets"]
        clips = pixels.shape[0]
        local = torch.tensor(
            [clips, batch["skipped"], clips == 0], dtype=torch.float32, device=accelerator.device
        )
        counts = accelerator.reduce(local, "sum")  # [clips, unreadable clips, processes without a clip]
        values = torch.zeros(len(LOSS_NAMES), device=accelerator.device)
        grad_norm = torch.zeros(())
        if counts[2] == 0:
            if cfg.optim.label_gate_from is not None:
                self.project_label_gate(self.step)  # the held gate of this step, from the first one
            generator = step_generator(cfg.seed, self.step, accelerator.process_index)
            label_ids, label_targets = sample_labels(
                targets, self.data.base_ids, cfg.loss.num_negatives, generator
            )
            labels = [self.data.vocabulary[i] for i in label_ids.tolist()]
            with compute_precision("bf16" if cpu_bf16(cfg) else "fp32"):
                losses = self.step_module(pixels, labels, label_targets)
                accelerator.backward(losses["loss"])
            if cfg.optim.grad_clip > 0:
                grad_norm = accelerator.clip_grad_norm_(self.trainable, cfg.optim.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.project_label_gate()
            values = torch.stack([losses[name].detach().float() for name in LOSS_NAMES])
        else:  # some process got only unreadable clips: every process skips the update together
            logger.warning("step %d: a batch had no readable clip; no update", self.step)
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        self.step += 1
        values = accelerator.reduce(values, "mean")
        self.last_losses = {name: float(v) for name, v in zip(LOSS_NAMES, values.tolist(), strict=True)}
        return {
            **self.last_losses,
            "lr": lr,
            "grad_norm": float(grad_norm),
            "clips": float(counts[0]),
            "skipped_clips": float(counts[1]),
            **self.gate_metrics(),
        }

    def project_label_gate(self, step: int | None = None) -> None:
        """Keep tanh(h) of the label gate >= optim.label_gate_min (when set) after each update.

        The gate interpolates from the zero-shot embedding e0 toward e_soft. A negative gate
        extrapolates away from e_soft instead, and can then never remove e0: when e0 is
        uninformative (labels the backbone never saw) training gets stuck there. A small floor
        keeps the gate on the interpolating side; at init the gate is still exactly 0.

        With optim.label_gate_from the gate is not learned: it is held at that value (for the
        share optim.label_gate_hold of the steps), then on a line down to label_gate_min,
        reached at the last step. While the labels may move with the windows, the temporal
        branches learned more of the motions in the toy world (session 15, over five seeds:
        reversal motions 73-77 mean against 70, with wide seed-to-seed spread); at the end the
        labels are back near their zero-shot anchors, which the novel labels need.
        """
        optim = self.cfg.optim
        if optim.label_gate_min is None:
            return
        gate = self.model.label_encoder.gate
        with torch.no_grad():
            if optim.label_gate_from is None:
                gate.clamp_(min=math.atanh(optim.label_gate_min))
            else:
                gate.fill_(math.atanh(self.held_label_gate(self.step + 1 if step is None else step)))

    def held_label_gate(self, step: int) -> float:
        """tanh(label gate) after `step` updates under optim.label_gate_from: held, then a line
        down to label_gate_min at max_steps, then flat."""
        optim = self.cfg.optim
        held = optim.label_gate_hold * self.cfg.max_steps
        done = min(max(step - held, 0.0) / max(self.cfg.max_steps - held, 1), 1.0)
        return optim.label_gate_from + (optim.label_gate_min - optim.label_gate_from) * done

    def gate_metrics(self) -> dict[str, float]:
        model = self.model
        metrics = {
            "gate/label": float(torch.tanh(model.label_encoder.gate.detach().float())),
            "logit_scale": float(model.logit_scale.detach().float().exp()),
            "logit_bias": float(model.logit_bias.detach().float()),
        }
        if len(model.temporal.branches):
            metrics["gate/temporal_mean_abs"] = float(model.temporal.gate_values().detach().abs().mean())
        return metrics

    # ---- outputs -------------------------------------------------------------------------
    def save(self) -> None:
        """A resumable checkpoint of the current step (RNG states gathered from every process)."""
        from accelerate.utils import gather_object

        states = gather_object([rng_state()])
        if self.main:
            directory = checkpoint_path(self.run_dir, self.step)
            trainer_state = {
                "step": self.step,
                "world_size": self.accelerator.num_processes,
                "losses": self.last_losses,
            }
            save_training_checkpoint(
                directory, self.model, self.optimizer, self.scheduler, states, trainer_state
            )
            prune_checkpoints(self.run_dir, self.cfg.keep_checkpoints)
            logger.info("saved %s", directory)
        self.accelerator.wait_for_everyone()

    def export(self) -> Path:
        """The trained model as an ovmlv checkpoint in run_dir/final (loads with from_pretrained)."""
        final = self.run_dir / "final"
        if self.main:
            extra = {
                "training": {"steps": self.step, "losses": self.last_losses, "run_dir": str(self.run_dir)}
            }
            save_checkpoint(self.model, final, extra=extra)
            source = Path(self.cfg.model.name).expanduser()
            if source.is_dir():  # base weights shipped inside the starting checkpoint travel along
                copy_shipped_base(self.model.config, source, final)
            logger.info("exported %s", final)
        self.accelerator.wait_for_everyone()
        return final

    def evaluate(self) -> dict[str, Any] | None:
        """training.evaluate on the evaluation manifest (rank 0 while the others wait; None if none)."""
        report = None
        if self.data.eval_entries is not None and self.main:
            from ovmlv.classifier import VideoClassifier
            from ovmlv.label_db import LabelDB
            from training.evaluate import evaluate, format_table

            # A new classifier each time: its label cache is keyed by the weights it was built with.
            classifier = VideoClassifier(self.model, LabelDB(None), name=f"{self.run_dir.name}@{self.step}")
            with torch.no_grad():
                report = evaluate(
                    classifier,
                    self.data.eval_entries,
                    self.data.vocabulary,
                    split=self.data.split,
                    baseline=self.cfg.data.eval_baselines,
                    window_s=self.cfg.data.window_s,
                )
            report["step"] = self.step
            path = self.run_dir / "eval" / f"step-{self.step:08d}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=2), encoding="utf-8")
            self.log.evaluation(self.step, report)
            logger.info("evaluation at step %d (%s):\n%s", self.step, path, format_table(report))
        self.accelerator.wait_for_everyone()
        return report


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) the training run described by `cfg`; returns a summary.

    The summary holds the last step, its losses (averaged over processes), the final checkpoint
    directory (None when the run stopped early through max_steps_this_run) and the evaluation.
    """
    return Trainer(cfg).fit()
