"""training.evaluate on the synthetic dataset with the tiny-clip preset.

The reference is the classifier itself: every number in the report must equal the metric
recomputed here from ``VideoClassifier.score`` (max over windows), video by video.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ovmlv.classifier import VideoClassifier
from training.data import ManifestEntry, read_manifest, read_split, read_vocabulary
from training.data.synthetic import make_synthetic_dataset
from training.evaluate import evaluate, main, segment_windows
from training.metrics import average_precision, best_f1_threshold, expected_calibration_error, harmonic_mean

from training_fixtures import reference_average_precision
from video_fixtures import write_text_as_mp4

ALL_SYSTEMS = ["none", "zero-shot", "attributes"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    manifest, vocabulary, split = make_synthetic_dataset(folder)
    entries = read_manifest(manifest)
    # A segment of the first video (its second window only) and a file that is not a video.
    entries.append(ManifestEntry(entries[0].video, ["red circle"], start=2.2, end=3.0))
    entries.append(ManifestEntry(str(write_text_as_mp4(folder / "broken.mp4")), ["blue square"]))
    return entries, read_vocabulary(vocabulary), read_split(split), (manifest, vocabulary, split)


@pytest.fixture(scope="module")
def classifier(tiny_models):
    return VideoClassifier(tiny_models["tiny-clip"])


@pytest.fixture(scope="module")
def report(classifier, dataset):
    entries, vocabulary, split, _ = dataset
    return evaluate(classifier, entries, vocabulary, split, baseline=ALL_SYSTEMS)


def trained_like(fresh_tiny) -> VideoClassifier:
    """A tiny model whose gates moved away from zero, as after fine-tuning."""
    model = fresh_tiny("tiny-clip")
    with torch.no_grad():
        model.label_encoder.gate.fill_(0.8)
        for branch in model.temporal.branches.values():
            branch.gate.fill_(0.8)
    model.config.adapter_trained = True
    return VideoClassifier(model)


def test_report_equals_metrics_of_the_classifiers_own_scores(classifier, dataset, report):
    entries, vocabulary, split, _ = dataset
    scores, targets = [], []
    for entry in entries[:-1]:
        result = classifier.score(classifier.encode_video(entry.video), vocabulary)
        rows = slice(1, 2) if entry.start is not None else slice(None)  # the segment covers window 2
        scores.append(result.timeline[rows].max(axis=0))
        targets.append([float(label in entry.labels) for label in vocabulary])
    scores, targets = torch.tensor(np.stack(scores)), torch.tensor(targets)
    none = report["systems"]["none"]
    assert report["num_videos"] == 13 and report["skipped"] == 1
    ap = average_precision(scores, targets)
    assert list(none["per_class_ap"]) == vocabulary
    for c, label in enumerate(vocabulary):
        assert none["per_class_ap"][label] == pytest.approx(ap[c].item())
        if len(set(scores[:, c].tolist())) == len(scores):  # the definition's form holds without ties
            assert none["per_class_ap"][label] == pytest.approx(
                reference_average_precision(scores[:, c], targets[:, c])
            )
    base = [ap[vocabulary.index(label)].item() for label in split.base]
    novel = [ap[vocabulary.index(label)].item() for label in split.novel]
    assert none["map"] == pytest.approx(ap.mean().item())
    assert none["base_map"] == pytest.approx(np.mean(base))
    assert none["novel_map"] == pytest.approx(np.mean(novel))
    assert none["harmonic_mean"] == pytest.approx(harmonic_mean(np.mean(base), np.mean(novel)))
    assert none["ece"] == pytest.approx(expected_calibration_error(scores, targets))
    assert (none["f1_threshold"], none["best_f1"]) == pytest.approx(best_f1_threshold(scores, targets))
    assert set(none) == {
        "map", "base_map", "novel_map", "harmonic_mean", "ece", "f1_threshold", "best_f1", "per_class_ap"
    }  # fmt: skip


def test_each_video_is_encoded_once_for_all_systems(classifier, dataset, monkeypatch):
    entries, vocabulary, _, _ = dataset
    calls = []
    encode = classifier.encode_video
    monkeypatch.setattr(
        classifier, "encode_video", lambda path, **kw: calls.append(path) or encode(path, **kw)
    )
    evaluate(classifier, entries, vocabulary, baseline=ALL_SYSTEMS)
    assert sorted(calls) == sorted({entry.video for entry in entries})  # 12 clips + the broken file


def test_untrained_baselines(fresh_tiny, dataset, report):
    """Untrained, the model is the zero-shot-attribute system; plain zero-shot is the model without phrases."""
    entries, vocabulary, split, _ = dataset
    systems = report["systems"]
    assert systems["none"] == systems["attributes"]
    assert systems["zero-shot"]["per_class_ap"] != systems["attributes"]["per_class_ap"]
    no_phrases = VideoClassifier(fresh_tiny("tiny-clip", overrides={"labels": {"num_attributes": 0}}))
    reference = evaluate(no_phrases, entries, vocabulary, split)["systems"]["none"]
    for key in ("map", "ece"):
        assert systems["zero-shot"][key] == pytest.approx(reference[key])
    assert systems["zero-shot"]["per_class_ap"] == pytest.approx(reference["per_class_ap"])


def test_trained_model_baselines(fresh_tiny, dataset, report):
    """After training, "none" moves; the baselines (alpha = 0) stay those of the base model."""
    entries, vocabulary, split, _ = dataset
    trained = trained_like(fresh_tiny)
    systems = evaluate(trained, entries, vocabulary, split, baseline=ALL_SYSTEMS)["systems"]
    assert systems["none"]["per_class_ap"] != report["systems"]["none"]["per_class_ap"]
    assert systems["none"]["ece"] != pytest.approx(systems["zero-shot"]["ece"])
    for name in ("zero-shot", "attributes"):
        assert systems[name]["per_class_ap"] == pytest.approx(report["systems"][name]["per_class_ap"])
        assert systems[name]["ece"] == pytest.approx(report["systems"][name]["ece"])
    at_zero = evaluate(trained, entries[:6], vocabulary, split, ["none", "zero-shot"], alpha=0.0)["systems"]
    assert at_zero["none"]["per_class_ap"] == pytest.approx(at_zero["zero-shot"]["per_class_ap"])
    assert at_zero["none"]["ece"] == pytest.approx(at_zero["zero-shot"]["ece"])


def test_segment_windows():
    times = np.array([[0.0, 2.0], [2.0, 4.0], [4.0, 5.0]])
    assert segment_windows(times, ManifestEntry("v", [])).tolist() == [True, True, True]
    assert segment_windows(times, ManifestEntry("v", [], 2.5, 4.5)).tolist() == [False, True, True]
    assert segment_windows(times, ManifestEntry("v", [], 0.0, 2.0)).tolist() == [True, False, False]
    assert segment_windows(times, ManifestEntry("v", [], 9.0, 10.0)).tolist() == [True, True, True]


def test_cli_writes_the_report_and_prints_a_table(tmp_path, classifier, dataset, capsys):
    entries, _, _, (manifest, vocabulary, split) = dataset
    output = tmp_path / "report.json"
    args = ["--checkpoint", "tiny-clip", "--manifest", str(manifest), "--vocabulary", str(vocabulary)]
    args += ["--split-file", str(split), "--split", "novel", "--dtype", "float32", "--label-db", "none"]
    assert main(args + ["--output", str(output), "--baseline", "none", "--baseline", "zero-shot"]) == 0
    written = json.loads(output.read_text())
    assert list(written["systems"]) == ["none", "zero-shot"]
    assert written["num_videos"] == 12 and written["skipped"] == 0
    novel = ["blue circle", "green square"]
    library = evaluate(classifier, entries[:12], novel, read_split(split), ["none", "zero-shot"])
    for name in ("none", "zero-shot"):
        ours, theirs = written["systems"][name], library["systems"][name]
        assert list(ours["per_class_ap"]) == novel
        assert ours["per_class_ap"] == pytest.approx(theirs["per_class_ap"])
        assert [ours["map"], ours["novel_map"], ours["ece"]] == pytest.approx(
            [theirs["map"], theirs["novel_map"], theirs["ece"]]
        )
        assert ours["base_map"] is None and ours["harmonic_mean"] is None  # no base label evaluated
    out = capsys.readouterr().out
    assert "mAP" in out and "zero-shot" in out and "green square" in out and "red circle" not in out


def test_cli_bad_input_is_one_line(tmp_path, dataset, capsys):
    _, _, _, (manifest, vocabulary, _) = dataset
    args = [
        "--checkpoint",
        "tiny-clip",
        "--manifest",
        str(tmp_path / "missing.jsonl"),
        "--vocabulary",
        str(vocabulary),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "missing.jsonl" in err and "\n" not in err


def test_cli_writes_the_best_f1_threshold_into_the_checkpoint(tmp_path, fresh_tiny, dataset, capsys):
    from ovmlv.checkpoint import WEIGHTS_FILE, save_checkpoint

    entries, _, split, (manifest, vocabulary, split_file) = dataset
    checkpoint = save_checkpoint(trained_like(fresh_tiny).model, tmp_path / "ckpt")
    weights = (checkpoint / WEIGHTS_FILE).read_bytes()
    args = ["--checkpoint", str(checkpoint), "--manifest", str(manifest), "--vocabulary", str(vocabulary)]
    args += ["--split-file", str(split_file), "--split", "base", "--dtype", "float32", "--label-db", "none"]
    assert main(args + ["--write-threshold"]) == 0
    reloaded = VideoClassifier.from_pretrained(
        checkpoint, device="cpu", dtype=torch.float32, label_db_path=None
    )
    library = evaluate(reloaded, entries[:12], split.base, split, "none")["systems"]["none"]
    assert reloaded.threshold == library["f1_threshold"] != 0.5
    assert (checkpoint / WEIGHTS_FILE).read_bytes() == weights  # only config.json changed
    assert f"wrote threshold {library['f1_threshold']:.2f}" in capsys.readouterr().out
    # A preset is not a directory it could write to: one line, exit 2, nothing written.
    preset = ["--checkpoint", "tiny-clip", "--manifest", str(manifest), "--vocabulary", str(vocabulary)]
    assert main(preset + ["--write-threshold"]) == 2
    assert "needs a local checkpoint directory" in capsys.readouterr().err
