"""The ``ovmlv`` command line: predict formats, one-line errors, batch manifests, resume, shards."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ovmlv
from ovmlv.classifier import VideoClassifier
from ovmlv.cli import main
from ovmlv.presets import list_presets

from video_fixtures import moving_square_frames, write_clip, write_empty, write_text_as_mp4

REPO = Path(__file__).resolve().parents[1]
LABELS = "green square, red corner, dog"
JSON_KEYS = {"video", "model", "alpha", "threshold", "scores", "labels", "attributes", "times", "timeline", "segments"}  # fmt: skip
GOOD = ["a.mp4", "b.mp4", "c.mp4"]  # 3 s each: windows [0, 2] and [2, 3] at the default 2 s
BAD = ["text.mp4", "empty.mp4"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """A folder with three good 3 s clips (64x48, 10 fps) and two bad files."""
    folder = tmp_path_factory.mktemp("clips")
    for offset, name in enumerate(GOOD):
        write_clip(folder / name, moving_square_frames(30, 48, 64, start=40 * offset), fps=10)
    write_text_as_mp4(folder / "text.mp4")
    write_empty(folder / "empty.mp4")
    return folder


@pytest.fixture(scope="module")
def reference() -> VideoClassifier:
    """The classifier the CLI builds for --model tiny-clip --device cpu (memory-only label cache)."""
    return VideoClassifier.from_pretrained("tiny-clip", device="cpu", label_db_path=None)


@pytest.fixture(autouse=True)
def label_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("OVMLV_CACHE", str(tmp_path / "cache"))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def restore_logging():
    """main() configures logging for a process; undo it so that other test modules are unaffected."""
    root, package = logging.getLogger(), logging.getLogger("ovmlv")
    saved = root.level, package.level, list(root.handlers)
    yield
    root.setLevel(saved[0])
    package.setLevel(saved[1])
    root.handlers[:] = saved[2]
    logging.captureWarnings(False)


@pytest.fixture
def loads(monkeypatch, reference) -> list:
    """Replace model loading by the module's cached classifier; records each load's arguments."""
    calls = []

    def cached(cls, name_or_path, **kwargs):
        calls.append((name_or_path, kwargs))
        return reference

    monkeypatch.setattr(VideoClassifier, "from_pretrained", classmethod(cached))
    return calls


@pytest.fixture
def encoded(monkeypatch) -> list[str]:
    """Names of the videos VideoClassifier.encode_video is called on, in call order."""
    calls: list[str] = []
    original = VideoClassifier.encode_video

    def counting(self, path, *args, **kwargs):
        calls.append(Path(path).name)
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(VideoClassifier, "encode_video", counting)
    return calls


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(code: int, err: str, expected: str) -> None:
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ovmlv: error: "), err
    assert expected in lines[0]


def predict(*args: str) -> list[str]:
    return ["predict", *args, "--model", "tiny-clip", "--device", "cpu"]


# ---- predict: formats ---------------------------------------------------------------------------
def test_json_matches_the_library_through_the_real_loading_path(capsys, clips, reference, label_cache):
    code, out, err = run(capsys, *predict(clips / "a.mp4", "--labels", LABELS))
    assert code == 0, err
    document = json.loads(out)
    assert set(document) == JSON_KEYS
    assert document["times"] == [[0.0, 2.0], [2.0, 3.0]]  # 3 s clip, 2 s windows, 1 s tail kept
    assert len(document["timeline"]) == 2
    scores = [entry["score"] for entry in document["scores"]]
    assert scores == sorted(scores, reverse=True)
    expected = reference.classify(clips / "a.mp4", LABELS)
    assert document["labels"] == expected.labels == ["green square", "red corner", "dog"]
    assert np.allclose(document["timeline"], expected.timeline, atol=1e-4)
    by_label = {entry["label"]: entry["score"] for entry in document["scores"]}
    assert by_label == pytest.approx(dict(zip(expected.labels, expected.video_scores.tolist())), abs=1e-4)
    assert (label_cache / "labels.sqlite").is_file()  # the label cache honours OVMLV_CACHE


def test_window_and_stride_set_the_timeline_rows(capsys, clips, loads):
    code, out, _ = run(
        capsys, *predict(clips / "a.mp4", "--labels", LABELS, "--window", "1", "--stride", "0.5")
    )
    assert code == 0
    expected = [[start, start + 1.0] for start in (0.0, 0.5, 1.0, 1.5, 2.0)]
    assert json.loads(out)["times"] == expected
    name, options = loads[0]
    assert name == "tiny-clip" and options["device"] == "cpu" and options["max_duration_s"] == 600.0


def test_alpha_and_threshold_reach_the_result(capsys, clips, loads):
    code, out, _ = run(
        capsys, *predict(clips / "a.mp4", "--labels", LABELS, "--alpha", "0", "--threshold", "0")
    )
    document = json.loads(out)
    assert code == 0 and document["alpha"] == 0.0 and document["threshold"] == 0.0
    # At threshold 0 every label is present over the whole clip: one segment each.
    assert sorted((s["label"], s["start"], s["end"]) for s in document["segments"]) == [
        (label, 0.0, 3.0) for label in sorted(document["labels"])
    ]


def test_several_videos_give_a_json_list_in_order(capsys, clips, loads, encoded):
    code, out, _ = run(capsys, *predict(clips / "b.mp4", clips / "a.mp4", "--labels", LABELS))
    documents = json.loads(out)
    assert code == 0
    assert [document["video"] for document in documents] == ["b.mp4", "a.mp4"]
    assert encoded == ["b.mp4", "a.mp4"]  # each video encoded once
    assert len(loads) == 1  # one model for all videos


def test_csv_parses_back_to_the_timeline(capsys, clips, loads, reference):
    code, out, _ = run(capsys, *predict(clips / "a.mp4", "--labels", LABELS, "--format", "csv"))
    rows = list(csv.reader(io.StringIO(out)))
    expected = reference.classify(clips / "a.mp4", LABELS)
    assert code == 0
    assert rows[0] == ["start", "end", "green square", "red corner", "dog"]
    values = np.array(rows[1:], dtype=float)
    assert np.allclose(values[:, :2], expected.times)
    assert np.allclose(values[:, 2:], expected.timeline, atol=1e-4)


def test_csv_of_several_videos_adds_a_video_column(capsys, clips, loads, tmp_path):
    output = tmp_path / "out.csv"
    videos = [str(clips / "a.mp4"), str(clips / "c.mp4")]
    code, _, _ = run(capsys, *predict(*videos, "--labels", LABELS, "--format", "csv", "--output", output))
    rows = list(csv.DictReader(io.StringIO(output.read_text(encoding="utf-8"))))
    assert code == 0
    assert [row["video"] for row in rows] == [videos[0]] * 2 + [videos[1]] * 2
    assert list(rows[0]) == ["video", "start", "end", "green square", "red corner", "dog"]


def test_table_lists_every_label_best_first(capsys, clips, loads, reference):
    code, out, _ = run(capsys, *predict(clips / "a.mp4", "--labels", LABELS, "--format", "table", "--threshold", "0"))  # fmt: skip
    lines = out.strip().splitlines()
    expected = reference.classify(clips / "a.mp4", LABELS).top(3)
    assert code == 0
    assert lines[0].split()[:3] == ["label", "max", "mean"]
    for line, (label, score) in zip(lines[1:], expected):
        assert line.startswith(label)
        assert f"{score:.3f}" in line
        assert "0.00-3.00s" in line  # the one segment at threshold 0
    assert len(lines) == 4


def test_html_report_is_written_and_self_contained(capsys, clips, loads, tmp_path):
    output = tmp_path / "report.html"
    code, out, _ = run(capsys, *predict(clips / "a.mp4", "--labels", "dog, <b>cat</b>", "--format", "html", "-o", output))  # fmt: skip
    page = output.read_text(encoding="utf-8")
    assert code == 0 and out == ""
    assert page.startswith("<!DOCTYPE html>")
    assert "&lt;b&gt;cat&lt;/b&gt;" in page and "<b>cat</b>" not in page
    assert "<script src=" not in page and "plotly" in page.lower()  # plotly.js inlined, no network


def test_html_of_several_videos_goes_to_a_folder(capsys, clips, loads, tmp_path):
    code, _, _ = run(capsys, *predict(clips / "a.mp4", clips / "b.mp4", "--labels", "dog", "--format", "html", "-o", tmp_path))  # fmt: skip
    assert code == 0
    assert sorted(path.name for path in tmp_path.glob("*.html")) == ["a.html", "b.html"]


def test_labels_file_with_comments_and_duplicates(capsys, clips, loads, tmp_path):
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("# what to look for\ngreen square\nred corner, dog\nDog\n", encoding="utf-8")
    code, out, _ = run(capsys, *predict(clips / "a.mp4", "--labels-file", labels_file))
    assert code == 0 and json.loads(out)["labels"] == ["green square", "red corner", "dog"]


def test_presets_prints_one_name_per_line(capsys):
    code, out, _ = run(capsys, "presets")
    assert code == 0 and out.splitlines() == list_presets()


def test_bench_gets_the_rest_of_the_arguments(capsys, monkeypatch):
    bench = pytest.importorskip("ovmlv.bench")
    received = []
    monkeypatch.setattr(bench, "main", lambda argv: received.append(argv) or 3)
    code, _, _ = run(capsys, "bench", "--size", "tiny", "--help")
    assert code == 3 and received == [["--size", "tiny", "--help"]]


def test_help_exits_zero(capsys):
    code, out, _ = run(capsys, "predict", "--help")
    assert code == 0 and "--manifest" in out and "merge-shards" in out


# ---- predict: bad input ---------------------------------------------------------------------------
BAD_INPUTS = {
    "text file named .mp4": (["{clips}/text.mp4", "--labels", "dog"], "not a video file"),
    "empty file": (["{clips}/empty.mp4", "--labels", "dog"], "empty"),
    "missing file": (["{clips}/missing.mp4", "--labels", "dog"], "not found"),
    "empty label list": (["{clips}/a.mp4", "--labels", " , ,"], "no labels"),
    "101 labels": (
        ["{clips}/a.mp4", "--labels", ",".join(f"thing {i}" for i in range(101))],
        "too many labels",
    ),  # fmt: skip
    "missing label file": (["{clips}/a.mp4", "--labels-file", "{clips}/nope.txt"], "nope.txt"),
    "no labels at all": (["{clips}/a.mp4"], "no labels given"),
    "no videos": (["--labels", "dog"], "no videos given"),
    "alpha out of range": (["{clips}/a.mp4", "--labels", "dog", "--alpha", "2"], "--alpha"),
    "zero window": (["{clips}/a.mp4", "--labels", "dog", "--window", "0"], "--window"),
    "unknown option": (["{clips}/a.mp4", "--labels", "dog", "--colour", "red"], "--colour"),
    "too long": (["{clips}/a.mp4", "--labels", "dog", "--max-duration", "1"], "the limit is 0:01"),
    "html of several to stdout": (
        ["{clips}/a.mp4", "{clips}/b.mp4", "--labels", "dog", "--format", "html"],
        "--output FOLDER",
    ),  # fmt: skip
    "output folder missing": (
        ["{clips}/a.mp4", "--labels", "dog", "-o", "{clips}/no/dir/out.json"],
        "does not exist",
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_before_any_model_loading(capsys, clips, loads, case):
    argv, expected = BAD_INPUTS[case]
    code, out, err = run(capsys, *predict(*(arg.format(clips=clips) for arg in argv)))
    assert_one_error(code, err, expected)
    assert out == ""
    assert loads == []  # failed fast


def test_unknown_model_is_one_line(capsys, clips):
    code, _, err = run(capsys, "predict", clips / "a.mp4", "--labels", "dog", "--model", "no-such-model")
    assert_one_error(code, err, "unknown model 'no-such-model'")


def test_real_preset_without_cached_weights_is_one_line(capsys, clips, tmp_path, monkeypatch):
    import huggingface_hub.constants

    empty_cache = tmp_path / "hf"
    empty_cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(empty_cache))
    code, _, err = run(capsys, "predict", clips / "a.mp4", "--labels", "dog", "--model", "clip-b16", "--device", "cpu")  # fmt: skip
    assert_one_error(code, err, "'clip-b16'")
    assert "HF_HUB_OFFLINE" in err


def test_unexpected_errors_are_one_line_and_debug_shows_them(capsys, clips, loads, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(VideoClassifier, "encode_video", broken)
    code, _, err = run(capsys, *predict(clips / "a.mp4", "--labels", "dog"))
    assert_one_error(code, err, "RuntimeError: something broke (run with --debug for the traceback)")
    with pytest.raises(RuntimeError, match="broke"):
        main(predict(str(clips / "a.mp4"), "--labels", "dog", "--debug"))


def test_console_entry_point_in_a_subprocess(clips, tmp_path):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OVMLV_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "ovmlv", *predict(str(clips / "a.mp4"), "--labels", LABELS)]
    good = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stderr
    assert good.stderr == ""  # no third-party warnings on a clean run
    assert json.loads(good.stdout)["labels"] == ["green square", "red corner", "dog"]
    command = [sys.executable, "-m", "ovmlv", *predict(str(clips / "text.mp4"), "--labels", LABELS)]
    bad = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert_one_error(bad.returncode, bad.stderr, "text.mp4")


def test_no_weight_loading_bar_when_stderr_is_not_a_terminal(clips, tmp_path):
    """The toy LLM loads through transformers' from_pretrained, which draws a "Loading weights" bar."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OVMLV_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO),
    }
    args = ["predict", str(clips / "a.mp4"), "--labels", "lime, moving left", "--model", "toy"]
    good = subprocess.run(
        [sys.executable, "-m", "ovmlv", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert good.returncode == 0, good.stderr
    assert good.stderr == ""
    assert json.loads(good.stdout)["labels"] == ["lime", "moving left"]


# ---- batch ----------------------------------------------------------------------------------------------
def write_manifest(folder: Path) -> Path:
    """Three good clips and two bad files; paths relative to the manifest; one JSONL entry."""
    manifest = folder / "manifest.txt"
    lines = [
        "# three good clips, two bad files",
        "a.mp4",
        json.dumps({"video": "b.mp4", "labels": "cat, ball"}),
    ]
    lines += ["", str(folder / "c.mp4"), "text.mp4", json.dumps({"video": "empty.mp4"})]
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def batch(manifest: Path, output: Path, *extra: str) -> list[str]:
    return predict("--manifest", str(manifest), "--output", str(output), "--labels", LABELS, *extra)


def test_batch_records_failures_resumes_and_retries(capsys, clips, loads, encoded, tmp_path):
    manifest, output = write_manifest(clips), tmp_path / "results.jsonl"
    code, _, err = run(capsys, *batch(manifest, output))
    records = read_jsonl(output)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "3 ok, 2 failed" in err
    assert [r["video"] for r in records] == ["a.mp4", "b.mp4", str(clips / "c.mp4"), "text.mp4", "empty.mp4"]
    assert [r["ok"] for r in records] == [True, True, True, False, False]
    assert "not a video file" in records[3]["error"] and "empty" in records[4]["error"]
    assert all("\n" not in r.get("error", "") for r in records)
    assert records[0]["result"]["labels"] == ["green square", "red corner", "dog"]
    assert records[1]["result"]["labels"] == ["cat", "ball"]  # the entry's own labels
    assert len(records[0]["result"]["timeline"]) == 2
    assert encoded == GOOD + BAD

    encoded.clear()
    code, _, err = run(capsys, *batch(manifest, output))
    assert code == 2 and "0 run now, 5 already" in err
    assert encoded == [] and loads[1:] == []  # nothing encoded, no model even loaded
    assert read_jsonl(output) == records

    code, _, _ = run(capsys, *batch(manifest, output, "--retry-failed"))
    assert code == 2 and encoded == BAD
    again = read_jsonl(output)
    assert len(again) == 5 and again[:3] == records[:3]  # the good lines are untouched
    assert sorted(r["video"] for r in again if not r["ok"]) == sorted(BAD)


def test_batch_resumes_after_a_crash_mid_line(capsys, clips, loads, encoded, tmp_path):
    manifest, output = write_manifest(clips), tmp_path / "results.jsonl"
    run(capsys, *batch(manifest, output))
    complete = output.read_text(encoding="utf-8").splitlines(keepends=True)
    output.write_text("".join(complete[:2]) + complete[2][:40], encoding="utf-8")  # killed while writing c
    encoded.clear()
    code, _, _ = run(capsys, *batch(manifest, output))
    assert code == 2
    assert encoded == ["c.mp4", *BAD]
    assert [r["video"] for r in read_jsonl(output)] == ["a.mp4", "b.mp4", str(clips / "c.mp4"), *BAD]


def test_batch_of_good_videos_exits_zero(capsys, clips, loads, tmp_path):
    manifest = tmp_path / "good.txt"
    manifest.write_text("".join(f"{clips / name}\n" for name in GOOD), encoding="utf-8")
    code, _, err = run(capsys, *batch(manifest, tmp_path / "out.jsonl"))
    assert code == 0 and "3 ok, 0 failed" in err


def test_shards_cover_every_entry_once_and_merge(capsys, clips, loads, tmp_path):
    manifest, output = write_manifest(clips), tmp_path / "results.jsonl"
    everything = ["a.mp4", "b.mp4", str(clips / "c.mp4"), "text.mp4", "empty.mp4"]  # manifest order
    shards = []
    for index in range(3):
        run(capsys, *batch(manifest, output, "--shard", f"{index}/3"))
        shard = tmp_path / f"results.shard-{index}-of-3.jsonl"
        shards.append([r["video"] for r in read_jsonl(shard)])
        assert shards[-1] == everything[index::3]  # index % n == i
    assert sorted(sum(shards, [])) == sorted(everything)
    assert not output.exists()

    code, _, err = run(capsys, "merge-shards", output)
    assert code == 0 and "5 videos, 2 failed" in err
    assert sorted(r["video"] for r in read_jsonl(output)) == sorted(everything)


def test_torchrun_rank_and_world_size_pick_the_shard(capsys, clips, loads, tmp_path, monkeypatch):
    manifest, output = write_manifest(clips), tmp_path / "results.jsonl"
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    code, _, err = run(capsys, *batch(manifest, output))
    assert code == 2 and "shard 1/3" in err  # entry 4 (empty.mp4) is in shard 1
    assert [r["video"] for r in read_jsonl(tmp_path / "results.shard-1-of-3.jsonl")] == ["b.mp4", "empty.mp4"]


BAD_BATCHES = {
    "missing manifest": ("missing.txt", None, [], "cannot read manifest"),
    "invalid json": ("m.txt", 'a.mp4\n{"video": "b.mp4",\n', [], "line 2: not valid JSON"),
    "unknown key": ("m.txt", '{"video": "a.mp4", "label": "x"}\n', [], "unknown key(s) 'label'"),
    "listed twice": ("m.txt", "a.mp4\nb.mp4\na.mp4\n", [], "already listed on line 1"),
    "bad entry labels": ("m.txt", '{"video": "a.mp4", "labels": ""}\n', [], "line 1: no labels"),
    "no videos": ("m.txt", "# nothing\n", [], "lists no videos"),
    "bad shard": ("m.txt", "a.mp4\n", ["--shard", "3/3"], "--shard 3/3"),
    "format": ("m.txt", "a.mp4\n", ["--format", "csv"], "--format"),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_bad_batch_input_is_one_line(capsys, clips, loads, tmp_path, case):
    name, text, extra, expected = BAD_BATCHES[case]
    if text is not None:
        (tmp_path / name).write_text(text, encoding="utf-8")
    code, _, err = run(capsys, *batch(tmp_path / name, tmp_path / "out.jsonl", *extra))
    assert_one_error(code, err, expected)
    assert loads == []


def test_batch_refuses_to_append_to_a_file_that_is_not_results(capsys, clips, loads, tmp_path):
    output = tmp_path / "notes.jsonl"
    output.write_text("my precious notes\n", encoding="utf-8")
    code, _, err = run(capsys, *batch(write_manifest(clips), output))
    assert_one_error(code, err, "not an ovmlv result line")
    assert output.read_text(encoding="utf-8") == "my precious notes\n"


def test_entries_without_labels_need_command_labels(capsys, clips, loads, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps({"video": str(clips / "a.mp4"), "labels": ["dog"]}) + "\n", encoding="utf-8"
    )
    output = tmp_path / "out.jsonl"
    code, _, _ = run(capsys, *predict("--manifest", manifest, "--output", output))
    assert code == 0 and read_jsonl(output)[0]["result"]["labels"] == ["dog"]


def test_the_models_own_threshold_is_the_default(capsys, clips, tmp_path):
    """A checkpoint that sets its threshold (as the toy one does) gets it without --threshold."""
    from ovmlv.checkpoint import save_checkpoint, set_checkpoint_threshold

    checkpoint = save_checkpoint(ovmlv.create_model("tiny-clip", device="cpu"), tmp_path / "ckpt")
    set_checkpoint_threshold(checkpoint, 0.0)  # every window of every label is inside a segment
    common = ["predict", clips / "a.mp4", "--model", checkpoint, "--device", "cpu", "--labels", LABELS]
    code, out, _ = run(capsys, *common)
    document = json.loads(out)
    assert code == 0 and document["threshold"] == 0.0
    assert sorted(s["label"] for s in document["segments"]) == sorted(document["labels"])
    code, out, _ = run(capsys, *common, "--format", "table")
    assert code == 0 and "segments (p >= 0.00)" in out
    code, out, _ = run(capsys, *common, "--threshold", "1")  # the flag wins
    assert code == 0 and json.loads(out)["threshold"] == 1.0 and json.loads(out)["segments"] == []
