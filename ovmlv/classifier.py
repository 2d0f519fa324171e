"""VideoClassifier: file + labels -> per-label probabilities over time.

Encode once, score many times: `encode_video` decodes and encodes the windows of a clip into
a VideoState (the expensive part); `score` combines it with label embeddings from the label
database (cheap, repeatable, never touches the decoder or the vision tower).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .decode import VideoInfo, iter_windows, probe_video
from .factory import create_model
from .label_db import LabelDB
from .label_embeddings import LabelEmbedder
from .labels import LabelLimits, parse_labels
from .model import OVMLVModel
from .result import Result

logger = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]


def default_cache_path() -> Path:
    """The label database file: $OVMLV_CACHE or ~/.cache/ovmlv, then labels.sqlite."""
    root = os.environ.get("OVMLV_CACHE") or Path.home() / ".cache" / "ovmlv"
    return Path(root) / "labels.sqlite"


@dataclass
class VideoState:
    """An encoded video: window times and embeddings (at one or two interpolation ends)."""

    video: str
    info: VideoInfo
    times: np.ndarray  # float64 [W, 2] window start/end in seconds
    embeddings: torch.Tensor  # float32 [A, W, D], normalised; A = len(alphas)
    alphas: tuple[float, ...]  # the alphas the embeddings were computed at: (1.0,) or (0.0, 1.0)
    encode_seconds: float = 0.0  # decode + encode wall time
    timings: dict[str, float] = field(default_factory=dict)
    alpha_invariant: bool = False  # the model's temporal gates are zero: every alpha has the same embeddings

    @property
    def num_windows(self) -> int:
        return int(self.times.shape[0])

    def embeddings_at(self, alpha: float) -> torch.Tensor:
        """Window embeddings [W, D] at `alpha` (linear interpolation of the two ends, renormalised)."""
        if self.alpha_invariant:
            return self.embeddings[0]
        if alpha in self.alphas:
            return self.embeddings[self.alphas.index(alpha)]
        if self.alphas != (0.0, 1.0):
            raise ValueError(
                f"this video was encoded for alpha in {list(self.alphas)} only; "
                "encode it with alphas=None to score any alpha"
            )
        low, high = self.embeddings[0], self.embeddings[-1]
        return F.normalize((1.0 - alpha) * low + alpha * high, dim=-1)


def resize_short_side(images: torch.Tensor, size: int) -> torch.Tensor:
    """float [N, 3, H', W'] in 0..255: `images` [N, 3, H, W] (0..255) with the shorter side scaled to
    `size`, bilinear and antialiased (how the classifier brings any video to its model's input size)."""
    h, w = images.shape[-2:]
    scale = size / min(h, w)
    resized = F.interpolate(
        images.float(),
        size=(round(h * scale), round(w * scale)),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )
    return resized.clamp(0, 255)


class VideoClassifier:
    """Open-vocabulary multi-label video classification with one model (see module docstring)."""

    def __init__(
        self,
        model: OVMLVModel,
        label_db: LabelDB | None = None,
        batch_size: int = 8,
        max_duration_s: float | None = 600.0,
        label_limits: LabelLimits | None = None,
        name: str | None = None,
    ) -> None:
        self.model = model.eval()
        self.batch_size = batch_size
        self.max_duration_s = max_duration_s
        self.label_limits = label_limits or LabelLimits()
        self.name = name or model.config.name
        self.labels = LabelEmbedder(model, label_db if label_db is not None else LabelDB(None))
        self._mean = torch.tensor(model.mean).view(1, 1, 3, 1, 1)
        self._std = torch.tensor(model.std).view(1, 1, 3, 1, 1)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        label_db_path: str | os.PathLike | None = "default",
        **kwargs,
    ) -> VideoClassifier:
        """Load a preset, a checkpoint directory or `hf-hub:org/repo`.

        Args:
            name_or_path: what to load (see `ovmlv.list_presets()`).
            device: default CUDA when available, else CPU.
            dtype: default bfloat16 weights (fast on CPUs with AVX512-BF16 and on GPUs).
            label_db_path: SQLite label cache ("default": ~/.cache/ovmlv/labels.sqlite; None: memory only).
            **kwargs: passed to VideoClassifier (batch_size, max_duration_s, label_limits).
        """
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model = create_model(name_or_path, device=device, dtype=dtype or torch.bfloat16)
        path = default_cache_path() if label_db_path == "default" else label_db_path
        return cls(model, LabelDB(path), name=str(name_or_path), **kwargs)

    # ---- video -------------------------------------------------------------------------
    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 frames [N, T, H, W, 3] (short side >= image size) -> normalised [N, T, 3, S, S]."""
        size = self.model.image_size
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 1, 4, 2, 3)  # [N, T, 3, H, W]
        h, w = x.shape[-2:]
        if min(h, w) != size:
            n, t = x.shape[:2]
            resized = resize_short_side(x.reshape(n * t, 3, h, w), size)
            x = resized.reshape(n, t, 3, *resized.shape[-2:])
            h, w = x.shape[-2:]
        top, left = (h - size) // 2, (w - size) // 2
        x = x[..., top : top + size, left : left + size].float() / 255.0  # centre crop, as open_clip does
        return (x - self._mean) / self._std

    def _alphas(self, alphas: Sequence[float] | None) -> tuple[float, ...]:
        if not self.model.has_temporal_effect():
            return (1.0,)  # alpha cannot change window embeddings: one pass serves every alpha
        if alphas is None:
            return (0.0, 1.0)
        return tuple(sorted({float(a) for a in alphas}))

    @torch.no_grad()
    def encode_video(
        self,
        path: str | os.PathLike,
        window_s: float = 2.0,
        stride_s: float | None = None,
        progress: ProgressFn | None = None,
        alphas: Sequence[float] | None = None,
    ) -> VideoState:
        """Decode and encode every window of the clip once (raises VideoDecodeError on bad input).

        Args:
            path: the video file.
            window_s: window length in seconds.
            stride_s: distance between window starts (default: the window length).
            progress: called with (fraction done, message).
            alphas: the interpolation values `score` will be asked for. Default: both ends (0 and 1),
                so any alpha can be scored later without re-encoding; `(a,)` encodes once at `a` only,
                which is cheaper when the model's temporal gates are non-zero.
        """
        start = time.perf_counter()
        info = probe_video(path, max_duration_s=self.max_duration_s)
        alphas = self._alphas(alphas)
        windows = iter_windows(
            path,
            window_s=window_s,
            stride_s=stride_s,
            frames_per_window=self.model.num_frames,
            short_side=self.model.image_size,
            max_duration_s=self.max_duration_s,
        )
        times, chunks, batch = [], [], []
        encode_s = 0.0  # local: concurrent encodes (app sessions) must not share it
        expected = max(1.0, info.duration_s / (stride_s or window_s))
        for window in windows:
            times.append((window.start_s, window.end_s))
            batch.append(window.frames)
            if len(batch) == self.batch_size:
                chunk, seconds = self._encode_batch(batch, alphas)
                chunks.append(chunk)
                encode_s += seconds
                batch = []
                if progress:
                    progress(min(1.0, len(times) / expected), "encoding video")
        if batch:
            chunk, seconds = self._encode_batch(batch, alphas)
            chunks.append(chunk)
            encode_s += seconds
        elapsed = time.perf_counter() - start
        if progress:
            progress(1.0, "video encoded")
        timings = {"total_s": elapsed, "encode_s": encode_s, "decode_s": elapsed - encode_s}
        embeddings = torch.cat(chunks, dim=1)
        return VideoState(
            str(path),
            info,
            np.asarray(times, dtype=np.float64),
            embeddings,
            alphas,
            elapsed,
            timings,
            alpha_invariant=not self.model.has_temporal_effect(),
        )

    def _encode_batch(
        self, frames: list[np.ndarray], alphas: tuple[float, ...]
    ) -> tuple[torch.Tensor, float]:
        """([A, N, D] embeddings of a batch of windows, seconds spent)."""
        tick = time.perf_counter()
        pixels = self.preprocess(np.stack(frames))  # [N, T, 3, S, S]
        embeddings = self.model.encode_video_alphas(pixels, alphas).float().cpu()  # [A, N, D]
        return embeddings, time.perf_counter() - tick

    # ---- labels and scores -------------------------------------------------------------
    @property
    def threshold(self) -> float:
        """The model's default threshold (ModelConfig.threshold): where a window counts as containing a label."""
        return self.model.config.threshold

    def score(self, state: VideoState, labels: str | Sequence[str], alpha: float = 1.0) -> Result:
        """Probabilities of `labels` for an encoded video (no decoding, no video encoding)."""
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        labels = parse_labels(labels, self.label_limits)
        label_embeddings, attributes = self.labels.embeddings(labels, alpha)
        with torch.no_grad():
            windows = state.embeddings_at(alpha).to(self.model.device)
            probs = self.model.probabilities(windows, label_embeddings.to(self.model.device))
        return Result(
            labels=labels,
            times=state.times,
            timeline=probs.float().cpu().numpy(),
            attributes={k: v for k, v in attributes.items() if v},
            video=Path(state.video).name,
            model=self.name,
            alpha=alpha,
            threshold=self.threshold,
        )

    def classify(
        self,
        path: str | os.PathLike,
        labels: str | Sequence[str],
        window_s: float = 2.0,
        stride_s: float | None = None,
        alpha: float = 1.0,
        progress: ProgressFn | None = None,
    ) -> Result:
        """Encode `path` and score `labels` in one call (labels are validated before decoding)."""
        parse_labels(labels, self.label_limits)
        state = self.encode_video(
            path, window_s=window_s, stride_s=stride_s, progress=progress, alphas=(alpha,)
        )
        return self.score(state, labels, alpha=alpha)
