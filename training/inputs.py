"""What a training run reads: manifests, vocabulary, base/novel split, and a resumable DataLoader.

Resuming a run must replay exactly the batches an uninterrupted run would have seen, so
nothing about the data may depend on how long the process has been running:
- the order of epoch e is a permutation drawn from (seed, e) (EpochSampler), and a resumed
  run skips the batches of the current epoch it has already trained on;
- the random window and crop of an item depend only on (seed, epoch, index) (SeededItems),
  not on which DataLoader worker loads it or what it loaded before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from training.config import TrainConfig, TrainConfigError
from training.data import (
    ManifestEntry,
    Split,
    WindowDataset,
    collate_windows,
    read_manifest,
    read_split,
    read_vocabulary,
)

logger = logging.getLogger(__name__)


@dataclass
class TrainData:
    """The resolved inputs of a run."""

    entries: list[ManifestEntry]  # training clips
    vocabulary: list[str]  # target order of the multi-hot targets
    split: Split | None  # base/novel split (None: every label is base)
    base_ids: torch.Tensor  # LongTensor [K]: vocabulary ids the loss may use
    eval_entries: list[ManifestEntry] | None  # evaluated at the end (None: no evaluation)

    @property
    def base_labels(self) -> list[str]:
        return [self.vocabulary[i] for i in self.base_ids.tolist()]


@dataclass
class DataPaths:
    train_manifest: str
    vocabulary: str
    split: str | None
    eval_manifest: str | None


def synthesize(cfg: TrainConfig, run_dir: Path) -> DataPaths:
    """Write the synthetic smoke-test dataset(s) into run_dir/data and return their paths."""
    from training.data.synthetic import make_synthetic_dataset

    data = cfg.data
    manifest, vocabulary, split = make_synthetic_dataset(
        run_dir / "data" / "train", num_videos=data.synthetic_clips, seed=cfg.seed
    )
    eval_manifest = data.eval_manifest
    if data.synthetic_eval_clips > 0:
        eval_manifest, _, _ = make_synthetic_dataset(
            run_dir / "data" / "eval", num_videos=data.synthetic_eval_clips, seed=cfg.seed + 1
        )
    return DataPaths(
        str(manifest), str(vocabulary), str(split), None if eval_manifest is None else str(eval_manifest)
    )


def configured_paths(cfg: TrainConfig) -> DataPaths:
    """The data paths written in the config (for real datasets); a missing file is a TrainConfigError."""
    data = cfg.data
    for key in ("train_manifest", "vocabulary", "split", "eval_manifest"):
        path = getattr(data, key)
        if path is not None and not Path(path).is_file():
            raise TrainConfigError(
                f"data.{key}: {path} does not exist (make manifests with python -m training.convert, "
                f"or set data.{key}=PATH)"
            )
    return DataPaths(data.train_manifest or "", data.vocabulary or "", data.split, data.eval_manifest)


def load_data(paths: DataPaths) -> TrainData:
    """Read manifests, vocabulary and split, and check that they agree."""
    vocabulary = read_vocabulary(paths.vocabulary)
    entries = read_manifest(paths.train_manifest)
    if not entries:
        raise ValueError(f"{paths.train_manifest} has no entries")
    split = None
    base_labels = list(vocabulary)
    if paths.split:
        split = read_split(paths.split)
        split.check(vocabulary)
        base_labels = list(split.base)
    if not base_labels:
        raise ValueError("the split has no base labels: nothing to train on")
    index = {label: i for i, label in enumerate(vocabulary)}
    base_ids = torch.tensor(sorted(index[label] for label in base_labels), dtype=torch.long)
    eval_entries = read_manifest(paths.eval_manifest) if paths.eval_manifest else None
    logger.info(
        "%d training clips, %d labels (%d base, %d novel)%s",
        len(entries),
        len(vocabulary),
        len(base_ids),
        len(vocabulary) - len(base_ids),
        f", {len(eval_entries)} evaluation clips" if eval_entries is not None else "",
    )
    return TrainData(entries, vocabulary, split, base_ids, eval_entries)


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The RNG seed of one item in one epoch (independent of workers, ranks and resumption)."""
    return ((seed * 1_000_003 + epoch) * 1_000_033 + index) % (2**63)


class SeededItems(Dataset):
    """Wraps a dataset so that each item's randomness is a function of (seed, epoch, index).

    WindowDataset draws its window offset and crop from a generator derived from torch's
    seed (see its docstring), so seeding torch around each item is enough.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed(self.seed, self.epoch, index))
            return self.dataset[index]


class EpochSampler(Sampler[int]):
    """A shuffled order per epoch, drawn from (seed, epoch) alone."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


def train_loader(
    entries: Sequence[ManifestEntry],
    vocabulary: Sequence[str],
    cfg: TrainConfig,
    num_frames: int,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    pin_memory: bool = False,
) -> DataLoader:
    """The (unsharded) training DataLoader; Accelerate's prepare shards it across processes."""
    windows = WindowDataset(
        entries,
        vocabulary,
        num_frames,
        image_size,
        mean,
        std,
        window_s=cfg.data.window_s,
        train=True,
        seed=cfg.seed,
        frame_cache_mb=cfg.data.frame_cache_mb,
        reversal_p=cfg.data.time_reversal_p,
        reversal_pairs=cfg.data.time_reversal_pairs,
    )
    return DataLoader(
        SeededItems(windows, cfg.seed),
        batch_size=cfg.batch_size,
        sampler=EpochSampler(len(windows), cfg.seed),
        num_workers=loader_workers(cfg.data.num_workers),
        collate_fn=collate_windows,
        drop_last=True,
        pin_memory=pin_memory,
        persistent_workers=False,  # workers must see each epoch's SeededItems.epoch
    )


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS has one, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def loader_workers(asked: int) -> int:
    """`data.num_workers`, at most one worker per usable CPU: more only take turns on the same
    cores (torch's DataLoader warns about them), so base.yaml's 4 run as 2 on a 2-core machine."""
    cpus = usable_cpus()
    if asked > cpus:
        logger.info("data.num_workers %d: %d DataLoader workers, one per usable CPU", asked, cpus)
        return cpus
    return asked


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Point the sampler and the item seeds of a (prepared) loader at `epoch`."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)  # Accelerate's DataLoaderShard: also its own iteration counter
    sampler = _find_sampler(loader)
    sampler.set_epoch(epoch)
    loader.dataset.set_epoch(epoch)


def _find_sampler(loader: DataLoader) -> EpochSampler:
    node = loader.batch_sampler
    for _ in range(4):  # BatchSampler, possibly inside Accelerate's BatchSamplerShard
        sampler = getattr(node, "sampler", None)
        if isinstance(sampler, EpochSampler):
            return sampler
        node = getattr(node, "batch_sampler", None)
    raise TypeError("the training loader has no EpochSampler")
