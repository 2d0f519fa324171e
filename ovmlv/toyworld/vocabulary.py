"""The toy world's vocabulary: colours, shapes, motions, and nouns defined by colour + shape.

Every noun is exactly one (colour, shape) pair, and no pair names two nouns. The nouns are
split into BASE_NOUNS (training labels of the open-vocabulary fine-tuning) and NOVEL_NOUNS
(never training labels). Every colour and every shape occurs among both, so a novel noun is
a new COMBINATION of attributes the models have seen: recognising it needs the knowledge
"a lime is a green circle", which only the toy LLM has (the toy CLIP never sees a noun).

Six (colour, shape) pairs name no noun; objects drawn with them are distractors.
"""

from __future__ import annotations

from dataclasses import dataclass

# Saturated, well separated RGB colours (they survive yuv420p chroma subsampling).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "green": (40, 175, 55),
    "blue": (40, 80, 230),
    "yellow": (240, 220, 40),
    "purple": (150, 55, 200),
    "orange": (250, 140, 25),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring")
# Adjectives for the shapes, used by the toy LLM's text corpus ("limes are green and round").
SHAPE_ADJECTIVES: dict[str, str] = {
    "circle": "round",
    "square": "square",
    "triangle": "triangular",
    "cross": "cross-shaped",
    "ring": "ring-shaped",
}

MOVING_LEFT, MOVING_RIGHT = "moving left", "moving right"
MOVING_UP, MOVING_DOWN = "moving up", "moving down"
GROWING, SHRINKING = "growing", "shrinking"
BLINKING, STILL = "blinking", "still"
MOTIONS: tuple[str, ...] = (
    MOVING_LEFT,
    MOVING_RIGHT,
    MOVING_UP,
    MOVING_DOWN,
    GROWING,
    SHRINKING,
    BLINKING,
    STILL,
)
# Each motion and the motion its exact time reversal shows (blinking/still reverse to themselves).
REVERSED_MOTION: dict[str, str] = {
    MOVING_LEFT: MOVING_RIGHT,
    MOVING_RIGHT: MOVING_LEFT,
    MOVING_UP: MOVING_DOWN,
    MOVING_DOWN: MOVING_UP,
    GROWING: SHRINKING,
    SHRINKING: GROWING,
    BLINKING: BLINKING,
    STILL: STILL,
}
# The pairs that frame-order-blind pooling cannot tell apart (they test the temporal branch).
REVERSAL_PAIRS: tuple[tuple[str, str], ...] = (
    (MOVING_LEFT, MOVING_RIGHT),
    (MOVING_UP, MOVING_DOWN),
    (GROWING, SHRINKING),
)
REVERSAL_MOTIONS: tuple[str, ...] = tuple(
    label for pair in REVERSAL_PAIRS for label in pair
)  # flat, pair by pair


@dataclass(frozen=True)
class Noun:
    """A named thing of the toy world: one colour and one shape."""

    name: str
    colour: str
    shape: str
    plural: str

    @property
    def description(self) -> str:
        """ "red circle"."""
        return f"{self.colour} {self.shape}"


NOUNS: tuple[Noun, ...] = (
    Noun("tomato", "red", "circle", "tomatoes"),
    Noun("brick", "red", "square", "bricks"),
    Noun("ambulance", "red", "cross", "ambulances"),
    Noun("lifebuoy", "red", "ring", "lifebuoys"),
    Noun("lime", "green", "circle", "limes"),
    Noun("lawn", "green", "square", "lawns"),
    Noun("tree", "green", "triangle", "trees"),
    Noun("pharmacy", "green", "cross", "pharmacies"),
    Noun("wreath", "green", "ring", "wreaths"),
    Noun("blueberry", "blue", "circle", "blueberries"),
    Noun("pool", "blue", "square", "pools"),
    Noun("sail", "blue", "triangle", "sails"),
    Noun("hospital", "blue", "cross", "hospitals"),
    Noun("lemon", "yellow", "circle", "lemons"),
    Noun("cheese", "yellow", "square", "cheeses"),
    Noun("nacho", "yellow", "triangle", "nachos"),
    Noun("plum", "purple", "circle", "plums"),
    Noun("gift", "purple", "square", "gifts"),
    Noun("prism", "purple", "triangle", "prisms"),
    Noun("onion", "purple", "ring", "onions"),
    Noun("basketball", "orange", "circle", "basketballs"),
    Noun("crate", "orange", "square", "crates"),
    Noun("cone", "orange", "triangle", "cones"),
    Noun("bagel", "orange", "ring", "bagels"),
)
NOVEL_NOUNS: tuple[str, ...] = ("brick", "lime", "pharmacy", "sail", "cheese", "onion", "cone", "bagel")
BASE_NOUNS: tuple[str, ...] = tuple(n.name for n in NOUNS if n.name not in NOVEL_NOUNS)

NOUN_BY_NAME: dict[str, Noun] = {n.name: n for n in NOUNS}
_NOUN_BY_PAIR: dict[tuple[str, str], str] = {(n.colour, n.shape): n.name for n in NOUNS}


def noun_for(colour: str, shape: str) -> str | None:
    """The noun drawn as a `colour` `shape`, or None when that pair names nothing."""
    return _NOUN_BY_PAIR.get((colour, shape))


def all_labels() -> list[str]:
    """All clip labels of the toy world: the nouns, then the motions."""
    return [n.name for n in NOUNS] + list(MOTIONS)


def attribute_labels() -> list[str]:
    """Every "colour shape" pair ("red circle"), the optional attribute labels of a clip."""
    return [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]


def check_vocabulary() -> None:
    """Raise ValueError unless the vocabulary has the properties the experiments rely on."""
    pairs = [(n.colour, n.shape) for n in NOUNS]
    if len(set(pairs)) != len(pairs):
        raise ValueError("two nouns share a colour + shape")
    for noun in NOUNS:
        if noun.colour not in COLOURS or noun.shape not in SHAPES:
            raise ValueError(f"{noun.name}: unknown colour or shape")
    unknown = set(NOVEL_NOUNS) - set(NOUN_BY_NAME)
    if unknown:
        raise ValueError(f"unknown novel nouns {sorted(unknown)}")
    for group_name, group in (("base", BASE_NOUNS), ("novel", NOVEL_NOUNS)):
        nouns = [NOUN_BY_NAME[name] for name in group]
        missing = (set(COLOURS) - {n.colour for n in nouns}) | (set(SHAPES) - {n.shape for n in nouns})
        if missing:
            raise ValueError(f"{group_name} nouns lack {sorted(missing)}")
