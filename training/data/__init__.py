"""Datasets for training and evaluation: manifests, converters, window decoding, label sampling."""

from training.data.dataset import WindowDataset, collate_windows
from training.data.manifest import (
    ManifestEntry,
    ManifestError,
    Split,
    read_manifest,
    read_split,
    read_vocabulary,
    write_manifest,
    write_split,
    write_vocabulary,
)
from training.data.sampling import sample_labels

__all__ = [
    "ManifestEntry",
    "ManifestError",
    "Split",
    "WindowDataset",
    "collate_windows",
    "read_manifest",
    "read_split",
    "read_vocabulary",
    "sample_labels",
    "write_manifest",
    "write_split",
    "write_vocabulary",
]
