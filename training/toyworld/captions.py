"""Attribute-only captions for single toy-world frames, and when a caption is true of a frame.

The toy CLIP learns from these. A caption mentions objects by colour and/or shape ("a red
circle and a blue square", "something green", "circle shape"); it never contains a noun or
a motion word. Some captions use the library's own template with a random filler word in
the label's place ("a video of kettle, which has green colour"), so the text tower learns
to read the attribute and ignore words it has never seen, as it must for real labels.

Each caption carries its meaning (a tuple of (colour|None, shape|None) descriptors), so the
loss can use the exact truth of every (caption, frame) pair instead of assuming that only
the paired caption matches.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

from ovmlv.toyworld import vocabulary as vocab

Descriptor = tuple[str | None, str | None]  # (colour or None, shape or None)

PREFIXES = (
    "",
    "",
    "a picture of ",
    "a photo of ",
    "an image of ",
    "a video of ",
    "a frame with ",
    "there is ",
)
# Real-looking filler words for the label slot; nouns, colours, shapes and motion words excluded.
FILLERS = (
    "person dog cat car house kitchen music street city garden table chair window door river "
    "mountain beach forest road bicycle guitar piano dancer runner player crowd party game ball "
    "phone computer book paper cup bottle bread coffee train plane boat bird horse fish flower "
    "rain snow wind fire smoke light shadow sky cloud night morning evening people child teacher "
    "painting cooking swimming jumping talking reading singing walking climbing driving kettle "
    "lamp clock pencil spoon shoe hat coat bag box stone wall bridge tower field farm market"
).split()
_BANNED = (
    {n.name for n in vocab.NOUNS}
    | {n.plural for n in vocab.NOUNS}
    | set(vocab.COLOURS)
    | set(vocab.SHAPES)
    | {word for motion in vocab.MOTIONS for word in motion.split()}
)
assert not _BANNED & set(FILLERS), "a filler word is a toy-world word"
SHAPE_PERTURB_P = 0.65  # hard negatives change the shape more often: colour is learned first


@dataclass(frozen=True)
class Caption:
    """A caption's text and its meaning (every descriptor must match some visible object)."""

    text: str
    descriptors: tuple[Descriptor, ...]


def is_true(caption: Caption, objects: list[Descriptor]) -> bool:
    """True if every descriptor of `caption` matches one of the frame's visible `objects`."""
    return all(
        any((c is None or c == oc) and (s is None or s == os_) for oc, os_ in objects)
        for c, s in caption.descriptors
    )


def truth_matrix(captions: list[Caption], frames_objects: list[list[Descriptor]]) -> np.ndarray:
    """float32 [num_frames, num_captions]: 1 where the caption is true of the frame."""
    return np.array(
        [[float(is_true(caption, objects)) for caption in captions] for objects in frames_objects],
        dtype=np.float32,
    )


def filler_word(rng: np.random.Generator) -> str:
    """A word the toy world does not use: a common word, or an invented one."""
    if rng.random() < 0.6:
        return FILLERS[int(rng.integers(len(FILLERS)))]
    while True:
        word = "".join(rng.choice(list(string.ascii_lowercase), size=int(rng.integers(3, 9))))
        if word not in _BANNED:
            return word


def phrase(descriptor: Descriptor, rng: np.random.Generator, article: bool = True) -> str:
    """Words for one descriptor, in one of several phrasings."""
    colour, shape = descriptor
    pick = int(rng.integers(4))
    if colour and shape:
        forms = (
            f"a {colour} {shape}",
            f"{colour} {shape}",
            f"a {shape} that is {colour}",
            f"a {colour} {shape}",
        )
    elif colour:
        colour_word = "colour" if rng.random() < 0.7 else "color"
        forms = (f"something {colour}", f"a {colour} object", f"{colour} {colour_word}", f"a {colour} thing")
    elif shape:
        forms = (f"a {shape}", f"{shape} shape", f"a {shape} shape", f"a {shape}")
    else:
        raise ValueError("a descriptor needs a colour or a shape")
    text = forms[pick]
    if not article and text.startswith("a "):
        text = text[2:]
    return text


def _join(parts: list[str], rng: np.random.Generator) -> str:
    if len(parts) == 1:
        return parts[0]
    if rng.random() < 0.5:
        return " and ".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def render_caption(descriptors: list[Descriptor], rng: np.random.Generator) -> Caption:
    """A caption saying `descriptors` (in the given order) in a random style."""
    if not descriptors:
        return Caption(f"a video of {filler_word(rng)}", ())
    parts = [phrase(d, rng) for d in descriptors]
    if rng.random() < 0.3:  # the library's attribute template, filler word as the label
        text = f"a video of {filler_word(rng)}, which has {_join([phrase(d, rng, False) for d in descriptors], rng)}"
    else:
        text = PREFIXES[int(rng.integers(len(PREFIXES)))] + _join(parts, rng)
    return Caption(text, tuple(descriptors))


def positive_descriptors(
    objects: list[Descriptor], rng: np.random.Generator, shapes_only: bool = False
) -> list[Descriptor]:
    """Descriptors true of a frame with visible `objects`: all or some objects, fully or partly."""
    order = [objects[i] for i in rng.permutation(len(objects))]
    if rng.random() < 0.5:
        order = order[: int(rng.integers(1, len(order) + 1))]
    if shapes_only:
        return [(None, shape) for _, shape in order]
    described = []
    for colour, shape in order:
        form = rng.random()
        described.append((colour, shape) if form < 0.6 else (colour, None) if form < 0.8 else (None, shape))
    return described


def perturb(descriptors: list[Descriptor], rng: np.random.Generator) -> list[Descriptor]:
    """The descriptors with one colour or shape changed (or two objects' colours swapped): a
    hard negative (its truth is still computed, never assumed)."""
    result = list(descriptors)
    full = [i for i, (c, s) in enumerate(result) if c and s]
    if len(full) >= 2 and rng.random() < 0.3:
        i, j = rng.choice(full, size=2, replace=False)
        (ci, si), (cj, sj) = result[i], result[j]
        if ci != cj:
            result[i], result[j] = (cj, si), (ci, sj)
            return result
    i = int(rng.integers(len(result)))
    colour, shape = result[i]
    if colour and (shape is None or rng.random() < 1.0 - SHAPE_PERTURB_P):
        others = [c for c in vocab.COLOURS if c != colour]
        result[i] = (others[int(rng.integers(len(others)))], shape)
    else:
        others = [s for s in vocab.SHAPES if s != shape]
        result[i] = (colour, others[int(rng.integers(len(others)))])
    return result


def captions_for_frame(
    objects: list[Descriptor], rng: np.random.Generator, negatives: int = 1, shapes_only: bool = False
) -> list[Caption]:
    """A caption true of the frame, then `negatives` perturbed ones (usually false).

    With `shapes_only`, captions name shapes only ("a circle and a square"): the first phase
    of training, where colour (learned almost at once) cannot explain the captions, so the
    image tower must learn shapes before colour can become a shortcut.
    """
    if not objects or rng.random() < 0.03:  # "a video of <filler>": true of every frame
        colours = list(vocab.COLOURS)
        picks = [(colours[int(rng.integers(len(colours)))], None) for _ in range(negatives)]
        return [render_caption([], rng)] + [render_caption([d], rng) for d in picks]
    described = positive_descriptors(objects, rng, shapes_only)
    return [render_caption(described, rng)] + [
        render_caption(perturb(described, rng), rng) for _ in range(negatives)
    ]
