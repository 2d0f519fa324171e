"""`python -m training.toyworld --quick`: every stage of the toy-world experiment, at tiny sizes.

The reduced version of the regeneration that CI runs (the full one takes about 45 minutes):
pretraining, rendering, three fine-tuned variants, the five-system evaluation and packaging.
The numbers are meaningless at this size; what is checked is that the stages connect
through the real code paths and that what gets packaged is what was evaluated.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ovmlv.toyworld import BASE_NOUNS, MOTIONS, NOVEL_NOUNS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    from training.toyworld.__main__ import main

    out = tmp_path_factory.mktemp("toyworld")
    assert main(["--out", str(out), "--quick", "--jobs", "2"]) == 0  # the variants in two worker processes
    return out


@pytest.mark.slow
def test_report_has_every_system_and_group(quick_run):
    from training.toyworld.pipeline import SYSTEMS, VARIANTS
    from training.toyworld.report import COLUMNS

    report = json.loads((quick_run / "report.json").read_text())
    assert list(report["table"]) == list(SYSTEMS)
    assert set(report["systems"]) == set(SYSTEMS)
    for row in report["table"].values():
        assert set(row) >= set(COLUMNS)
        assert all(value is None or 0.0 <= value <= 1.0 for value in row.values())
    assert report["num_test_clips"] == 32 and report["command"].startswith("python -m training.toyworld")
    assert report["jobs"] == 2 and {f"finetune_{variant}_s" for variant in VARIANTS} < set(report["timings"])
    readme = (quick_run / "toy" / "README.md").read_text()
    assert "| full method |" in readme and report["command"] in readme


@pytest.mark.slow
def test_novel_nouns_are_never_training_labels(quick_run):
    from training.data.manifest import read_manifest

    entries = read_manifest(quick_run / "data" / "train" / "manifest.jsonl")
    seen = {label for entry in entries for label in entry.labels}
    assert seen <= set(BASE_NOUNS) | set(MOTIONS) and not seen & set(NOVEL_NOUNS)
    everything = [json.loads(line) for line in (quick_run / "data" / "train" / "all.jsonl").open()]
    assert any(set(e["labels"]) & set(NOVEL_NOUNS) for e in everything)  # novel things are in the clips
    split = json.loads((quick_run / "data" / "split.json").read_text())
    assert set(split["novel"]) == set(NOVEL_NOUNS)


@pytest.mark.slow
def test_packaged_model_is_the_evaluated_one_and_loads_alone(quick_run, tmp_path):
    import shutil

    import open_clip

    from ovmlv.classifier import VideoClassifier
    from ovmlv.factory import create_model
    from ovmlv.label_db import LabelDB
    from training.data.manifest import read_manifest, read_split, read_vocabulary
    from training.evaluate import evaluate
    from training.toyworld.pipeline import toy_model_config

    packaged = shutil.copytree(quick_run / "toy", tmp_path / "toy")  # nothing outside it is needed
    assert {p.name for p in packaged.iterdir()} >= {"config.json", "model.safetensors", "open_clip", "llm"}
    model = create_model(packaged, device="cpu", dtype=torch.float32)
    blocks = toy_model_config()["temporal"]["blocks"]
    assert model.config.adapter_trained and sorted(int(b) for b in model.temporal.branches) == blocks
    direct = open_clip.create_model(f"local-dir:{packaged / 'open_clip'}")
    for name, tensor in direct.state_dict().items():
        assert torch.equal(tensor, model.clip.state_dict()[name])
    data = quick_run / "data"
    report = evaluate(
        VideoClassifier(model, LabelDB(None), name="again"),
        read_manifest(data / "test" / "manifest.jsonl"),
        read_vocabulary(data / "vocabulary.txt"),
        read_split(data / "split.json"),
        baseline="none",
    )
    recorded = json.loads((quick_run / "report.json").read_text())["systems"]["full method"]
    for label, ap in report["systems"]["none"]["per_class_ap"].items():
        expected = recorded["per_class_ap"][label]
        assert (ap is None and expected is None) or ap == pytest.approx(expected, abs=1e-6), label


@pytest.mark.slow
def test_ablations_differ_where_they_should(quick_run):
    from ovmlv.factory import create_model
    from training.toyworld.pipeline import toy_model_config

    runs = quick_run / "runs"
    no_temporal = create_model(runs / "no_temporal" / "final", device="cpu")
    no_llm = create_model(runs / "no_llm" / "final", device="cpu")
    full = create_model(runs / "full" / "final", device="cpu")
    blocks = toy_model_config()["temporal"]["blocks"]
    assert (
        len(no_temporal.temporal.branches) == 0 and sorted(int(b) for b in full.temporal.branches) == blocks
    )
    assert no_llm.config.labels.soft_source == "context" and full.config.labels.soft_source == "llm"
    assert not any(name.startswith("label_encoder.queries") for name in no_llm.trained_state_dict())


@pytest.mark.slow
def test_default_threshold_is_chosen_on_the_scores_the_app_computes(quick_run, monkeypatch):
    """The packaged threshold is the best micro-F1 on the validation clips as the app scores them:
    the model loaded by `VideoClassifier.from_pretrained` (bfloat16 weights), not float32 ones,
    whose scores can put a flat F1 curve's argmax elsewhere (0.38 against 0.32 for session 29's)."""
    import training.evaluate
    from ovmlv.classifier import VideoClassifier
    from training.data.manifest import read_manifest
    from training.metrics import best_f1_threshold
    from training.toyworld.pipeline import choose_threshold

    dtypes = []
    evaluate = training.evaluate.evaluate

    def spy(classifier, *args, **kwargs):
        dtypes.append(classifier.model.dtype)
        return evaluate(classifier, *args, **kwargs)

    monkeypatch.setattr(training.evaluate, "evaluate", spy)
    chosen = choose_threshold(quick_run, quick_run / "runs" / "full" / "final")
    app = VideoClassifier.from_pretrained(quick_run / "toy", device="cpu", label_db_path=None)
    assert dtypes == [app.model.dtype] == [torch.bfloat16]
    labels = list(BASE_NOUNS) + list(MOTIONS)
    entries = read_manifest(quick_run / "data" / "val" / "manifest.jsonl")
    scores = torch.from_numpy(np.stack([app.classify(entry.video, labels).video_scores for entry in entries]))
    targets = torch.tensor([[label in entry.labels for label in labels] for entry in entries]).float()
    assert chosen["val_clips"] == len(entries) == 16
    assert (chosen["value"], chosen["best_f1"]) == pytest.approx(best_f1_threshold(scores, targets), abs=1e-6)
    packaged = json.loads((quick_run / "toy" / "config.json").read_text())["model"]["threshold"]
    assert packaged == json.loads((quick_run / "report.json").read_text())["threshold"]["value"]


def test_clip_and_llm_settings_from_the_command_line(tmp_path, capsys):
    from training.toyworld.__main__ import build_parser, main, make_plan

    args = build_parser().parse_args(
        ["--out", str(tmp_path), "--clip", "vision_width=128", "--clip", "compile=false", "--clip", "lr=2e-3"]
        + ["--llm", "precision=fp32", "--clip-steps", "50", "seed=1"]
    )
    plan = make_plan(args)
    assert (plan.clip.vision_width, plan.clip.compile, plan.clip.lr, plan.clip.steps) == (
        128,
        False,
        2e-3,
        50,
    )
    defaults = type(plan.clip)()
    assert (defaults.vision_width, defaults.compile, defaults.lr) != (
        128,
        False,
        2e-3,
    )  # the flags changed them
    assert plan.clip.embed_dim == type(plan.clip)().embed_dim  # the rest stays at the defaults
    assert plan.llm.precision == "fp32" and plan.finetune_overrides == ["seed=1"]
    for bad, message in [
        (["--clip", "vision_widht=192"], "expected key=value with a key of ToyClipConfig"),
        (["--clip", "compile=maybe"], "compile takes bool values like True"),
        (["--llm", "steps=many"], "steps takes int values like 1800"),
        (["--llm", "precision=fp16"], "precision must be one of"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["--out", str(tmp_path / "never"), *bad])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "never").exists()  # refused before anything ran


def _spawned_workers(pid: int) -> list[int]:
    """Child processes of `pid` started by multiprocessing's spawn (not its resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    workers = []
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace")
        except FileNotFoundError:
            continue
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            workers.append(int(child))
    return workers


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, which has ended and waits to be reaped, is not alive)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads worker processes from Linux's /proc")
def test_sigterm_ends_the_variants_worker_processes_too(quick_run, tmp_path):
    """`kill` (or `timeout`) of the command also ends its two fine-tuning workers, which would
    otherwise fine-tune on for minutes, writing into OUT, after the command has gone; the workers
    can still start DataLoader workers."""
    command = [sys.executable, "-m", "training.toyworld", "--out", str(tmp_path / "run")]
    command += ["--quick", "--jobs", "2"]
    command += ["--reuse-base", str(quick_run / "base"), "--finetune-steps", "400"]  # minutes of fine-tuning
    command += ["data.num_workers=1"]  # the workers may start processes of their own (daemons may not)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    with open(tmp_path / "log.txt", "w") as log:  # a file, not a pipe that the INFO lines could fill
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while len(workers := _spawned_workers(proc.pid)) < 2:
                assert proc.poll() is None and time.monotonic() < deadline, "no workers started"
                time.sleep(0.5)
            metrics = tmp_path / "run" / "runs" / "full" / "metrics.jsonl"
            while not (metrics.exists() and metrics.stat().st_size):  # the full variant has taken steps
                assert proc.poll() is None and time.monotonic() < deadline, "no fine-tuning step"
                time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        finally:
            proc.kill()
    err = (tmp_path / "log.txt").read_text()
    assert proc.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM" in err
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in workers if _alive(pid)], "a worker fine-tunes on after the command was stopped"
