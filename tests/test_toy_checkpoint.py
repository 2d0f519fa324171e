"""The shipped toy model (checkpoints/toy) and the `toy` preset, fully offline.

- it is complete, small (<= 20 MB) and loads through the standard paths: open_clip's
  `local-dir:`, transformers' AutoTokenizer / the library's LLM loader, create_model("toy");
- its committed ablation numbers are reproduced by evaluating it again on the test set,
  re-rendered from its seed;
- its default threshold (config.json) is reproduced from the validation clips' seed;
- on the app's example clips, nouns (base and novel) and motions rank the right windows first,
  and nouns cross the model's default threshold exactly where present, in the library and in the
  app; so do a typed novel noun, a motion and another noun on each of the three examples in the
  app;
- on 40 random clips like the first example (training.toyworld.stories), it marks a typed novel
  noun and motion exactly right in most of them.
Known misses are strict xfails (they start failing the day they are fixed, so this file gets
updated): the motions crossing the threshold exactly on every example (one window: moving right in
the third example's second scene).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import ovmlv

TOY = Path(__file__).resolve().parents[1] / "checkpoints" / "toy"
MAX_BYTES = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def toy_classifier():
    return ovmlv.VideoClassifier.from_pretrained("toy", device="cpu", label_db_path=None)


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads((TOY / "report.json").read_text(encoding="utf-8"))


def test_checkpoint_is_complete_and_small():
    files = [p for p in TOY.rglob("*") if p.is_file()]
    names = {str(p.relative_to(TOY)) for p in files}
    assert {"config.json", "model.safetensors", "README.md", "report.json"} <= names
    assert {"open_clip/open_clip_config.json", "open_clip/open_clip_model.safetensors"} <= names
    assert {"llm/config.json", "llm/model.safetensors", "llm/tokenizer.json"} <= names
    assert not any(p.suffix in (".bin", ".pt", ".pth", ".pkl") for p in files)  # no pickles
    assert sum(p.stat().st_size for p in files) <= MAX_BYTES


def test_toy_preset_loads_offline_through_the_standard_paths(toy_classifier):
    import open_clip
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    model = toy_classifier.model
    assert "toy" in ovmlv.list_presets() and model.config.adapter_trained
    direct = open_clip.create_model(f"local-dir:{TOY / 'open_clip'}")
    for name, tensor in direct.state_dict().items():  # bf16 classifier: compare at its precision
        assert torch.equal(tensor.to(torch.bfloat16), model.clip.state_dict()[name].to(torch.bfloat16))
    tokenizer = AutoTokenizer.from_pretrained(TOY / "llm")
    assert isinstance(tokenizer, PreTrainedTokenizerFast) and tokenizer.chat_template
    assert tokenizer.decode(tokenizer("a lime is a green circle")["input_ids"]) == "a lime is a green circle"
    assert model.llm.tokenizer.get_vocab() == tokenizer.get_vocab()


def test_llm_knows_novel_nouns(toy_classifier):
    phrases = toy_classifier.model.describe_labels(["lime", "bagel", "tomato"])
    assert "green circle" in phrases["lime"] and "orange ring" in phrases["bagel"]
    assert "red circle" in phrases["tomato"]


def test_shipped_folder_is_a_base_to_refinetune_from(report, tmp_path):
    """`--reuse-base checkpoints/toy` copies the shipped toy CLIP and LLM with their checks."""
    from training.toyworld.pipeline import PRETRAIN_REPORT_KEYS, reuse_pretrained

    checks = reuse_pretrained(TOY, tmp_path / "base")
    assert checks == report["pretrain"] and set(checks) == set(PRETRAIN_REPORT_KEYS)
    for name in ("open_clip", "llm"):
        shipped = sorted(p.relative_to(TOY / name) for p in (TOY / name).rglob("*") if p.is_file())
        copied = sorted(
            p.relative_to(tmp_path / "base" / name) for p in (tmp_path / "base" / name).rglob("*")
        )
        assert copied == shipped
        for rel in shipped:
            assert (tmp_path / "base" / name / rel).read_bytes() == (TOY / name / rel).read_bytes()
    saved = json.loads((tmp_path / "base" / "pretrain_report.json").read_text(encoding="utf-8"))
    assert saved == report["pretrain"]
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "report.json").write_text(json.dumps({"pretrain": {"clip": {}}}), encoding="utf-8")
    with pytest.raises(ValueError, match="lacks open_clip/, llm/, pretraining check 'llm'"):
        reuse_pretrained(tmp_path / "half", tmp_path / "base2")
    with pytest.raises(FileNotFoundError, match="neither pretrain_report.json"):
        reuse_pretrained(tmp_path / "base2", tmp_path / "base3")


@pytest.mark.slow
def test_committed_table_is_reproduced(report, tmp_path):
    from ovmlv.classifier import VideoClassifier
    from ovmlv.label_db import LabelDB
    from ovmlv.toyworld import all_labels, render_dataset
    from training.data.manifest import read_manifest
    from training.evaluate import evaluate
    from training.toyworld.pipeline import ToyWorldPlan
    from training.toyworld.report import summarise

    plan = ToyWorldPlan(**{k: v for k, v in report["plan"].items() if k in ("seed", "test_clips")})
    manifest = render_dataset(tmp_path / "test", plan.test_clips, seed=plan.test_seed)
    model = ovmlv.create_model(TOY, device="cpu", dtype=torch.float32)
    result = evaluate(
        VideoClassifier(model, LabelDB(None), name="toy"),
        read_manifest(manifest),
        all_labels(),
        baseline=["zero-shot", "attributes", "none"],
    )
    names = {
        "zero-shot": "zero-shot label text",
        "attributes": "zero-shot + LLM attributes",
        "none": "full method",
    }
    again = summarise({names[k]: v for k, v in result["systems"].items()})
    for system, row in again.items():
        # Two systems go through the LLM-written phrases (the full method's label gate is anchored
        # at them): greedy generation and threaded float sums vary a little between runs of the
        # same models (83.5-83.7 base-noun mAP with an earlier LLM; 80.5-80.7 novel for session 10's checkpoint).
        uses_phrases = system in ("zero-shot + LLM attributes", "full method")
        tolerance = 1e-2 if uses_phrases else 2e-3
        for column, value in row.items():
            assert value == pytest.approx(report["table"][system][column], abs=tolerance), (system, column)


@pytest.mark.slow
def test_committed_threshold_is_reproduced(report, toy_classifier, tmp_path):
    """The default threshold in config.json is the best micro-F1 on the validation clips,
    re-rendered from the seed (base labels only: the test set takes no part), scored as the app
    scores them (the preset's default bfloat16 weights)."""
    from ovmlv.toyworld import BASE_NOUNS, MOTIONS, render_dataset
    from training.data.manifest import read_manifest
    from training.metrics import best_f1_threshold, micro_f1
    from training.toyworld.pipeline import ToyWorldPlan, base_labels_only

    plan = ToyWorldPlan(**{k: v for k, v in report["plan"].items() if k in ("seed", "val_clips")})
    folder = tmp_path / "val"
    entries = read_manifest(
        base_labels_only(
            render_dataset(folder, plan.val_clips, seed=plan.val_seed, manifest_name="all.jsonl")
        )
    )
    labels = list(BASE_NOUNS) + list(MOTIONS)
    assert toy_classifier.model.dtype == torch.bfloat16
    scores = np.stack([toy_classifier.classify(entry.video, labels).video_scores for entry in entries])
    targets = np.array([[label in entry.labels for label in labels] for entry in entries], dtype=np.float32)
    committed = report["threshold"]["value"]
    assert toy_classifier.threshold == committed and len(entries) == plan.val_clips == 200
    best, best_f1 = best_f1_threshold(torch.from_numpy(scores), torch.from_numpy(targets))
    # The F1 curve is flat at its top, and the label side goes through LLM-written phrases whose
    # threaded float sums vary a little between runs (as the table's tolerance above): the argmax
    # may move (0.28 or 0.31 for the previous checkpoint), the F1 it reaches may not move more than the table's
    # tolerance, and the committed threshold must reach it too.
    assert best_f1 == pytest.approx(report["threshold"]["best_f1"], abs=1e-2)
    assert micro_f1(torch.from_numpy(scores), torch.from_numpy(targets), committed) >= best_f1 - 1e-2
    # 0.5 is worse (0.720 against 0.736 for this checkpoint; 0.731 against 0.745 for session 23's)
    assert micro_f1(torch.from_numpy(scores), torch.from_numpy(targets), 0.5) < best_f1 - 5e-3


def _example_timelines(classifier, folder: Path, kind: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{example/label: (its score per window, where it is present)} for the nouns or the motions
    typed for the app's example clips (one window per scene)."""
    from examples.clips import EXAMPLES, ensure_example_clips
    from ovmlv.toyworld import MOTIONS

    out = {}
    for example, (path, labels) in zip(EXAMPLES, ensure_example_clips(folder)):
        result = classifier.classify(path, labels)
        truth = example.truth()
        assert result.timeline.shape == (len(truth), 4)
        for column, label in enumerate(result.labels):
            if (label in MOTIONS) != (kind == "motion"):
                continue
            present = np.array([row[label] for row in truth])
            out[f"{example.name}/{label}"] = (result.timeline[:, column], present)
    return out


def _ranked_right(scores: np.ndarray, present: np.ndarray) -> bool:
    """Every window where the label is present outscores every window where it is absent."""
    return bool(scores[present].min() > scores[~present].max())


def _marked_right(scores: np.ndarray, present: np.ndarray) -> bool:
    """At or above the model's default threshold exactly in the windows where the label is present
    (the app's segments: Result.segments compares in float32)."""
    threshold = json.loads((TOY / "config.json").read_text(encoding="utf-8"))["model"]["threshold"]
    return bool(np.array_equal(scores >= np.float32(threshold), present))


MOTION_MISSES = (
    "one motion window falls short of the threshold of 0.32: moving right 0.21 in the third example's"
    " second scene (the sail moves from x = 10 to 36 of 64, and ends where 'on the right' is not clear)"
)


def _known_miss(why: str):
    return pytest.mark.xfail(
        strict=True, reason=f"known miss (issue 6): {why}; see checkpoints/toy/README.md"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, check",
    [
        pytest.param("noun", _ranked_right, id="nouns-rank-right"),
        pytest.param("noun", _marked_right, id="nouns-cross-threshold-exactly"),
        pytest.param("motion", _ranked_right, id="motions-rank-right"),
        pytest.param(
            "motion",
            _marked_right,
            id="motions-cross-threshold-exactly",
            marks=_known_miss(MOTION_MISSES),
        ),
    ],
)
def test_example_timelines(toy_classifier, tmp_path, kind, check):
    """Labels typed for the app's example clips (base and novel nouns, or motions), per window."""
    timelines = _example_timelines(toy_classifier, tmp_path, kind)
    right = {key: check(*value) for key, value in timelines.items()}
    assert len(right) == 6 and all(right.values()), right


@pytest.mark.slow
@pytest.mark.parametrize(
    "index, labels",
    [
        # a bagel moving up, then a plum moving down beside the bagel standing still, then the plum alone
        pytest.param(1, ["bagel", "moving up", "plum"], id="bagel-moving-up-plum"),
        # a lime moving left (two scenes, the second beside a still blue square), then a tomato growing;
        # moving left scores 0.68 / 0.33 where present (0.00 where absent), against the threshold of 0.32
        pytest.param(0, ["lime", "moving left", "tomato"], id="lime-moving-left-tomato"),
        # a cheese blinking, then a sail moving right alone, then beside the cheese shrinking (two
        # novel nouns); blinking scores 0.33 where present, 0.12 / 0.21 where absent
        pytest.param(2, ["cheese", "blinking", "sail"], id="cheese-blinking-sail"),
    ],
)
def test_app_with_the_toy_model_gets_an_example_right(tmp_path, index, labels):
    """The done-means of issue 6: `--model toy` offline, an example clip, a typed novel noun (never
    a training label), a motion and another noun, the threshold left as it is. The app shows the
    library's timeline, and its segments are exactly where each label is present."""
    from gradio_client import Client, handle_file

    from examples.clips import EXAMPLES, ensure_example_clips

    from test_app import serve_app

    example = EXAMPLES[index]
    path, _ = ensure_example_clips(tmp_path / "clips")[index]
    with serve_app(tmp_path, model="toy") as served:
        client = Client(served.url, verbose=False)
        answer = client.predict(video=handle_file(path), labels=", ".join(labels), api_name="/classify")
        reference = served.classifier.classify(path, labels)
    assert answer["model"] == "toy" and answer["labels"] == labels
    assert answer["threshold"] == pytest.approx(served.classifier.threshold) != 0.5  # the slider's start
    np.testing.assert_allclose(np.array(answer["timeline"]), reference.timeline, atol=1e-3)
    truth = example.truth()
    expected = []  # (label, start, end) of each run of 2 s windows where the label is present
    for label in labels:
        window = 0
        for inside, run in itertools.groupby(row[label] for row in truth):
            length = len(list(run))
            if inside:
                expected.append((label, 2.0 * window, 2.0 * (window + length)))
            window += length
    found = sorted((s["label"], s["start"], s["end"]) for s in answer["segments"])
    assert found == sorted(expected), answer["timeline"]


@pytest.mark.slow
def test_typed_novel_nouns_and_motions_are_right_on_most_random_stories(toy_classifier, tmp_path):
    """40 clips like the first example with random layouts (training.toyworld.stories): the typed
    novel noun and motion both marked exactly right in 32, the motion in 34, at the threshold of
    0.32 (27 and 27 at 0.38, where float32 scores put it in session 29; session 28's checkpoint: 35
    and 38 at its 0.33; session 23's: 28 and 35; session 18's: 30 and 33; the one before it: 6)."""
    from training.toyworld.stories import judge_stories, make_stories

    result = judge_stories(toy_classifier, make_stories(tmp_path, 40, seed=21))
    assert result["count"] == 40
    assert result["right"]["stories"] >= 30 and result["right"]["motions"] >= 30, result
