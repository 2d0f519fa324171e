"""The toy world: renderer, scripted scenes, mp4 files, captions, corpus, the layout probe."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ovmlv.toyworld import (
    BASE_NOUNS,
    COLOURS,
    MOTIONS,
    NOUN_BY_NAME,
    NOUNS,
    NOVEL_NOUNS,
    SHAPES,
    ToyObject,
    ToyScene,
    noun_for,
    object_mask,
    render_clip,
    render_dataset,
    render_scene,
    reversed_scene,
    sample_scene,
    write_clip_mp4,
)
from ovmlv.toyworld.render import _apart, _track, object_state, shape_sdf
from ovmlv.toyworld.vocabulary import check_vocabulary


def _one_object_scene(motion: str, shape: str = "circle", colour: str = "red", size: int = 64) -> ToyScene:
    obj = ToyObject(colour, shape, noun_for(colour, shape), motion, x=14.0, y=14.0, radius=8.0,
                    travel=30.0, blink_phase=1, rgb=COLOURS[colour])  # fmt: skip
    return ToyScene((obj,), size, 16, np.full((size, size, 3), 128, dtype=np.uint8))


def _colour_mask(frame: np.ndarray, rgb: tuple[int, int, int], tolerance: float = 40.0) -> np.ndarray:
    return np.abs(frame.astype(np.float32) - np.asarray(rgb, dtype=np.float32)).max(axis=-1) < tolerance


def test_vocabulary_splits():
    check_vocabulary()
    assert len(NOUNS) == 24 and len(NOVEL_NOUNS) >= 8
    assert set(BASE_NOUNS).isdisjoint(NOVEL_NOUNS)
    assert set(BASE_NOUNS) | set(NOVEL_NOUNS) == set(NOUN_BY_NAME)
    for group in (BASE_NOUNS, NOVEL_NOUNS):
        assert {NOUN_BY_NAME[n].colour for n in group} == set(COLOURS)
        assert {NOUN_BY_NAME[n].shape for n in group} == set(SHAPES)

    from ovmlv.toyworld import MOTIONS, REVERSAL_MOTIONS, REVERSAL_PAIRS, REVERSED_MOTION

    assert REVERSAL_MOTIONS == (
        "moving left",
        "moving right",
        "moving up",
        "moving down",
        "growing",
        "shrinking",
    )
    assert all(REVERSED_MOTION[a] == b for a, b in REVERSAL_PAIRS) and set(REVERSAL_MOTIONS) < set(MOTIONS)


def test_render_is_deterministic_by_seed():
    a, b, c = render_clip(7), render_clip(7), render_clip(8)
    assert a.frames.shape == (16, 64, 64, 3) and a.frames.dtype == np.uint8
    assert np.array_equal(a.frames, b.frames) and a.labels == b.labels and a.objects == b.objects
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("seed", range(6))
def test_reversed_scene_is_the_clip_played_backwards(seed):
    scene = sample_scene(seed)
    forward = render_scene(scene)
    backward = render_scene(reversed_scene(scene))
    assert np.array_equal(backward, forward[::-1])
    assert render_scene(reversed_scene(reversed_scene(scene))).tobytes() == forward.tobytes()


@pytest.mark.parametrize(
    ("motion", "reverse", "axis"),
    [("moving right", "moving left", 1), ("moving down", "moving up", 0), ("growing", "shrinking", None)],
)
def test_motion_pairs_are_exact_reversals_and_visible(motion, reverse, axis):
    forward = render_scene(_one_object_scene(motion))
    backward = render_scene(_one_object_scene(reverse))
    assert np.array_equal(backward, forward[::-1])
    masks = [_colour_mask(frame, COLOURS["red"]) for frame in forward]
    if axis is None:  # growing: the area more than triples over the clip
        assert masks[-1].sum() > 3 * masks[0].sum()
    else:  # the centre travels about 30 pixels in the positive direction
        centres = [np.nonzero(m)[axis].mean() for m in masks]
        assert 25 < centres[-1] - centres[0] < 35 and np.all(np.diff(centres) > 0)


def test_blinking_survives_sampling_every_other_frame():
    frames = render_scene(_one_object_scene("blinking"))
    visible = [_colour_mask(f, COLOURS["red"]).any() for f in frames]
    assert any(visible[0::2]) and not all(visible[0::2])
    assert any(visible[1::2]) and not all(visible[1::2])


@pytest.mark.parametrize("seed", range(40))
def test_labels_match_objects(seed):
    clip = render_clip(seed, attribute_labels=True)
    assert 1 <= len(clip.objects) <= 3
    nouns = {noun_for(o.colour, o.shape) for o in clip.objects} - {None}
    motions = {o.motion for o in clip.objects}
    pairs = {f"{o.colour} {o.shape}" for o in clip.objects}
    assert set(clip.labels) == nouns | motions | pairs
    assert len(clip.labels) == len(set(clip.labels))
    assert all(o.noun == noun_for(o.colour, o.shape) for o in clip.objects)
    assert all(m in MOTIONS for m in motions)


def test_tracks_and_masks_are_object_state_and_the_whole_frame_bit_for_bit():
    """The renderer's fast paths (all frames at once, the object's box only) give exactly the
    numbers of the per-frame, whole-frame computation: the same scenes from the same seeds."""
    for size in (48, 64):
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
        objects = [o for seed in range(60) for o in sample_scene(seed, 16, size).objects]
        assert {o.motion for o in objects} == set(MOTIONS)
        for obj in objects:
            x, y, radius = _track(obj, 16)
            for t in range(16):
                assert (x[t], y[t], radius[t]) == object_state(obj, t, 16)[:3]  # ==, not close
                cx, cy, r, visible = object_state(obj, t, 16)
                whole = visible & (shape_sdf(obj.shape, xs + 0.5 - cx, ys + 0.5 - cy, r) < -0.5)
                assert np.array_equal(object_mask(obj, t, 16, size), whole)
        for a, b in zip(objects, objects[1:]):  # overlap: at the frame where the centres are closest
            gaps = [
                np.hypot(*np.subtract(object_state(a, t, 16)[:2], object_state(b, t, 16)[:2]))
                for t in range(16)
            ]
            reach = [1.1 * (object_state(a, t, 16)[2] + object_state(b, t, 16)[2]) + 1.0 for t in range(16)]
            assert _apart(_track(a, 16), _track(b, 16)) == all(g >= r for g, r in zip(gaps, reach))


@pytest.mark.parametrize("noun", [n.name for n in NOUNS])
def test_noun_is_drawn_with_its_colour_and_shape(noun):
    colour, shape = NOUN_BY_NAME[noun].colour, NOUN_BY_NAME[noun].shape
    scene = _one_object_scene("still", shape, colour)
    frame = render_scene(scene, noise=0.03, noise_seed=1)[0]
    obj = scene.objects[0]
    inside = object_mask(obj, 0, 16, 64)
    mean_rgb = frame[inside].astype(np.float32).mean(axis=0)
    assert np.abs(mean_rgb - np.asarray(COLOURS[colour])).max() < 12
    nearest = min(COLOURS, key=lambda c: np.abs(mean_rgb - np.asarray(COLOURS[c])).sum())
    assert nearest == colour
    drawn = _colour_mask(frame, COLOURS[colour])

    ys, xs = np.mgrid[0:64, 0:64] + 0.5

    def iou(candidate: str) -> float:  # against each shape's nominal outline (distance < 0)
        other = shape_sdf(candidate, xs - obj.x, ys - obj.y, obj.radius) < 0
        return (drawn & other).sum() / (drawn | other).sum()

    assert max(SHAPES, key=iou) == shape and iou(shape) > 0.7


def test_mp4_round_trip_through_ovmlv_decode(tmp_path):
    from ovmlv.decode import iter_windows

    clip = render_clip(3, noise=0.0)
    path = write_clip_mp4(clip, tmp_path / "clip.mp4", fps=8)
    windows = list(iter_windows(path, window_s=2.0, frames_per_window=16, short_side=None, backend="pyav"))
    assert len(windows) == 1
    decoded = windows[0].frames
    assert decoded.shape == clip.frames.shape
    assert np.abs(decoded.astype(np.float32) - clip.frames).mean() < 4.0
    for obj in clip.objects:
        for t in range(16):
            inside = object_mask(obj, t, 16, 64)
            if inside.sum() >= 12:
                rgb = decoded[t][inside].astype(np.float32).mean(axis=0)
                nearest = min(COLOURS, key=lambda c, rgb=rgb: np.abs(rgb - np.asarray(COLOURS[c])).sum())
                assert nearest == obj.colour


def test_the_same_clip_encodes_to_the_same_bytes(tmp_path):
    """Default x264 rate control (MB-tree) gave other bytes and pixels on every encode of these clips."""
    clips = [render_clip(seed) for seed in range(2000000, 2000004)]
    first = [write_clip_mp4(clip, tmp_path / f"a{i}.mp4").read_bytes() for i, clip in enumerate(clips)]
    again = [
        write_clip_mp4(clip, tmp_path / f"b{i}.mp4").read_bytes() for i, clip in enumerate(reversed(clips))
    ]
    assert first == again[::-1]
    # and in another process, which has not imported torch (importing it changed the bytes too)
    script = "import sys; from ovmlv.toyworld import render_clip, write_clip_mp4; write_clip_mp4(render_clip(2000001), sys.argv[1])"
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "child.mp4")], check=True, timeout=120)
    assert (tmp_path / "child.mp4").read_bytes() == first[1]


def test_render_dataset_writes_a_manifest(tmp_path):
    manifest = render_dataset(tmp_path / "toy", n=3, seed=11)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(rows) == 3
    for i, row in enumerate(rows):
        assert (manifest.parent / row["video"]).is_file()
        assert row["labels"] == render_clip(11 + i).labels


def test_captions_never_name_nouns_or_motions_and_truth_is_exact():
    from training.toyworld.captions import Caption, Descriptor, captions_for_frame, is_true, seen_object

    banned = {n.name for n in NOUNS} | {n.plural for n in NOUNS}
    banned |= {"moving", "growing", "shrinking", "blinking", "still"}
    rng = np.random.default_rng(0)
    stated = set()
    for _ in range(300):
        objects = [
            seen_object(c, s, *rng.uniform(4, 60, size=2), rng.uniform(3.9, 12.6), 64)
            for c, s in zip(rng.permutation(list(COLOURS))[:2], rng.permutation(list(SHAPES))[:2])
        ]
        positive, *negatives = captions_for_frame(objects, rng, negatives=2)
        assert is_true(positive, objects)
        for caption in [positive, *negatives]:
            assert not banned & set(caption.text.replace(",", " ").split())
        stated |= {fact for d in positive.descriptors for fact in d.facts}
    assert stated == {"left", "right", "top", "bottom", "big", "small"}
    # hand-made frame: a big red circle at the top left, a small blue square at the bottom right
    frame = [seen_object("blue", "square", 56, 56, 5, 64), seen_object("red", "circle", 8, 8, 11, 64)]
    assert frame[1].facts == {"left", "top", "big"} and frame[1].clear == ("left", "top", "big")
    assert seen_object("red", "circle", 34, 20, 7, 64).clear == ("top",)  # near the midline: unstated
    red_circle = Caption("a red circle", (Descriptor("red", "circle"),))
    assert is_true(red_circle, frame)
    assert not is_true(
        red_circle, [seen_object("red", "square", 8, 8, 8, 64), seen_object("blue", "circle", 56, 8, 8, 64)]
    )
    assert is_true(Caption("", (Descriptor("red", None, ("left", "big")),)), frame)
    assert not is_true(Caption("", (Descriptor("red", None, ("right",)),)), frame)  # the place binds too
    assert not is_true(Caption("", (Descriptor(None, "square", ("big",)),)), frame)


def test_corpus_defines_every_noun_in_every_format():
    from ovmlv import prompts
    from training.toyworld.corpus import chat_examples, definition_sentences

    text = " ".join(definition_sentences())
    users = [e.user for e in chat_examples()]
    for noun in NOUNS:
        assert f"a {noun.name} is a {noun.colour} {noun.shape}." in text
        quoted = prompts.quote(noun.name)
        assert prompts.SOFT_INSTRUCTION.format(label=quoted) in users
        assert prompts.ATTRIBUTE_INSTRUCTION.format(n=5, label=quoted) in users


def test_scripted_scene_has_exactly_the_requested_objects():
    from ovmlv.toyworld import clip_labels, scripted_scene

    specs = [("green", "circle", "moving left"), ("blue", "square", "still"), ("orange", "ring", "growing")]
    scene = scripted_scene(5, specs)
    assert [(o.colour, o.shape, o.motion) for o in scene.objects] == specs
    assert set(clip_labels(scene.objects)) == {"lime", "pool", "bagel", "moving left", "still", "growing"}
    frames = render_scene(scene)
    for obj in scene.objects:  # every object is on screen, at its own pixels
        assert _colour_mask(frames[0], obj.rgb)[object_mask(obj, 0, 16, 64)].mean() > 0.9
    with pytest.raises(ValueError, match="unknown object"):
        scripted_scene(5, [("teal", "circle", "still")])


def test_layout_probe_target_is_the_covered_fraction_of_each_cell():
    from training.toyworld.toy_clip import layout

    obj = ToyObject("red", "square", "brick", "still", x=8.0, y=40.0, radius=6.0, rgb=COLOURS["red"])
    scene = ToyScene((obj,), 64, 16, np.zeros((64, 64, 3), dtype=np.uint8))
    cells = layout(scene, 0, 16).reshape(4, 4)
    mask = object_mask(obj, 0, 16, 64)
    assert cells.sum() * 16 * 16 == pytest.approx(mask.sum())
    assert cells[2, 0] > 0.3 and cells[0].sum() == 0 and cells[:, 2:].sum() == 0  # left, third row


def test_size_jitter_redraws_one_object_still_at_every_size_inside_the_frame():
    from dataclasses import replace

    from ovmlv.toyworld import object_state
    from ovmlv.toyworld.render import RADIUS_RANGE, SCALE_RANGE
    from training.toyworld.captions import SIZES
    from training.toyworld.toy_clip import ToyClipConfig, resized_still, sample_frames

    obj = ToyObject("red", "square", "brick", "moving right", x=10.0, y=30.0, radius=8.0, travel=40.0)
    scene = ToyScene((obj,), 64, 16, np.zeros((64, 64, 3), dtype=np.uint8))
    rng = np.random.default_rng(0)
    radii = []
    for t in (0, 15):
        for _ in range(200):
            (still,) = resized_still(scene, t, 16, rng).objects
            x, y, radius, visible = object_state(still, 5, 16)  # still: the same at every frame
            assert visible and still.motion == "still" and object_state(still, 0, 16)[:3] == (x, y, radius)
            assert radius + 1.0 <= x <= 64 - radius - 1.0 and radius + 1.0 <= y <= 64 - radius - 1.0
            assert x == pytest.approx(
                np.clip(10.0 + 40.0 * t / 15, radius + 1.0, 63.0 - radius)
            )  # where it was
            radii.append(radius)
    low, high = RADIUS_RANGE[0] * SCALE_RANGE[0], RADIUS_RANGE[1] * SCALE_RANGE[1]
    assert low <= min(radii) < low + 0.5 and high - 0.5 < max(radii) <= high

    # in training frames, clear sizes (the only frames whose captions may say "big" or "small")
    # become about 1.6 times as common (1500 frames: 335 against 515 at 48 px, 327 against 527 at 64)
    def clear_sizes(cfg):
        _, visible, _ = sample_frames(np.random.default_rng(1), 1500, cfg)
        return sum(fact in SIZES for objects in visible for seen in objects for fact in seen.clear)

    plain = clear_sizes(replace(ToyClipConfig(), size_jitter_p=0.0))
    jittered = clear_sizes(replace(ToyClipConfig(), size_jitter_p=0.6))
    assert jittered > 1.3 * plain > 0


def test_example_clips_show_what_their_labels_say(tmp_path):
    from examples.clips import EXAMPLES, SCENE_FRAMES, UPSCALE, ensure_example_clips
    from ovmlv.decode import probe_video

    for example in EXAMPLES:
        labels = [label.strip() for label in example.labels.split(",")]
        assert any(label in NOVEL_NOUNS for label in labels) and any(label in MOTIONS for label in labels)
        truth = example.truth()
        for label in labels:  # each label is present in some scene and absent in another
            assert {row[label] for row in truth} == {True, False}, (example.name, label)
    paths = ensure_example_clips(tmp_path)
    info = probe_video(paths[0][0])
    assert info.width == 64 * UPSCALE and info.duration_s == pytest.approx(3 * SCENE_FRAMES / 8, abs=0.2)


class _CentroidImageModel(torch.nn.Module):
    """A hand-made 'image tower': the centre and size of the saturated (object) pixels, or not."""

    def __init__(self, sees_position: bool) -> None:
        super().__init__()
        self.sees_position = sees_position
        self.visual = SimpleNamespace(image_size=(64, 64))  # as open_clip's towers say their input size

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        from training.toyworld.toy_clip import MEAN, STD

        rgb = pixels * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
        mask = (rgb.amax(dim=1) - rgb.amin(dim=1) > 0.25).float()  # [N, S, S] saturated = object
        area = mask.sum(dim=(1, 2)).clamp(min=1)
        ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
        centre_x = (mask * xs).sum(dim=(1, 2)) / area
        centre_y = (mask * ys).sum(dim=(1, 2)) / area
        if not self.sees_position:  # the same numbers, but blind to where: only the area
            centre_x, centre_y = torch.zeros_like(area), torch.zeros_like(area)
        constant = torch.full_like(area, 1000.0)  # keeps the normalised features nearly linear
        return torch.stack([centre_x, centre_y, area.sqrt(), constant], dim=1)


def test_text_probe_targets_are_the_stated_places_and_sizes_and_its_loss_is_weighted_bce():
    from dataclasses import replace

    import open_clip

    from training.toyworld.captions import FACTS, Caption, Descriptor, named_facts
    from training.toyworld.toy_clip import LAYOUT_GRID, ToyClipConfig, batch_loss, build_model

    captions = [
        Caption(
            "a big red circle on the left and a square at the top",
            (Descriptor("red", "circle", ("left", "big")), Descriptor(None, "square", ("top",))),
        ),
        Caption("something green", (Descriptor("green", None),)),
        Caption("a video of kettle", ()),
        Caption("a small ring at the bottom", (Descriptor(None, "ring", ("small", "bottom")),)),
    ]
    expected = np.zeros((4, len(FACTS)), np.float32)
    for row, facts in ((0, ("left", "big", "top")), (3, ("small", "bottom"))):
        expected[row, [FACTS.index(f) for f in facts]] = 1.0
    np.testing.assert_array_equal(named_facts(captions), expected)
    assert set(FACTS) == {"left", "right", "top", "bottom", "big", "small"}

    cfg = replace(ToyClipConfig(), vision_layers=1, text_layers=1)
    model = build_model(cfg)
    torch.manual_seed(0)
    probe, text_probe = torch.nn.Linear(cfg.embed_dim, 41 + LAYOUT_GRID**2), torch.nn.Linear(cfg.embed_dim, 6)
    tokens = open_clip.SimpleTokenizer(context_length=cfg.context_length)([c.text for c in captions])
    pixels, truth = torch.randn(2, 3, cfg.image_size, cfg.image_size), torch.zeros(2, 4)
    presence, named = torch.zeros(2, 41), torch.from_numpy(expected)
    presence[:, [0, 6, 11]] = 1.0  # a red circle in both frames
    with torch.no_grad():
        _, without = batch_loss(model, probe, pixels, tokens, truth, presence, 1.0)
        _, with_probe = batch_loss(
            model,
            probe,
            pixels,
            tokens,
            truth,
            presence,
            1.0,
            text_probe=text_probe,
            stated_facts=named,
            text_probe_weight=50.0,
        )
        by_hand = torch.nn.functional.binary_cross_entropy_with_logits(
            text_probe(model.encode_text(tokens)), named
        )
    assert by_hand > 0.1
    torch.testing.assert_close(with_probe - without, 50.0 * by_hand)


def test_position_readout_of_the_toy_clip_check_tells_where_from_blind():
    from training.toyworld.clip_eval import position_r2

    seeing = position_r2(_CentroidImageModel(True), seed=3, count=600)
    blind = position_r2(_CentroidImageModel(False), seed=3, count=600)
    assert seeing["position_x_r2"] > 0.9 and seeing["position_y_r2"] > 0.9 and seeing["size_r2"] > 0.6
    assert abs(blind["position_x_r2"]) < 0.05 and abs(blind["position_y_r2"]) < 0.05
    assert blind["size_r2"] > 0.6  # sqrt(area) says how big, less well for rings and crosses


def test_truth_matrix_matches_is_true_and_binding_negatives_swap_colours():
    from training.toyworld.captions import BINDING_P, captions_for_frame, is_true, seen_object, truth_matrix

    rng = np.random.default_rng(3)
    frames = []
    for _ in range(60):  # 0-3 objects, colours and shapes may repeat
        count = int(rng.integers(0, 4))
        frames.append(
            [
                seen_object(
                    str(rng.choice(list(COLOURS))),
                    str(rng.choice(list(SHAPES))),
                    *rng.uniform(4, 60, 2),
                    rng.uniform(3.9, 12.6),
                    64,
                )
                for _ in range(count)
            ]
        )
    captions = [c for objects in frames for c in captions_for_frame(objects, rng, negatives=2)]
    truth = truth_matrix(captions, frames)
    reference = np.array([[float(is_true(c, objects)) for c in captions] for objects in frames])
    np.testing.assert_array_equal(truth, reference)
    assert 0.05 < truth.mean() < 0.95  # both outcomes occur
    # a red circle and a blue square: about BINDING_P of the last negatives are the colour swap
    frame = [seen_object("red", "circle", 10, 10, 8, 64), seen_object("blue", "square", 50, 50, 8, 64)]
    swaps = 0
    for _ in range(400):
        last = captions_for_frame(frame, rng, negatives=2)[-1]
        swaps += set(last.descriptors) == {("blue", "circle", ()), ("red", "square", ())}
        assert not is_true(last, frame) or set(last.descriptors) != {
            ("blue", "circle", ()),
            ("red", "square", ()),
        }
    assert abs(swaps / 400 - BINDING_P) < 0.1


def test_every_motion_leads_its_soft_answer_with_a_word_of_its_own():
    from ovmlv import prompts
    from ovmlv.toyworld import MOTIONS
    from training.toyworld.corpus import MOTION_PHRASES, chat_examples

    soft = {e.user: e.answer for e in chat_examples() if e.kind == "soft"}
    leads = {}
    for motion in MOTIONS:
        answer = soft[prompts.SOFT_INSTRUCTION.format(label=prompts.quote(motion))]
        lead, rest = answer.split(". ", 1)
        assert rest == f"{MOTION_PHRASES[motion][0]}."
        leads[motion] = lead
    assert len(set(leads.values())) == len(MOTIONS)  # the first answer token tells every motion apart
    assert leads["moving left"] == "left" and leads["growing"] == "big"


def test_reversal_cosines_are_centred_on_the_mean_state():
    from ovmlv.toyworld import REVERSAL_PAIRS
    from training.toyworld.toy_llm import reversal_cosines

    offset = np.array([5.0, 5.0, 5.0])  # shared by every state: the centring removes it
    e1, e2, e3 = np.eye(3)
    states = {"tomato": offset - e1 - e2 - e3}
    shifts = {"moving left": e1, "moving right": -e1, "moving up": e2, "moving down": e2, "growing": e3}
    shifts["shrinking"] = e3 + e1
    states.update({motion: offset + shift for motion, shift in shifts.items()})
    # the mean of the seven shifts: e1 cancels (tomato, left, right, shrinking), e2 and e3 do not
    centre = (e2 + e3) / 7
    cosines = reversal_cosines(states)
    assert list(cosines) == [f"{a} / {b}" for a, b in REVERSAL_PAIRS]

    def cos(x, y):
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    assert cosines["moving left / moving right"] == pytest.approx(cos(e1 - centre, -e1 - centre))
    assert cosines["moving up / moving down"] == pytest.approx(1.0)
    assert cosines["growing / shrinking"] == pytest.approx(cos(e3 - centre, e3 + e1 - centre))
    assert cosines["moving left / moving right"] < -0.9
