"""Attribute-only captions for single toy-world frames, and when a caption is true of a frame.

The toy CLIP learns from these. A caption mentions objects by colour and/or shape ("a red
circle and a blue square", "something green", "circle shape"), sometimes with where an
object is or how big it is ("a big red circle on the left", "a square at the top"), as real
captions do; it never contains a noun or a motion word (moving, growing, shrinking,
blinking, still). Place and size words are what a label like "moving left" can mean to the
text tower; HOW an object moves is never in a caption (a single frame cannot show it). Some
captions use the library's own template with a random filler word in the label's place ("a
video of kettle, which has green colour"), so the text tower learns to read the attribute
and ignore words it has never seen, as it must for real labels.

Each caption carries its meaning (one Descriptor per object it mentions), so the loss can use
the exact truth of every (caption, frame) pair instead of assuming that only the paired
caption matches. Place and size facts are true on a simple split (left of the centre line is
"left"), but captions only state facts that are clear (well away from the line).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from ovmlv.toyworld import ToyScene, object_state
from ovmlv.toyworld import vocabulary as vocab

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
# Where an object is and how big it is: fact -> phrasings (after the object's words).
PLACES: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "at the left", "in the left half", "to the left"),
    "right": ("on the right", "at the right", "in the right half", "to the right"),
    "top": ("at the top", "up top", "near the top", "up high"),
    "bottom": ("at the bottom", "down low", "near the bottom", "down below"),
}
SIZES: dict[str, tuple[str, ...]] = {"big": ("big", "large"), "small": ("small", "little")}
OPPOSITE = {
    "left": "right",
    "right": "left",
    "top": "bottom",
    "bottom": "top",
    "big": "small",
    "small": "big",
}
PLACE_CLEAR = 0.15  # a place is stated only this far from the midline (fraction of the frame)
RADIUS_SPLIT = 7.75  # pixels at size 64: "big" above, "small" below (the middle of the static radii)
RADIUS_CLEAR = (6.0, 9.5)  # "small" is stated below the first, "big" above the second
FACT_P = 0.8  # chance that a described object also gets its clear place (and, again, its size); at 0.5, with
# place flips in 35% of hard negatives, the text tower did not learn place words (53%); at 0.8 and 60%: 100%
_BANNED = (
    {n.name for n in vocab.NOUNS}
    | {n.plural for n in vocab.NOUNS}
    | set(vocab.COLOURS)
    | set(vocab.SHAPES)
    | {word for motion in vocab.MOTIONS for word in motion.split()}
    | {word for phrases in (*PLACES.values(), *SIZES.values()) for p in phrases for word in p.split()}
)
assert not _BANNED & set(FILLERS), "a filler word is a toy-world word"
SHAPE_PERTURB_P = 0.65  # hard negatives change the shape more often: colour is learned first
BINDING_P = 0.5  # of frames with two objects that differ in colour and shape: the last negative
# swaps their colours ("a blue circle and a red square" for a red circle and a blue square). Without
# it such negatives came only from perturbing a caption that happened to name two whole objects (~5%).


class Seen(NamedTuple):
    """A visible object of a frame: what it is, what is true of it, what a caption may state."""

    colour: str
    shape: str
    facts: frozenset[str] = frozenset()  # one of left/right, top/bottom, big/small (or none)
    clear: tuple[str, ...] = ()  # the facts far enough from their split to be stated


class Descriptor(NamedTuple):
    """What a caption says about one object (None: not said)."""

    colour: str | None
    shape: str | None
    facts: tuple[str, ...] = ()  # place and size words that must also hold


def seen_object(colour: str, shape: str, x: float, y: float, radius: float, size: int) -> Seen:
    """The Seen record of an object centred at (x, y) pixels with `radius`, in a `size` frame."""
    u, v, r = x / size, y / size, radius * 64.0 / size
    facts = (
        "left" if u < 0.5 else "right",
        "top" if v < 0.5 else "bottom",
        "big" if r > RADIUS_SPLIT else "small",
    )
    clear = []
    if abs(u - 0.5) > PLACE_CLEAR:
        clear.append(facts[0])
    if abs(v - 0.5) > PLACE_CLEAR:
        clear.append(facts[1])
    if r < RADIUS_CLEAR[0] or r > RADIUS_CLEAR[1]:
        clear.append(facts[2])
    return Seen(colour, shape, frozenset(facts), tuple(clear))


def visible_objects(scene: ToyScene, t: int) -> list[Seen]:
    """The Seen records of the objects of `scene` that are visible at frame `t`."""
    seen = []
    for obj in scene.objects:
        x, y, radius, visible = object_state(obj, t, scene.num_frames)
        if visible:
            seen.append(seen_object(obj.colour, obj.shape, x, y, radius, scene.size))
    return seen


@dataclass(frozen=True)
class Caption:
    """A caption's text and its meaning (every descriptor must match some visible object)."""

    text: str
    descriptors: tuple[Descriptor, ...]


def matches(descriptor: Descriptor, obj: Seen) -> bool:
    """True if `obj` has the descriptor's colour, shape and facts (where they are said)."""
    colour, shape, facts = descriptor
    return (
        (colour is None or colour == obj.colour)
        and (shape is None or shape == obj.shape)
        and all(fact in obj.facts for fact in facts)
    )


def is_true(caption: Caption, objects: list[Seen]) -> bool:
    """True if every descriptor of `caption` matches one of the frame's visible `objects`."""
    return all(any(matches(d, obj) for obj in objects) for d in caption.descriptors)


def truth_matrix(captions: list[Caption], frames_objects: list[list[Seen]]) -> np.ndarray:
    """float32 [num_frames, num_captions]: 1 where the caption is true of the frame (`is_true`).

    Vectorised: at 128 frames x 384 captions per pretraining step, a Python loop over the
    pairs was a tenth of the step.
    """
    colours, shapes = {c: i for i, c in enumerate(vocab.COLOURS)}, {s: i for i, s in enumerate(vocab.SHAPES)}
    facts = {f: 1 << i for i, f in enumerate(OPPOSITE)}
    max_objects = max(1, max(len(objects) for objects in frames_objects))
    max_descriptors = max(1, max(len(c.descriptors) for c in captions))
    # objects [F, O]: colour, shape, fact bits; absent slots never match (colour -2)
    obj = np.full((len(frames_objects), max_objects, 3), -2, np.int64)
    for i, objects in enumerate(frames_objects):
        for j, o in enumerate(objects):
            obj[i, j] = (colours[o.colour], shapes[o.shape], sum(facts[f] for f in o.facts))
    # descriptors [C, D]: colour/shape (-1: not said), required fact bits; absent slots always hold
    desc = np.full((len(captions), max_descriptors, 3), -1, np.int64)
    present = np.zeros((len(captions), max_descriptors), bool)
    for i, caption in enumerate(captions):
        for j, (colour, shape, said) in enumerate(caption.descriptors):
            desc[i, j] = (
                -1 if colour is None else colours[colour],
                -1 if shape is None else shapes[shape],
                sum(facts[f] for f in said),
            )
            present[i, j] = True
    o = obj[:, None, None, :, :]  # [F, 1, 1, O, 3]
    d = desc[None, :, :, None, :]  # [1, C, D, 1, 3]
    match = (
        ((d[..., 0] == -1) | (d[..., 0] == o[..., 0]))
        & ((d[..., 1] == -1) | (d[..., 1] == o[..., 1]))
        & ((d[..., 2] & ~o[..., 2]) == 0)
        & (o[..., 0] != -2)
    )  # [F, C, D, O]
    holds = match.any(axis=3) | ~present[None]  # [F, C, D]
    return holds.all(axis=2).astype(np.float32)


FACTS = tuple(OPPOSITE)  # left, right, top, bottom, big, small: the text probe's outputs


def named_facts(captions: list[Caption]) -> np.ndarray:
    """float32 [C, len(FACTS)]: which places and sizes each caption states, of any object."""
    named = np.zeros((len(captions), len(FACTS)), np.float32)
    for i, caption in enumerate(captions):
        for descriptor in caption.descriptors:
            for fact in descriptor.facts:
                named[i, FACTS.index(fact)] = 1.0
    return named


def filler_word(rng: np.random.Generator) -> str:
    """A word the toy world does not use: a common word, or an invented one."""
    if rng.random() < 0.6:
        return FILLERS[int(rng.integers(len(FILLERS)))]
    while True:
        word = "".join(rng.choice(list(string.ascii_lowercase), size=int(rng.integers(3, 9))))
        if word not in _BANNED:
            return word


def phrase(descriptor: Descriptor, rng: np.random.Generator, article: bool = True) -> str:
    """Words for one descriptor, in one of several phrasings ("a big red circle on the left")."""
    colour, shape, facts = descriptor
    size = next((f for f in facts if f in SIZES), None)
    places = [f for f in facts if f in PLACES]
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
    if size:
        words = SIZES[size][int(rng.integers(len(SIZES[size])))]
        if text.startswith("a "):
            text = f"a {words} {text[2:]}"
        elif text.startswith("something "):
            text = f"something {words} and {text[len('something ') :]}"
        else:
            text = f"{words} {text}"
    for place in places:
        text += " " + PLACES[place][int(rng.integers(len(PLACES[place])))]
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
    descriptors = [Descriptor(*d) for d in descriptors]
    parts = [phrase(d, rng) for d in descriptors]
    if rng.random() < 0.3:  # the library's attribute template, filler word as the label
        text = f"a video of {filler_word(rng)}, which has {_join([phrase(d, rng, False) for d in descriptors], rng)}"
    else:
        text = PREFIXES[int(rng.integers(len(PREFIXES)))] + _join(parts, rng)
    return Caption(text, tuple(descriptors))


def positive_descriptors(
    objects: list[Seen], rng: np.random.Generator, shapes_only: bool = False, max_with_facts: int = 2
) -> list[Descriptor]:
    """Descriptors true of a frame with visible `objects`: all or some objects, fully or partly,
    some with a clear place or size (at most `max_with_facts` of them: captions stay short)."""
    order = [objects[i] for i in rng.permutation(len(objects))]
    if rng.random() < 0.5:
        order = order[: int(rng.integers(1, len(order) + 1))]
    described = []
    for obj in order:
        facts: list[str] = []
        if len([d for d in described if d.facts]) < max_with_facts:
            places = [f for f in obj.clear if f in PLACES]
            if places and rng.random() < FACT_P:
                facts.append(places[int(rng.integers(len(places)))])
            facts += [f for f in obj.clear if f in SIZES and rng.random() < FACT_P]
        if shapes_only:
            described.append(Descriptor(None, obj.shape, tuple(facts)))
            continue
        form = rng.random()
        colour = obj.colour if form < 0.8 else None
        shape = obj.shape if form < 0.6 or form >= 0.8 else None
        described.append(Descriptor(colour, shape, tuple(facts)))
    return described


def perturb(descriptors: list[Descriptor], rng: np.random.Generator) -> list[Descriptor]:
    """The descriptors with one colour, shape, place or size changed (or two objects' colours
    swapped): a hard negative (its truth is still computed, never assumed)."""
    result = list(descriptors)
    full = [i for i, d in enumerate(result) if d.colour and d.shape]
    if len(full) >= 2 and rng.random() < 0.3:
        i, j = rng.choice(full, size=2, replace=False)
        if result[i].colour != result[j].colour:
            result[i], result[j] = (
                result[i]._replace(colour=result[j].colour),
                result[j]._replace(colour=result[i].colour),
            )
            return result
    with_facts = [i for i, d in enumerate(result) if d.facts]
    if with_facts and rng.random() < 0.6:
        i = with_facts[int(rng.integers(len(with_facts)))]
        facts = list(result[i].facts)
        k = int(rng.integers(len(facts)))
        facts[k] = OPPOSITE[facts[k]]
        result[i] = result[i]._replace(facts=tuple(facts))
        return result
    i = int(rng.integers(len(result)))
    colour, shape, _ = result[i]
    if colour and (shape is None or rng.random() < 1.0 - SHAPE_PERTURB_P):
        others = [c for c in vocab.COLOURS if c != colour]
        result[i] = result[i]._replace(colour=others[int(rng.integers(len(others)))])
    else:
        others = [s for s in vocab.SHAPES if s != shape]
        result[i] = result[i]._replace(shape=others[int(rng.integers(len(others)))])
    return result


def captions_for_frame(
    objects: list[Seen], rng: np.random.Generator, negatives: int = 1, shapes_only: bool = False
) -> list[Caption]:
    """A caption true of the frame, then `negatives` perturbed ones (usually false).

    With `shapes_only`, captions name shapes only ("a circle and a square"): the first phase
    of training, where colour (learned almost at once) cannot explain the captions, so the
    image tower must learn shapes before colour can become a shortcut.
    """
    if not objects or rng.random() < 0.03:  # "a video of <filler>": true of every frame
        colours = list(vocab.COLOURS)
        picks = [Descriptor(colours[int(rng.integers(len(colours)))], None) for _ in range(negatives)]
        return [render_caption([], rng)] + [render_caption([d], rng) for d in picks]
    described = positive_descriptors(objects, rng, shapes_only)
    perturbed = [perturb(described, rng) for _ in range(negatives)]
    pairs = [(a, b) for a in objects for b in objects if a.colour < b.colour and a.shape != b.shape]
    if negatives and pairs and not shapes_only and rng.random() < BINDING_P:
        a, b = pairs[int(rng.integers(len(pairs)))]
        perturbed[-1] = [Descriptor(b.colour, a.shape), Descriptor(a.colour, b.shape)]
    return [render_caption(described, rng)] + [render_caption(d, rng) for d in perturbed]


class CachedTokenizer:
    """open_clip's SimpleTokenizer for captions, remembering each word's tokens.

    Captions repeat few whole (a batch of 384 had ~300 new ones) but are made of ~200 words, and
    open_clip tokenises word by word (its pattern never spans whitespace, its cleaning is per word
    for these plain lowercase captions), so a caption's tokens are its words' tokens in order,
    between start and end and cut to the context as open_clip cuts. Tokenising whole captions was
    a sixth of the time a pretraining batch took to make (29 of 180 ms at 128 frames).
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.words: dict[str, list[int]] = {}

    def ids(self, text: str) -> list[int]:
        """start, the words' tokens, end: the row open_clip makes of `text`, before padding."""
        ids = [self.tokenizer.sot_token_id]
        for word in text.split():
            if word not in self.words:
                self.words[word] = self.tokenizer.encode(word)
            ids += self.words[word]
        ids.append(self.tokenizer.eot_token_id)
        context = self.tokenizer.context_length
        if len(ids) > context:
            ids = ids[:context]
            ids[-1] = self.tokenizer.eot_token_id
        return ids

    def __call__(self, texts: list[str]) -> torch.Tensor:
        context = self.tokenizer.context_length
        rows = [ids + [0] * (context - len(ids)) for ids in map(self.ids, texts)]
        return torch.tensor(rows, dtype=torch.long)
