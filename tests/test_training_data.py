"""training.data: manifests, converters, the synthetic dataset, window decoding and label sampling."""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ovmlv.classifier import VideoClassifier
from ovmlv.decode import iter_windows, probe_video, sample_times
from training.data import (
    ManifestEntry,
    ManifestError,
    Split,
    WindowDataset,
    collate_windows,
    read_manifest,
    read_split,
    read_vocabulary,
    sample_labels,
    write_manifest,
)
from training.data.convert import charades_to_manifest, csv_to_manifest
from training.data.convert import main as convert_main
from training.data.dataset import choose_window, read_frames
from training.data.synthetic import COLOURS, make_synthetic_dataset

from training_fixtures import (
    EXPECTED_CHARADES_MANIFEST,
    EXPECTED_CHARADES_VOCABULARY,
    GENERIC_CSV,
    write_charades_files,
)
from video_fixtures import moving_square_frames, read_frame_index, write_clip, write_text_as_mp4


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    manifest, vocabulary, split = make_synthetic_dataset(folder)
    return read_manifest(manifest), read_vocabulary(vocabulary), read_split(split)


@pytest.fixture(scope="module")
def indexed_clip(tmp_path_factory):
    """4 s at 10 fps whose frames show their own number (see video_fixtures)."""
    path = tmp_path_factory.mktemp("clips") / "indexed.mp4"
    return write_clip(path, moving_square_frames(40, 64, 96), fps=10)


def make_dataset(entries, vocabulary, train, seed=0, window_s=2.0):
    return WindowDataset(entries, vocabulary, 4, 32, (0.5, 0.4, 0.3), (0.2, 0.3, 0.4), window_s, train, seed)


# ---- manifests, vocabularies, splits ---------------------------------------------------


def test_manifest_round_trip_resolves_relative_paths(tmp_path):
    entries = [
        ManifestEntry("videos/a.mp4", ["dog", "cat"]),
        ManifestEntry("/abs/b.mp4", [], start=1.5, end=4.0),
    ]
    path = write_manifest(entries, tmp_path / "data" / "m.jsonl")
    assert json.loads(path.read_text().splitlines()[1]) == {
        "video": "/abs/b.mp4",
        "labels": [],
        "start": 1.5,
        "end": 4.0,
    }
    read = read_manifest(path)
    assert read[0] == ManifestEntry(str(tmp_path.resolve() / "data" / "videos" / "a.mp4"), ["dog", "cat"])
    assert read[1] == entries[1]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"labels": ["a"]}', "'video'"),
        ('{"video": "a.mp4", "labels": "a"}', "'labels'"),
        ('{"video": "a.mp4", "labels": ["a"], "segment": 1}', "unknown keys"),
        ('{"video": "a.mp4", "labels": ["a"], "start": 3, "end": 2}', "'end'"),
        ('{"video": "a.mp4", "labels": [""]}', "non-empty strings"),
    ],
)
def test_manifest_errors_name_the_line(tmp_path, line, message):
    path = tmp_path / "m.jsonl"
    path.write_text('{"video": "ok.mp4", "labels": []}\n\n' + line + "\n")
    with pytest.raises(ManifestError, match=message) as info:
        read_manifest(path)
    assert "m.jsonl:3:" in str(info.value)


def test_vocabulary_is_canonical_and_rejects_duplicates(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("  Holding  some clothes \n\nopen door\n")
    assert read_vocabulary(path) == ["Holding some clothes", "open door"]
    path.write_text("open door\nsit\nOpen Door\n")
    with pytest.raises(ManifestError, match=r"v.txt:3: duplicate label 'Open Door' \(first on line 1\)"):
        read_vocabulary(path)


def test_split_check(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"base": ["a", "b"], "novel": ["c"]}))
    split = read_split(path)
    split.check(["a", "b", "c", "d"])
    with pytest.raises(ManifestError, match="not in the vocabulary"):
        split.check(["a", "b"])
    with pytest.raises(ManifestError, match="both base and novel"):
        Split(["a", "b"], ["b"]).check(["a", "b"])
    path.write_text(json.dumps({"base": ["a"]}))
    with pytest.raises(ManifestError, match="exactly the keys"):
        read_split(path)


# ---- converters ------------------------------------------------------------------------


def test_charades_converter_matches_hand_computed_output(tmp_path):
    csv_path, classes_path = write_charades_files(tmp_path)
    manifest, vocabulary = tmp_path / "out" / "test.jsonl", tmp_path / "out" / "vocabulary.txt"
    entries = charades_to_manifest(csv_path, classes_path, tmp_path / "out" / "videos", manifest, vocabulary)
    assert manifest.read_text().splitlines() == EXPECTED_CHARADES_MANIFEST
    assert vocabulary.read_text().splitlines() == EXPECTED_CHARADES_VOCABULARY
    assert [entry.labels for entry in entries] == [
        json.loads(line)["labels"] for line in EXPECTED_CHARADES_MANIFEST
    ]
    assert all(entry.start is None and entry.end is None for entry in read_manifest(manifest))


def test_convert_cli(tmp_path, capsys):
    csv_path, classes_path = write_charades_files(tmp_path)
    args = [
        "charades",
        "--csv",
        str(csv_path),
        "--classes",
        str(classes_path),
        "--video-dir",
        str(tmp_path / "videos"),
    ]
    args += ["--out-manifest", str(tmp_path / "m.jsonl"), "--out-vocabulary", str(tmp_path / "v.txt")]
    assert convert_main(args) == 0
    assert (tmp_path / "m.jsonl").read_text().splitlines() == EXPECTED_CHARADES_MANIFEST
    csv_path.write_text(csv_path.read_text().replace("c003 4.20", "c999 4.20"))
    assert convert_main(args) == 2
    assert "unknown class id 'c999'" in capsys.readouterr().err


def test_generic_csv_converter(tmp_path):
    (tmp_path / "clips.csv").write_text(GENERIC_CSV)
    entries = csv_to_manifest(
        tmp_path / "clips.csv", tmp_path / "out" / "m.jsonl", tmp_path / "out" / "v.txt"
    )
    assert [(e.video, e.labels) for e in entries] == [
        ("../a.mp4", ["dog", "cat"]),
        ("../sub/b.mp4", ["cat", "bird"]),
        ("../c.mp4", []),
    ]
    assert read_vocabulary(tmp_path / "out" / "v.txt") == ["bird", "cat", "dog"]
    assert read_manifest(tmp_path / "out" / "m.jsonl")[1].video == str(tmp_path.resolve() / "sub" / "b.mp4")


# ---- synthetic dataset -----------------------------------------------------------------


def test_synthetic_dataset_is_deterministic_and_labels_what_it_shows(tmp_path, synthetic):
    entries, vocabulary, split = synthetic
    assert len(entries) == 12 and len(vocabulary) == 6 and len(split.novel) >= 2
    split.check(vocabulary)
    assert all(1 <= len(entry.labels) <= 2 for entry in entries)
    assert all(any(label in e.labels for e in entries) for label in vocabulary)  # every label has a positive
    for entry in entries:
        frame = next(iter_windows(entry.video, frames_per_window=1, short_side=None)).frames[0].astype(int)
        for colour, rgb in COLOURS.items():
            shown = (np.abs(frame - np.array(rgb)).sum(axis=-1) < 60).sum() > 20
            assert shown == any(label.startswith(colour) for label in entry.labels), (entry, colour)
    again = read_manifest(make_synthetic_dataset(tmp_path / "again")[0])
    assert [e.labels for e in again] == [e.labels for e in entries]
    first = next(iter_windows(again[3].video, short_side=None)).frames
    assert np.array_equal(first, next(iter_windows(entries[3].video, short_side=None)).frames)
    other = read_manifest(make_synthetic_dataset(tmp_path / "other", num_videos=4, seed=1)[0])
    assert not np.array_equal(first, next(iter_windows(other[3].video, short_side=None)).frames)


# ---- decoding windows ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_read_frames_returns_the_frames_at_the_sampled_times(indexed_clip, backend):
    info = dataclasses.replace(probe_video(indexed_clip), backend=backend)
    times = sample_times(1.0, 3.0, 4)  # 1.25, 1.75, 2.25, 2.75 s -> frames 12, 17, 22, 27 at 10 fps
    frames = read_frames(info, times, short_side=None)
    assert frames.shape == (4, 64, 96, 3)
    assert [read_frame_index(frame) for frame in frames] == [12, 17, 22, 27]


def test_choose_window():
    assert choose_window(10.0, 2.0) == (4.0, 6.0)  # centred
    assert choose_window(10.0, 2.0, start_s=1.0, end_s=4.0) == (1.5, 3.5)  # centred in the segment
    assert choose_window(10.0, 2.0, start_s=1.0, end_s=2.0) == (1.0, 2.0)  # segment shorter than a window
    assert choose_window(1.5, 2.0) == (0.0, 1.5)  # video shorter than a window
    assert choose_window(5.0, 2.0, start_s=7.0, end_s=9.0) == (3.0, 5.0)  # annotated past the end
    generator = torch.Generator().manual_seed(0)
    starts = [choose_window(10.0, 2.0, 2.0, 8.0, generator)[0] for _ in range(200)]
    assert min(starts) >= 2.0 and max(starts) <= 6.0 and np.std(starts) > 0.8


def test_eval_windows_equal_the_classifier_preprocessing(tmp_path, tiny_models):
    model = tiny_models["tiny-clip"]
    path = write_clip(tmp_path / "two_seconds.mp4", moving_square_frames(20, 48, 64), fps=10)
    dataset = WindowDataset(
        [ManifestEntry(str(path), ["a"])],
        ["a", "b"],
        model.num_frames,
        model.image_size,
        model.mean,
        model.std,
        train=False,
    )
    item = dataset[0]
    window = next(iter_windows(path, frames_per_window=model.num_frames, short_side=model.image_size))
    expected = VideoClassifier(model).preprocess(window.frames[None])[0]
    assert item["pixels"].shape == expected.shape == (model.num_frames, 3, model.image_size, model.image_size)
    assert torch.allclose(item["pixels"], expected, atol=1e-6)
    assert item["targets"].tolist() == [1.0, 0.0] and item["index"] == 0


def test_train_windows_are_random_but_reproducible(synthetic):
    """The window and crop of an item follow from the dataset seed and torch's RNG state."""
    entries, vocabulary, _ = synthetic

    def draw(dataset, torch_seed, indices=(0, 1, 2)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            return [dataset[i]["pixels"] for i in indices]

    dataset = make_dataset(entries, vocabulary, train=True)
    pixels = draw(dataset, 0)
    assert all(
        torch.equal(a, b) for a, b in zip(pixels, draw(make_dataset(entries, vocabulary, train=True), 0))
    )
    assert not any(torch.equal(a, b) for a, b in zip(pixels, draw(dataset, 1)))
    other_seed = make_dataset(entries, vocabulary, train=True, seed=1)
    assert not any(torch.equal(a, b) for a, b in zip(pixels, draw(other_seed, 0)))
    assert not torch.equal(draw(dataset, 0, (0, 0))[1], pixels[0])  # the next draw of the same item differs
    centre = make_dataset(entries, vocabulary, train=False)
    assert torch.equal(draw(centre, 0)[0], draw(centre, 1)[0])
    assert pixels[0].shape == centre[0]["pixels"].shape == (4, 3, 32, 32)


def test_frame_cache_gives_the_same_items_and_decodes_each_window_once(monkeypatch, synthetic):
    """Cached windows equal fresh ones (same window, crop and pixels); the cache stays in its size."""
    import training.data.dataset as dataset_module

    entries, vocabulary, _ = synthetic
    reads = []
    real_read = dataset_module.read_frames
    monkeypatch.setattr(dataset_module, "read_frames", lambda *a: reads.append(a) or real_read(*a))
    plain = make_dataset(entries, vocabulary, train=False)
    cached = WindowDataset(entries, vocabulary, 4, 32, (0.5, 0.4, 0.3), (0.2, 0.3, 0.4), 2.0, False, 0, 1.0)
    for _ in range(2):  # the second pass reads nothing and still gives the same pixels
        for i in range(4):
            assert torch.equal(cached[i]["pixels"], plain[i]["pixels"])
    assert len(reads) == 4 + 8  # the plain dataset decodes every time, the cached one once per item
    window_bytes = next(iter(cached.cache.windows.values())).nbytes
    small = WindowDataset(
        entries, vocabulary, 4, 32, (0.5,) * 3, (0.2,) * 3, 2.0, False, 0, 2.5 * window_bytes / 2**20
    )
    for i in range(4):
        small[i]
    assert [key[0] for key in small.cache.windows] == [2, 3] and small.cache.bytes == 2 * window_bytes
    with torch.random.fork_rng(devices=[]):  # training: a random window and crop per draw, cached or not
        torch.manual_seed(5)
        fresh = [make_dataset(entries, vocabulary, train=True)[i]["pixels"] for i in (0, 0, 1)]
        torch.manual_seed(5)
        train_cached = WindowDataset(
            entries, vocabulary, 4, 32, (0.5, 0.4, 0.3), (0.2, 0.3, 0.4), frame_cache_mb=1.0
        )
        again = [train_cached[i]["pixels"] for i in (0, 0, 1)]
    assert all(torch.equal(a, b) for a, b in zip(fresh, again))


def test_time_reversal_plays_windows_backwards_and_swaps_the_paired_labels(synthetic):
    """p=1: the same window and crop as without it, frames in the opposite order, and the targets
    of each pair swapped (the others kept); p=0.5: about half the draws, the rest untouched."""
    from training.inputs import train_loader

    entries, vocabulary, _ = synthetic
    pairs = [["red square", "blue circle"], ["green square", "red circle"]]
    swapped = {"red square": "blue circle", "blue circle": "red square"}
    swapped |= {"green square": "red circle", "red circle": "green square"}

    def dataset(p):
        return WindowDataset(
            entries, vocabulary, 4, 32, (0.5,) * 3, (0.2,) * 3, reversal_p=p, reversal_pairs=pairs
        )

    def draw(data, indices, seed=3):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return [data[i] for i in indices]

    indices = list(range(len(entries)))
    plain, backwards = draw(dataset(0.0), indices), draw(dataset(1.0), indices)
    checked_swap = False
    for entry, a, b in zip(entries, plain, backwards):
        assert torch.equal(b["pixels"], a["pixels"].flip(0)) and not torch.equal(b["pixels"], a["pixels"])
        expected = sorted(swapped.get(label, label) for label in entry.labels)
        assert sorted(vocabulary[i] for i in b["targets"].nonzero().flatten()) == expected
        checked_swap |= any(label in swapped for label in entry.labels)
    assert checked_swap
    half = [item for seed in range(4) for item in draw(dataset(0.5), indices, seed)]
    same = [item for seed in range(4) for item in draw(dataset(0.0), indices, seed)]
    flipped = [torch.equal(h["pixels"], a["pixels"].flip(0)) for h, a in zip(half, same)]
    kept = [torch.equal(h["pixels"], a["pixels"]) for h, a in zip(half, same)]
    assert all(f != k for f, k in zip(flipped, kept)) and 0.3 < np.mean(flipped) < 0.7
    evaluation = WindowDataset(
        entries, vocabulary, 4, 32, (0.5,) * 3, (0.2,) * 3, train=False, reversal_p=1.0
    )
    centre = WindowDataset(entries, vocabulary, 4, 32, (0.5,) * 3, (0.2,) * 3, train=False)
    assert torch.equal(evaluation[0]["pixels"], centre[0]["pixels"])  # evaluation windows: never
    with pytest.raises(ValueError, match="time-reversal label 'zebra' is not in the vocabulary"):
        WindowDataset(
            entries, vocabulary, 4, 32, (0.5,) * 3, (0.2,) * 3, reversal_pairs=[["zebra", "red square"]]
        )
    with pytest.raises(ValueError, match="disjoint pairs"):
        WindowDataset(
            entries, vocabulary, 4, 32, (0.5,) * 3, (0.2,) * 3, reversal_pairs=[pairs[0], pairs[0][::-1]]
        )
    with pytest.raises(ValueError, match="disjoint pairs"):  # a label paired with itself
        WindowDataset(entries, vocabulary, 4, 32, (0.5,) * 3, (0.2,) * 3, reversal_pairs=[["red square"] * 2])
    # the training config reaches the training loader's dataset
    from training.config import load_config

    reversal = ["data.time_reversal_p=0.25", f"data.time_reversal_pairs={json.dumps(pairs)}"]
    files = ["data.train_manifest=m.jsonl", "data.vocabulary=v.txt", "data.num_workers=0"]  # never iterated
    cfg = load_config([], [*files, *reversal])
    loader = train_loader(entries, vocabulary, cfg, 4, 32, (0.5,) * 3, (0.2,) * 3)
    assert loader.dataset.dataset.reversal_p == 0.25
    assert torch.equal(loader.dataset.dataset.reversed_order, dataset(0.0).reversed_order)
    assert vocabulary[int(dataset(0.0).reversed_order[vocabulary.index("red square")])] == "blue circle"


def test_labels_outside_the_vocabulary_are_an_error():
    with pytest.raises(ValueError, match="not in the vocabulary: 'zebra'"):
        make_dataset([ManifestEntry("a.mp4", ["zebra", "dog"])], ["dog"], train=False)


def test_unreadable_videos_are_dropped_and_counted(tmp_path, synthetic, caplog):
    entries, vocabulary, _ = synthetic
    broken = ManifestEntry(str(write_text_as_mp4(tmp_path / "broken.mp4")), [])
    dataset = make_dataset([entries[0], broken], vocabulary, train=False)
    with caplog.at_level(logging.WARNING, logger="training.data.dataset"):
        assert dataset[1] is None
    assert "broken.mp4" in caplog.text and "not a video" in caplog.text
    batch = collate_windows([dataset[0], dataset[1], dataset[0]])
    assert batch["pixels"].shape == (2, 4, 3, 32, 32) and batch["targets"].shape == (2, 6)
    assert batch["index"].tolist() == [0, 0] and batch["skipped"] == 1
    empty = collate_windows([None, None])
    assert empty["skipped"] == 2 and len(empty["index"]) == 0


def test_dataloader_workers_decode_every_window(tmp_path, synthetic):
    entries, vocabulary, _ = synthetic
    broken = ManifestEntry(str(write_text_as_mp4(tmp_path / "broken.mp4")), [])
    dataset = make_dataset(entries + [broken], vocabulary, train=True)
    epochs = []
    torch.manual_seed(0)
    for _ in range(2):
        loader = DataLoader(dataset, batch_size=5, num_workers=2, collate_fn=collate_windows)
        batches = list(loader)
        assert sum(batch["skipped"] for batch in batches) == 1
        indices = torch.cat([batch["index"] for batch in batches])
        assert sorted(indices.tolist()) == list(range(12))
        epochs.append(torch.cat([batch["pixels"] for batch in batches]))
    assert not torch.equal(epochs[0], epochs[1])  # new random windows and crops every epoch


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_no_file_stays_open_between_items(synthetic):
    entries, vocabulary, _ = synthetic
    dataset = make_dataset(entries, vocabulary, train=True)
    dataset[0]  # first use: library imports, thread pools
    open_files = len(os.listdir("/proc/self/fd"))
    for i in range(1, 6):
        dataset[i]
    assert len(os.listdir("/proc/self/fd")) == open_files


# ---- label sampling --------------------------------------------------------------------


def test_sampled_labels_never_include_novel_labels():
    generator = torch.Generator().manual_seed(0)
    num_labels, novel = 20, torch.tensor([1, 4, 7, 15, 19])
    base = torch.tensor([i for i in range(num_labels) if i not in novel.tolist()])
    sampled_negatives = set()
    for _ in range(300):
        targets = (torch.rand(6, num_labels, generator=generator) < 0.1).float()
        targets[0, novel] = 1.0  # every batch has novel positives
        ids, label_targets = sample_labels(targets, base, num_negatives=4, generator=generator)
        assert not set(ids.tolist()) & set(novel.tolist())
        assert torch.equal(label_targets, targets[:, ids])
        present = {i for i in base.tolist() if targets[:, i].any()}
        assert present <= set(ids.tolist())  # every base positive is scored
        negatives = set(ids.tolist()) - present
        assert len(negatives) == min(4, len(base) - len(present))
        assert all(not targets[:, i].any() for i in negatives)
        assert torch.equal(ids, torch.sort(ids).values)
        sampled_negatives |= negatives
    assert sampled_negatives == set(base.tolist())  # every base label gets drawn as a negative


def test_sample_labels_takes_all_negatives_when_asked():
    targets = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    ids, label_targets = sample_labels(targets, torch.tensor([0, 1, 2]), num_negatives=-1)
    assert ids.tolist() == [0, 1, 2] and label_targets.tolist() == [[1.0, 0.0, 0.0]]


@pytest.mark.parametrize(
    ("asked", "cpus", "workers"), [(4, {0, 1}, 2), (4, set(range(8)), 4), (0, {0}, 0), (1, {0}, 1)]
)
def test_training_loader_starts_at_most_one_worker_per_usable_cpu(
    monkeypatch, caplog, synthetic, asked, cpus, workers
):
    """base.yaml asks for 4 workers; on a 2-core machine torch's DataLoader warned that 4 are too
    many, and they only take turns on the two cores: the loader starts 2 (and says so)."""
    from training.config import load_config
    from training.inputs import train_loader

    entries, vocabulary, _ = synthetic
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cpus, raising=False)
    cfg = load_config(
        [], ["data.train_manifest=m.jsonl", "data.vocabulary=v.txt", f"data.num_workers={asked}"]
    )
    with caplog.at_level(logging.INFO, logger="training.inputs"):
        loader = train_loader(entries, vocabulary, cfg, 4, 32, (0.5,) * 3, (0.2,) * 3)
    assert loader.num_workers == workers
    assert ("one per usable CPU" in caplog.text) == (workers < asked)
