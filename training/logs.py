"""What a run reports while it trains (rank 0 only): a progress bar, TensorBoard, metrics.jsonl.

metrics.jsonl holds one line per step (losses, lr, gates, throughput); on resume the lines
after the resumed step are dropped, so the file always describes one consistent run.
"""

from __future__ import annotations

import json
from pathlib import Path

from training.config import TrainConfig

METRICS_FILE = "metrics.jsonl"


class RunLogger:
    """tqdm bar (steps, loss, lr, clips/s) + TensorBoard scalars + metrics.jsonl, or nothing when disabled."""

    def __init__(self, run_dir: Path, cfg: TrainConfig, start_step: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.log_every = cfg.log_every
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter
        from tqdm.auto import tqdm

        self.metrics_path = run_dir / METRICS_FILE
        _truncate_after(self.metrics_path, start_step)
        self.metrics_file = self.metrics_path.open("a", encoding="utf-8")
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step or None)
        self.bar = tqdm(
            total=cfg.max_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True
        )

    def step(self, step: int, metrics: dict[str, float]) -> None:
        """Record the metrics of the step that just finished (`step` counts finished steps)."""
        if not self.enabled:
            return
        self.metrics_file.write(json.dumps({"step": step, **metrics}) + "\n")
        self.metrics_file.flush()
        if step % self.log_every == 0:
            for name, value in metrics.items():
                self.writer.add_scalar(name if "/" in name else f"train/{name}", value, step)
        self.bar.update(1)
        self.bar.set_postfix(
            loss=f"{metrics['loss']:.4f}", lr=f"{metrics['lr']:.2e}", clips_s=f"{metrics['clips_per_s']:.1f}"
        )

    def evaluation(self, step: int, report: dict) -> None:
        """Headline numbers of a training.evaluate report as TensorBoard scalars."""
        if not self.enabled:
            return
        for system, numbers in report["systems"].items():
            for key in ("map", "base_map", "novel_map", "harmonic_mean", "ece"):
                if numbers.get(key) is not None:
                    self.writer.add_scalar(f"eval_{system}/{key}", numbers[key], step)
        self.writer.flush()

    def close(self) -> None:
        if self.enabled:
            self.bar.close()
            self.writer.close()
            self.metrics_file.close()


def _truncate_after(path: Path, step: int) -> None:
    """Keep only the lines of steps <= `step` (a resumed run rewrites what came after)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The per-step metrics of a run, in step order."""
    path = Path(run_dir) / METRICS_FILE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
