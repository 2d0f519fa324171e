"""`ovmlv bench` at tiny size on tiny clips: every figure is there and every ratio is what it says.

Timings themselves are never asserted (performance belongs in BENCHMARKS.md); what is tested
is the arithmetic of the report, the X-CLIP job's shape, the clips and the memory subprocess.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ovmlv.bench import BenchOptions, evaluate_targets, main, run_bench
from ovmlv.bench_clips import write_bench_clip
from ovmlv.bench_figures import LABELS_10, build_model, gates_set_to, make_classifier, median
from ovmlv.bench_xclip import XCLIP_TINY, build_xclip, tokenize_labels, xclip_timeline
from ovmlv.decode import iter_windows, probe_video

FIGURES = ["temporal_throughput", "relabel", "end_to_end", "xclip"]
TARGETS = [
    "temporal_overhead",
    "relabel",
    "end_to_end",
    "xclip_fp32_speedup",
    "xclip_bf16_not_slower",
    "memory",
]


@pytest.fixture(scope="module")
def report() -> dict:
    # One thread: tiny ops with two OpenMP threads crawl when another process holds a core.
    threads = torch.get_num_threads()
    options = BenchOptions(size="tiny", threads=1, seconds=5, repeats=1, throughput_batch=2, skip_memory=True)
    try:
        return json.loads(json.dumps(run_bench(options)))  # what the CLI prints must be plain JSON
    finally:
        torch.set_num_threads(threads)


def test_report_has_every_figure_and_the_machine(report):
    for key in ["options", "machine", "model", "clip", "targets", *FIGURES]:
        assert key in report, key
    machine = report["machine"]
    for key in ["cpu", "logical_cores", "torch", "transformers", "open_clip", "device", "dtype", "threads"]:
        assert machine[key] is not None, key
    assert report["model"]["preset"] == "tiny-clip" and report["model"]["pretrained"] is False
    assert set(report["targets"]) == set(TARGETS)
    assert report["targets"]["memory"]["skipped"] is True


def test_throughput_ratio_is_the_quotient_of_the_raw_numbers(report):
    figure = report["temporal_throughput"]
    assert figure["temporal_active"] is True  # gates are non-zero: the branch really ran
    frames = figure["frames_per_batch"]
    assert frames == figure["batch_shape"][0] * figure["batch_shape"][1]
    assert math.isclose(figure["video_fps"], frames / median(figure["video_s"]))
    assert math.isclose(figure["image_fps"], frames / median(figure["image_s"]))
    assert math.isclose(figure["ratio"], figure["video_fps"] / figure["image_fps"])
    assert math.isclose(figure["ratio_two_alphas"], figure["video_two_alphas_fps"] / figure["image_fps"])


def test_relabel_and_end_to_end_ratios(report):
    relabel, e2e = report["relabel"], report["end_to_end"]
    assert len(relabel["cached_s"]) == 5 and len(relabel["uncached_s"]) == 1
    assert math.isclose(relabel["ratio_cached"], median(relabel["cached_s"]) / relabel["encode_seconds"])
    assert math.isclose(relabel["ratio_uncached"], median(relabel["uncached_s"]) / relabel["encode_seconds"])
    assert len(e2e["classify_s"]) == 1 and math.isclose(e2e["classify_s_median"], median(e2e["classify_s"]))
    assert math.isclose(
        e2e["classify_idle_estimate_s"], e2e["classify_cpu_s_median"] / report["machine"]["threads"]
    )
    assert e2e["labels"] == len(LABELS_10)
    assert e2e["windows"] == relabel["windows"] == 3  # a 5 s clip in 2 s windows (last one partial)


def test_xclip_figure_uses_the_same_windows_and_divides_as_documented(report):
    xclip, e2e = report["xclip"], report["end_to_end"]
    for name in ("fp32", "bf16"):
        assert xclip[name]["scores_shape"] == [e2e["windows"], len(LABELS_10)]
        assert math.isclose(xclip[name]["total_s_median"], median(xclip[name]["total_s"]))
    ovmlv_s = {"classify": e2e["classify_s_median"], "classify_zero_gates": e2e["classify_zero_gates_s"]}
    for name, seconds in ovmlv_s.items():
        assert math.isclose(xclip[f"speedup_vs_fp32_{name}"], xclip["fp32"]["total_s_median"] / seconds)
        assert math.isclose(xclip[f"speedup_vs_bf16_{name}"], xclip["bf16"]["total_s_median"] / seconds)
    window = xclip["per_window"]
    for xclip_name in ("xclip_fp32", "xclip_bf16"):
        for ovmlv_name in ("ovmlv", "ovmlv_zero_gates", "ovmlv_two_alphas"):
            expected = median(window["wall"][xclip_name]) / median(window["wall"][ovmlv_name])
            assert math.isclose(window[f"speedup_{xclip_name}_vs_{ovmlv_name}"], expected)
    target = report["targets"]["xclip_fp32_speedup"]
    assert target["value_per_window"] == window["speedup_xclip_fp32_vs_ovmlv"]


def test_targets_follow_the_numbers(report):
    targets = report["targets"]
    assert targets["temporal_overhead"]["pass"] == (report["temporal_throughput"]["ratio"] >= 0.85)
    assert targets["relabel"]["pass"] == (report["relabel"]["ratio_cached"] < 0.05)
    assert targets["end_to_end"]["applies"] is False  # the 10 s target is for b16 only
    assert targets["xclip_fp32_speedup"]["pass"] == (report["xclip"]["speedup_vs_fp32_classify"] >= 3)
    fake = json.loads(json.dumps(report))
    fake["memory"] = {"ratio": 1.6}
    assert evaluate_targets(fake, BenchOptions(size="tiny"))["memory"]["pass"] is False


def test_xclip_job_gives_one_row_per_window(tmp_path):
    clip = write_bench_clip(tmp_path / "c.mp4", 7.0, fps=12)
    classifier = make_classifier(
        build_model(BenchOptions(size="tiny", dtype="fp32")), BenchOptions(size="tiny")
    )
    model = build_xclip(XCLIP_TINY, torch.device("cpu"), torch.float32)
    labels = ["a dog", "a cat", "cooking"]
    scores, timings = xclip_timeline(model, clip.path, labels, classifier.preprocess, batch_size=2)
    windows = list(iter_windows(clip.path, frames_per_window=4, short_side=32))
    state = classifier.encode_video(clip.path)
    assert scores.shape == (len(windows), len(labels)) == (state.num_windows, len(labels))
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)  # softmax over labels, as X-CLIP is used
    assert timings["total_s"] >= timings["model_s"] > 0


def test_xclip_tokens_are_clip_bpe_with_a_mask():
    import open_clip

    ids, mask = tokenize_labels(["a dog", "traffic at night"])
    assert torch.equal(ids, open_clip.SimpleTokenizer()(["a dog", "traffic at night"]))
    assert ids.shape == mask.shape == (2, 77)
    lengths = mask.sum(dim=1)
    assert ids[0, lengths[0] - 1] == ids.max() and torch.all(ids[mask == 0] == 0)


def test_gates_are_set_and_restored():
    model = build_model(BenchOptions(size="tiny", gate=0.5))
    assert all(float(b.gate.detach()) == 0.5 for b in model.temporal.branches.values())
    with gates_set_to(model, 0.0):
        assert not model.has_temporal_effect()
    assert model.has_temporal_effect()


def test_bench_clip_is_640x360_and_changes_over_time(tmp_path):
    clip = write_bench_clip(tmp_path / "c.mp4", 3.0)
    info = probe_video(clip.path)
    assert (info.width, info.height, info.codec) == (640, 360, "h264")
    assert abs(info.duration_s - 3.0) < 0.1
    first, last = (w.frames for w in iter_windows(clip.path, window_s=1.5, frames_per_window=2))
    assert np.abs(first.astype(int) - last.astype(int)).mean() > 5


def test_main_prints_and_writes_json(tmp_path, capsys, monkeypatch):
    import ovmlv.bench

    seen = {}

    def fake_run_bench(options):
        seen["options"] = options
        return {"targets": {}, "size": options.size}

    monkeypatch.setattr(ovmlv.bench, "run_bench", fake_run_bench)
    output = tmp_path / "bench.json"
    argv = ["--size", "tiny", "--seconds", "2", "--long-seconds", "7", "--threads", "1", "--skip-xclip"]
    assert main([*argv, "--output", str(output)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(output.read_text()) == printed == {"targets": {}, "size": "tiny"}
    options = seen["options"]
    assert (options.seconds, options.long_seconds, options.threads) == (2.0, 7.0, 1)
    assert options.skip_xclip and not options.skip_memory and options.dtype == "bf16"


def test_main_rejects_bad_options():
    with pytest.raises(SystemExit) as exit_info:
        main(["--size", "huge"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_memory_figure_runs_each_clip_in_its_own_process(tmp_path):
    from ovmlv.bench import _measure_memory

    options = BenchOptions(size="tiny", threads=1, seconds=3, long_seconds=9)
    short_clip = write_bench_clip(tmp_path / "short.mp4", options.seconds)
    memory = _measure_memory(options, short_clip.path, tmp_path)
    short, long = memory["short"], memory["long"]
    assert (short["windows"], long["windows"]) == (2, 5)
    assert math.isclose(memory["ratio"], long["peak_rss_mib"] / short["peak_rss_mib"])
    assert math.isclose(
        memory["ratio_encode_phase"], long["encode_peak_rss_mib"] / short["encode_peak_rss_mib"]
    )
    for child in (short, long):
        assert 0 < child["encode_peak_rss_mib"] <= child["peak_rss_mib"] + 1e-6
        assert child["after_load"]["rss_mib"] > 0
    report = {"temporal_throughput": {"ratio": 1.0}, "relabel": {"ratio_cached": 0.0}, "memory": memory}
    report["end_to_end"] = {"classify_s_median": 1.0, "classify_idle_estimate_s": 1.0}
    assert evaluate_targets(report, options)["memory"]["pass"] == (memory["ratio"] <= 1.5)
