"""The toy world (DESIGN §6): coloured shapes that move, named things, rendered with numpy.

`render_clip(seed)` gives one clip (frames uint8 [16, 64, 64, 3], its objects and labels);
`render_dataset(folder, n, seed)` writes mp4 files and a manifest.jsonl; `vocabulary` holds
the colours, shapes, motions and the nouns with their base/novel split.
"""

from __future__ import annotations

from .dataset import MANIFEST_NAME, render_dataset, write_clip_mp4
from .render import (
    ToyClip,
    ToyObject,
    ToyScene,
    clip_labels,
    object_mask,
    object_state,
    render_clip,
    render_frame,
    render_scene,
    reversed_object,
    reversed_scene,
    sample_scene,
    scripted_scene,
)
from .vocabulary import (
    BASE_NOUNS,
    COLOURS,
    MOTIONS,
    NOUN_BY_NAME,
    NOUNS,
    NOVEL_NOUNS,
    REVERSAL_MOTIONS,
    REVERSAL_PAIRS,
    REVERSED_MOTION,
    SHAPES,
    Noun,
    all_labels,
    attribute_labels,
    noun_for,
)

__all__ = [
    "BASE_NOUNS",
    "COLOURS",
    "MANIFEST_NAME",
    "MOTIONS",
    "NOUNS",
    "NOUN_BY_NAME",
    "NOVEL_NOUNS",
    "REVERSAL_MOTIONS",
    "REVERSAL_PAIRS",
    "REVERSED_MOTION",
    "SHAPES",
    "Noun",
    "ToyClip",
    "ToyObject",
    "ToyScene",
    "attribute_labels",
    "clip_labels",
    "noun_for",
    "object_mask",
    "object_state",
    "render_clip",
    "render_dataset",
    "render_frame",
    "render_scene",
    "reversed_object",
    "reversed_scene",
    "sample_scene",
    "scripted_scene",
    "all_labels",
    "write_clip_mp4",
]
