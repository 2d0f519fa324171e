"""Zero-shot attribute retrieval of the toy CLIP on held-out frames (text prompts only).

- colour / shape / colour+shape accuracy: frames with one visible object, argmax over the
  prompts "something <colour>", "a <shape>", "a <colour> <shape>" (6-, 5- and 30-way);
- multi-object mAP: frames with 2-3 objects, the 30 "a <colour> <shape>" prompts scored
  independently, average precision per prompt over frames;
- binding accuracy: frames with exactly two objects that differ in colour and shape (say a
  red circle and a blue square), how often "a red circle" outscores "a red square" and "a
  blue square" outscores "a blue circle". A bag of attributes that ignores which colour goes
  with which shape scores 50%: one of the two comparisons is then won, the other lost;
- place / size accuracy: frames with one visible object clearly on one side (or clearly big or
  small), how often "something on the left" outscores "something on the right" when it is on
  the left, and so on for top/bottom and big/small (chance: 50%);
- position / size R^2: 2000 frames with one visible object, a least-squares linear readout of the
  object's centre (x, y) and radius from the image embedding, fitted on 80% of the frames and
  scored (R^2) on the rest. Near 0 means the embedding does not say where the object is: then
  frame embeddings, however they are compared over time, cannot tell "moving left" from
  "moving right", and a temporal branch must work the direction out inside the tower.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ovmlv.classifier import resize_short_side
from ovmlv.toyworld import COLOURS, SHAPES, object_state, render_frame, sample_scene

from .captions import OPPOSITE, PLACES, Seen, visible_objects
from .toy_clip import to_pixels


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """AP of one class (NaN without positives)."""
    if targets.sum() == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = targets[order] > 0
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def held_out_frames(
    seed: int, count: int, num_objects: tuple[int, int], size: int = 64, num_frames: int = 16
) -> tuple[np.ndarray, list[list[Seen]]]:
    """Frames (uint8 [N, S, S, 3], light noise) with their visible objects."""
    rng = np.random.default_rng(seed)
    frames, visible = [], []
    while len(frames) < count:
        scene = sample_scene(int(rng.integers(2**31)), num_frames, size, num_objects)
        t = int(rng.integers(num_frames))
        objects = visible_objects(scene, t)
        if len(objects) < num_objects[0]:
            continue
        image = render_frame(scene, t) + rng.normal(0, 0.03 * 255, size=(size, size, 3))
        frames.append(np.clip(np.rint(image), 0, 255).astype(np.uint8))
        visible.append(objects)
    return np.stack(frames), visible


@torch.no_grad()
def _embed_images(model: torch.nn.Module, frames: np.ndarray) -> torch.Tensor:
    """Normalised image embeddings [N, D] of frames [N, S, S, 3] (0..255), in chunks of about 128.

    Frames are rendered at the clips' size (64) and brought to the model's input size as the
    classifier brings a clip's frames (`resize_short_side`), so the checks see what inference sees.
    """
    size = int(model.visual.image_size[0])
    embeddings = []
    for chunk in np.array_split(frames, max(1, len(frames) // 128)):
        if chunk.shape[1] != size:
            images = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2)
            chunk = resize_short_side(images, size).permute(0, 2, 3, 1).numpy()
        embeddings.append(model.encode_image(to_pixels(chunk)))
    return F.normalize(torch.cat(embeddings), dim=-1)


@torch.no_grad()
def _embed(model: torch.nn.Module, tokenizer, frames: np.ndarray, prompts: list[str]):
    texts = F.normalize(model.encode_text(tokenizer(prompts)), dim=-1)
    return _embed_images(model, frames), texts


@torch.no_grad()
def evaluate_toy_clip(
    model: torch.nn.Module, tokenizer, count: int = 300, seed: int = 10**9
) -> dict[str, float]:
    """Attribute retrieval numbers (see module docstring) on `count` frames per test."""
    model.eval()
    colours, shapes = list(COLOURS), list(SHAPES)
    combos = [(c, s) for c in colours for s in shapes]
    prompts = (
        [f"something {c}" for c in colours] + [f"a {s}" for s in shapes] + [f"a {c} {s}" for c, s in combos]
    )
    frames, visible = held_out_frames(seed, count, (1, 1))
    images, texts = _embed(model, tokenizer, frames, prompts)
    sims = (images @ texts.T).numpy()
    nc, ns = len(colours), len(shapes)
    truth_c = np.array([colours.index(v[0][0]) for v in visible])
    truth_s = np.array([shapes.index(v[0][1]) for v in visible])
    results = {
        "colour_acc": float((sims[:, :nc].argmax(1) == truth_c).mean()),
        "shape_acc": float((sims[:, nc : nc + ns].argmax(1) == truth_s).mean()),
        "combo_acc": float((sims[:, nc + ns :].argmax(1) == truth_c * ns + truth_s).mean()),
    }
    frames, visible = held_out_frames(seed + 1, count, (2, 3))
    images, texts = _embed(model, tokenizer, frames, [f"a {c} {s}" for c, s in combos])
    sims = (images @ texts.T).numpy()
    targets = np.array([[float(pair in [o[:2] for o in v]) for pair in combos] for v in visible])
    aps = [average_precision(sims[:, j], targets[:, j]) for j in range(len(combos))]
    results["multi_object_map"] = float(np.nanmean(aps))
    wins, total = 0, 0
    for row, objects in zip(sims, visible):
        (c1, s1), (c2, s2) = objects[0][:2], objects[1][:2]
        if len(objects) != 2 or c1 == c2 or s1 == s2:
            continue
        score = {pair: row[combos.index(pair)] for pair in ((c1, s1), (c2, s2), (c1, s2), (c2, s1))}
        wins += int(score[(c1, s1)] > score[(c1, s2)]) + int(score[(c2, s2)] > score[(c2, s1)])
        total += 2
    results["binding_acc"] = wins / max(1, total)
    results.update(fact_accuracy(model, tokenizer, count, seed + 2))
    results.update(position_r2(model, seed + 3))
    return results


FACT_PROMPTS = {
    "left": "something on the left",
    "right": "something on the right",
    "top": "something at the top",
    "bottom": "something at the bottom",
    "big": "something big",
    "small": "something small",
}


@torch.no_grad()
def fact_accuracy(model: torch.nn.Module, tokenizer, count: int, seed: int) -> dict[str, float]:
    """Place and size accuracy on one-object frames where the fact is clear (see the docstring)."""
    frames, visible = held_out_frames(seed, count, (1, 1))
    names = list(FACT_PROMPTS)
    images, texts = _embed(model, tokenizer, frames, [FACT_PROMPTS[n] for n in names])
    sims = (images @ texts.T).numpy()
    wins = {"place_acc": [], "size_acc": []}
    for row, objects in zip(sims, visible):
        for fact in objects[0].clear:
            key = "place_acc" if fact in PLACES else "size_acc"
            wins[key].append(float(row[names.index(fact)] > row[names.index(OPPOSITE[fact])]))
    return {key: float(np.mean(v)) if v else float("nan") for key, v in wins.items()}


@torch.no_grad()
def position_r2(model: torch.nn.Module, seed: int, count: int = 2000, size: int = 64) -> dict[str, float]:
    """Held-out R^2 of a linear readout of one object's centre and radius from the image embedding
    (`count` frames: enough that the 129-parameter readout does not fit noise)."""
    rng = np.random.default_rng(seed)
    frames, targets = [], []
    while len(frames) < count:
        scene = sample_scene(int(rng.integers(2**31)), 16, size, (1, 1))
        t = int(rng.integers(16))
        x, y, radius, visible = object_state(scene.objects[0], t, 16)
        if visible:
            frames.append(render_frame(scene, t))
            targets.append([x, y, radius])
    images = _embed_images(model, np.stack(frames))
    design = torch.cat([images, torch.ones(len(images), 1)], dim=1).double()
    truth = torch.tensor(targets, dtype=torch.float64)
    split = int(0.8 * count)
    weights = torch.linalg.lstsq(design[:split], truth[:split]).solution
    residual = ((design[split:] @ weights - truth[split:]) ** 2).sum(dim=0)
    spread = ((truth[split:] - truth[split:].mean(dim=0)) ** 2).sum(dim=0)
    r2 = (1 - residual / spread).tolist()
    return {"position_x_r2": r2[0], "position_y_r2": r2[1], "size_r2": r2[2]}
