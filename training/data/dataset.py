"""WindowDataset: one time window of T frames per manifest entry, ready for the video encoder.

Training (``train=True``): a window at a random offset inside the entry's segment (the whole
video when it has none) and open_clip's training crop (RandomResizedCrop, scale (0.9, 1.0),
bicubic) with the same crop for every frame of the window. Evaluation (``train=False``): the
centre window and a centre crop, exactly as ``VideoClassifier.preprocess`` prepares frames.

Frames are sampled uniformly in time inside the window and decoded through ``ovmlv.decode``'s
frame sources (decord first where ``probe_video`` says so, PyAV as the fallback). Every call
opens and closes its file: nothing is held between calls, so the dataset works in DataLoader
worker processes. An unreadable video gives ``None`` (with a warning) and ``collate_windows``
drops and counts it.

With ``frame_cache_mb`` > 0 a dataset keeps the decoded windows it has read (uint8, before the
crop) in a least-recently-used cache of that size, keyed by entry and frame times: for a small
dataset read for many epochs in the training process itself (``num_workers: 0``), each clip is
decoded once instead of once per epoch. Worker processes are restarted every epoch, so there
the cache would only cost memory.

With ``reversal_p`` > 0 (training only) a window is played backwards with that probability, and
its targets swap the labels of each pair in ``reversal_pairs`` ("moving left" <-> "moving right"):
the same frames then carry opposite labels, which only the order of the frames can explain.
Every label outside the pairs must read the same backwards (objects, colours, "blinking").
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from ovmlv.decode import VideoDecodeError, VideoInfo, output_size, probe_video, sample_times
from training.data.manifest import ManifestEntry

logger = logging.getLogger(__name__)

CROP_SCALE = (0.9, 1.0)  # open_clip's default training crop scale
CROP_RATIO = (3 / 4, 4 / 3)  # torchvision's default aspect-ratio range


def read_frames(info: VideoInfo, times_s: np.ndarray, short_side: int | None) -> np.ndarray:
    """uint8 frames [T, H, W, 3] (RGB, upright) displayed at increasing ``times_s`` of a probed video.

    Opens the file, reads, closes it. Uses decord when ``info.backend`` is "decord" and falls
    back to PyAV if decord fails, as ``ovmlv.decode.iter_windows`` does.

    Raises:
        VideoDecodeError: the frames cannot be decoded.
    """
    from ovmlv.decode_decord import DecordFailure, DecordFrameSource, resizes_right
    from ovmlv.decode_pyav import PyAVFrameSource

    name = Path(info.path).name
    size = None if short_side is None else output_size(info.width, info.height, short_side)
    if info.backend == "decord" and resizes_right(size):
        try:
            source = DecordFrameSource(info.path, name, size)
            try:
                return source.read(times_s)[0]
            finally:
                source.close()
        except DecordFailure as exc:
            logger.info("%s; decoding with PyAV instead", exc)
    if size is not None and info.rotation in (90, 270):
        size = (size[1], size[0])  # PyAV resizes the stored picture, then it is rotated upright
    source = PyAVFrameSource(info.path, name, size, info.rotation)
    try:
        return source.read(times_s)[0]
    finally:
        source.close()


def choose_window(
    duration_s: float,
    window_s: float,
    start_s: float | None = None,
    end_s: float | None = None,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """A window of ``window_s`` inside [start_s, end_s] (clipped to the video): random or centred.

    With a generator the window's offset is uniform over the places it fits; without one the
    window is centred. A segment shorter than a window gives the whole segment.
    """
    low = min(max(start_s or 0.0, 0.0), duration_s)
    high = min(duration_s if end_s is None else end_s, duration_s)
    if high - low <= 1e-6:  # annotated past the end of the decoded video: use its last window
        low, high = max(0.0, high - window_s), duration_s
    length = min(window_s, high - low)
    slack = high - low - length
    fraction = 0.5 if generator is None else float(torch.rand((), generator=generator))
    start = low + fraction * slack
    return start, start + length


def random_crop_box(height: int, width: int, generator: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, crop height, crop width) as torchvision's RandomResizedCrop.get_params draws them."""
    area = height * width
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target_area = area * (
            CROP_SCALE[0] + (CROP_SCALE[1] - CROP_SCALE[0]) * float(torch.rand((), generator=generator))
        )
        aspect = math.exp(
            log_ratio[0] + (log_ratio[1] - log_ratio[0]) * float(torch.rand((), generator=generator))
        )
        crop_w = round(math.sqrt(target_area * aspect))
        crop_h = round(math.sqrt(target_area / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(torch.randint(0, height - crop_h + 1, (), generator=generator))
            left = int(torch.randint(0, width - crop_w + 1, (), generator=generator))
            return top, left, crop_h, crop_w
    ratio = width / height  # fallback, as torchvision: a centre crop with a clamped aspect ratio
    if ratio < CROP_RATIO[0]:
        crop_w, crop_h = width, round(width / CROP_RATIO[0])
    elif ratio > CROP_RATIO[1]:
        crop_h, crop_w = height, round(height * CROP_RATIO[1])
    else:
        crop_h, crop_w = height, width
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


class FrameCache:
    """Decoded windows by key, at most `max_bytes` of frames (least recently used dropped first)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.bytes = max_bytes, 0
        self.windows: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.infos: dict[int, VideoInfo] = {}  # entry -> its probe result, once a window of it was cached

    def get(self, key: tuple) -> np.ndarray | None:
        frames = self.windows.get(key)
        if frames is not None:
            self.windows.move_to_end(key)
        return frames

    def put(self, key: tuple, frames: np.ndarray, index: int, info: VideoInfo) -> None:
        if frames.nbytes > self.max_bytes:
            return
        self.windows[key] = frames
        self.infos[index] = info
        self.bytes += frames.nbytes
        while self.bytes > self.max_bytes:
            _, dropped = self.windows.popitem(last=False)
            self.bytes -= dropped.nbytes


class WindowDataset(Dataset):
    """One window per manifest entry: ``dict(pixels [T,3,S,S], targets [V], index)`` or None (see module)."""

    def __init__(
        self,
        entries: Sequence[ManifestEntry],
        vocabulary: Sequence[str],
        num_frames: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        window_s: float = 2.0,
        train: bool = True,
        seed: int = 0,
        frame_cache_mb: float = 0.0,
        reversal_p: float = 0.0,
        reversal_pairs: Sequence[Sequence[str]] = (),
    ) -> None:
        """Build the dataset.

        Args:
            entries: the clips (from ``read_manifest``).
            vocabulary: labels, in target order; every label of every entry must be in it.
            num_frames: frames per window (the model's T).
            image_size: output side S (the model's image size).
            mean: per-channel normalisation mean (the model's ``mean``).
            std: per-channel normalisation std (the model's ``std``).
            window_s: window length in seconds.
            train: random window and crop (True) or centre window and crop (False).
            seed: mixed with torch's global RNG into each item's random window and crop.
            frame_cache_mb: memory for decoded windows (see the module docstring); 0: none.
            reversal_p: probability that a training window is played backwards (module docstring).
            reversal_pairs: label pairs that swap when a window is played backwards.
        """
        self.entries = list(entries)
        self.vocabulary = list(vocabulary)
        self.label_ids = {label: i for i, label in enumerate(self.vocabulary)}
        unknown = sorted({label for e in self.entries for label in e.labels if label not in self.label_ids})
        if unknown:
            shown = ", ".join(repr(label) for label in unknown[:5])
            raise ValueError(f"{len(unknown)} manifest label(s) not in the vocabulary: {shown}")
        self.num_frames, self.image_size, self.window_s = num_frames, image_size, window_s
        self.train, self.seed = train, seed
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.cache = FrameCache(int(frame_cache_mb * 2**20))
        self.reversal_p = reversal_p
        self.reversed_order = self._reversed_order(reversal_pairs)

    def _reversed_order(self, pairs: Sequence[Sequence[str]]) -> torch.Tensor:
        """Index map [V]: targets[order] are the targets of the window played backwards."""
        order = torch.arange(len(self.vocabulary))
        seen: set[str] = set()
        for pair in pairs:
            missing = [label for label in pair if label not in self.label_ids]
            if missing:
                raise ValueError(f"time-reversal label {missing[0]!r} is not in the vocabulary")
            if len(pair) != 2 or pair[0] == pair[1] or seen & set(pair):
                raise ValueError(f"time-reversal pairs must be disjoint pairs of labels: {list(pair)!r}")
            seen.update(pair)
            a, b = (self.label_ids[label] for label in pair)
            order[a], order[b] = b, a
        return order

    def __len__(self) -> int:
        return len(self.entries)

    def targets(self, index: int) -> torch.Tensor:
        """Multi-hot float targets [V] of one entry."""
        targets = torch.zeros(len(self.vocabulary))
        for label in self.entries[index].labels:
            targets[self.label_ids[label]] = 1.0
        return targets

    def _generator(self) -> torch.Generator:
        """A generator for one item, seeded from ``seed`` and one draw of torch's global RNG.

        torch seeds its global RNG per DataLoader worker and epoch, so windows and crops change
        every epoch; seeding torch right before an item (``torch.manual_seed``) fixes that item's.
        """
        draw = int(torch.randint(0, 2**62, ()))
        return torch.Generator().manual_seed(hash((self.seed, draw)) % 2**63)

    def __getitem__(self, index: int) -> dict | None:
        entry = self.entries[index]
        generator = self._generator() if self.train else None
        try:
            info = self.cache.infos.get(index) or probe_video(entry.video, max_duration_s=None)
            start, end = choose_window(info.duration_s, self.window_s, entry.start, entry.end, generator)
            times = sample_times(start, end, self.num_frames)
            key = (index, *np.round(times, 6).tolist())
            frames = self.cache.get(key)
            if frames is None:
                frames = read_frames(info, times, self.image_size)
                self.cache.put(key, frames, index, info)
        except (VideoDecodeError, OSError) as exc:
            logger.warning("skipping entry %d: %s", index, exc)
            return None
        pixels, targets = self.to_pixels(frames, generator), self.targets(index)
        # drawn after the crop and only when enabled: runs without it keep their windows and crops
        if (
            generator is not None
            and self.reversal_p > 0
            and float(torch.rand((), generator=generator)) < self.reversal_p
        ):
            pixels, targets = pixels.flip(0), targets[self.reversed_order]
        return {"pixels": pixels, "targets": targets, "index": index}

    def to_pixels(self, frames: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 frames [T, H, W, 3] (short side S) -> normalised float [T, 3, S, S] (random crop with a generator)."""
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # [T, 3, H, W]
        height, width = video.shape[-2:]
        size = self.image_size
        if generator is not None:
            top, left, crop_h, crop_w = random_crop_box(height, width, generator)
            video = TF.resized_crop(
                video,
                top,
                left,
                crop_h,
                crop_w,
                [size, size],
                interpolation=TF.InterpolationMode.BICUBIC,
                antialias=True,
            )
        else:
            top, left = (height - size) // 2, (width - size) // 2
            video = video[..., top : top + size, left : left + size]
        return (video.float() / 255.0 - self._mean) / self._std


def collate_windows(items: Sequence[dict | None]) -> dict:
    """Stack items into ``pixels [B,T,3,S,S]``, ``targets [B,V]``, ``index [B]``; ``skipped`` counts Nones.

    When every item is None, B is 0 and ``pixels``/``targets`` are empty tensors: skip such batches.
    """
    kept = [item for item in items if item is not None]
    skipped = len(items) - len(kept)
    if not kept:
        empty = torch.empty(0)
        return {
            "pixels": empty,
            "targets": empty,
            "index": torch.empty(0, dtype=torch.long),
            "skipped": skipped,
        }
    return {
        "pixels": torch.stack([item["pixels"] for item in kept]),
        "targets": torch.stack([item["targets"] for item in kept]),
        "index": torch.tensor([item["index"] for item in kept], dtype=torch.long),
        "skipped": skipped,
    }
