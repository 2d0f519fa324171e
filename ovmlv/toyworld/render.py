"""Rendering toy-world clips: coloured shapes moving over a textured background (numpy only).

A clip is drawn from a ToyScene: a static background plus 1-3 ToyObjects, each with a
colour, a shape and a motion. Every object's geometry is a function of normalised time
u = t / (T - 1), and a motion and its reverse share the same geometry with u replaced by
1 - u: "moving left" is the exact time reversal of "moving right" (likewise up/down and
growing/shrinking). Shapes are drawn from signed distance functions with a one-pixel
anti-aliased edge. Everything is deterministic given the seed.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import vocabulary as vocab

BLINK_PERIOD = 4  # frames; on for half of it (survives sampling every other frame)
SCALE_RANGE = (0.6, 1.4)  # growing/shrinking: radius factor at the two ends of the clip
TRAVEL_RANGE = (0.38, 0.5)  # moving: distance travelled, as a fraction of the frame size
RADIUS_RANGE = (6.5, 9.0)  # object radius in pixels at size 64 (scaled with the size)
COLOUR_JITTER = 15  # +- per channel, so colours are categories rather than exact values
_MOVES = (vocab.MOVING_LEFT, vocab.MOVING_RIGHT, vocab.MOVING_UP, vocab.MOVING_DOWN)
_PAIRS = tuple((c, s) for c in vocab.COLOURS for s in vocab.SHAPES)  # every colour + shape, in order


@dataclass(frozen=True)
class ToyObject:
    """One object of a clip; positions and sizes are in pixels of the clip's frames."""

    colour: str
    shape: str
    noun: str | None  # the noun this colour + shape is ("tomato"), None if it names nothing
    motion: str  # one of vocabulary.MOTIONS
    x: float = 0.0  # centre at u = 0 of the "forward" motion (leftmost/topmost end of a move)
    y: float = 0.0
    radius: float = 8.0  # half-size at scale 1
    travel: float = 0.0  # pixels moved along the motion's axis over the clip
    blink_phase: int = 0  # frame offset of the blinking pattern
    rgb: tuple[int, int, int] = (0, 0, 0)  # the jittered fill colour


@dataclass(frozen=True)
class ToyScene:
    """Everything needed to draw a clip (except the per-frame noise)."""

    objects: tuple[ToyObject, ...]
    size: int
    num_frames: int
    background: np.ndarray  # uint8 [size, size, 3]


@dataclass
class ToyClip:
    """A rendered clip, its objects, and its labels (nouns present, then motions present)."""

    frames: np.ndarray  # uint8 [T, size, size, 3] RGB
    objects: list[ToyObject]
    labels: list[str]


def _geometry(obj: ToyObject, u: Any) -> tuple[Any, Any, Any]:
    """(centre x, centre y, radius) of `obj` at normalised time `u` (a float, or an array of them)."""
    x, y, radius = obj.x, obj.y, obj.radius
    if obj.motion in (vocab.MOVING_RIGHT, vocab.MOVING_LEFT):
        x = x + obj.travel * (u if obj.motion == vocab.MOVING_RIGHT else 1.0 - u)
    elif obj.motion in (vocab.MOVING_DOWN, vocab.MOVING_UP):
        y = y + obj.travel * (u if obj.motion == vocab.MOVING_DOWN else 1.0 - u)
    elif obj.motion in (vocab.GROWING, vocab.SHRINKING):
        grow = u if obj.motion == vocab.GROWING else 1.0 - u
        radius = radius * (SCALE_RANGE[0] + (SCALE_RANGE[1] - SCALE_RANGE[0]) * grow)
    return x, y, radius


def object_state(obj: ToyObject, t: int, num_frames: int) -> tuple[float, float, float, bool]:
    """(centre x, centre y, radius, visible) of `obj` at frame `t`."""
    x, y, radius = _geometry(obj, t / max(1, num_frames - 1))
    visible = True
    if obj.motion == vocab.BLINKING:
        visible = (t + obj.blink_phase) % BLINK_PERIOD < BLINK_PERIOD // 2
    return x, y, radius, visible


def reversed_object(obj: ToyObject, num_frames: int) -> ToyObject:
    """The object whose clip is `obj`'s clip played backwards (same geometry, reversed motion)."""
    phase = obj.blink_phase
    if obj.motion == vocab.BLINKING:  # visible'(t) = visible(T - 1 - t)
        phase = (1 - (num_frames - 1 + obj.blink_phase)) % BLINK_PERIOD
    return dataclasses.replace(obj, motion=vocab.REVERSED_MOTION[obj.motion], blink_phase=phase)


def reversed_scene(scene: ToyScene) -> ToyScene:
    """The scene played backwards: render_scene of it equals render_scene(scene)[::-1] (noise 0)."""
    objects = tuple(reversed_object(o, scene.num_frames) for o in scene.objects)
    return dataclasses.replace(scene, objects=objects)


# ---- shapes -------------------------------------------------------------------------------
def _triangle_sdf(dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Signed distance (max over edge half-planes) of an upward triangle inscribed in radius r."""
    corners = [(0.0, -r), (0.95 * r, 0.7 * r), (-0.95 * r, 0.7 * r)]
    dist = np.full(dx.shape, -np.inf)
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
        ex, ey = x1 - x0, y1 - y0
        length = float(np.hypot(ex, ey))
        nx, ny = ey / length, -ex / length
        if nx * (0.0 - x0) + ny * (0.1 * r - y0) > 0:  # orient the normal away from the centroid
            nx, ny = -nx, -ny
        dist = np.maximum(dist, nx * (dx - x0) + ny * (dy - y0))
    return dist


def shape_sdf(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Signed distance (pixels, negative inside) to `shape` of radius `r` centred at the origin."""
    if shape == "circle":
        return np.hypot(dx, dy) - r
    if shape == "ring":
        return np.abs(np.hypot(dx, dy) - 0.75 * r) - 0.25 * r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * r
    if shape == "cross":
        arm = 0.33 * r
        horizontal = np.maximum(np.abs(dx) - r, np.abs(dy) - arm)
        vertical = np.maximum(np.abs(dx) - arm, np.abs(dy) - r)
        return np.minimum(horizontal, vertical)
    if shape == "triangle":
        return _triangle_sdf(dx, dy, r)
    raise ValueError(f"unknown shape {shape!r}; known: {', '.join(vocab.SHAPES)}")


def draw_object(canvas: np.ndarray, obj: ToyObject, t: int, num_frames: int) -> None:
    """Alpha-blend `obj` at frame `t` into `canvas` (float32 [S, S, 3], modified in place)."""
    x, y, radius, visible = object_state(obj, t, num_frames)
    if not visible:
        return
    size = canvas.shape[0]
    x0, x1 = max(0, int(x - radius) - 2), min(size, int(x + radius) + 3)
    y0, y1 = max(0, int(y - radius) - 2), min(size, int(y + radius) + 3)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    alpha = np.clip(0.5 - shape_sdf(obj.shape, xs + 0.5 - x, ys + 0.5 - y, radius), 0.0, 1.0)[..., None]
    patch = canvas[y0:y1, x0:x1]
    patch *= 1.0 - alpha
    patch += alpha * np.asarray(obj.rgb, dtype=np.float32)


def object_mask(obj: ToyObject, t: int, num_frames: int, size: int) -> np.ndarray:
    """bool [size, size]: the pixels fully inside `obj` at frame `t` (before other objects)."""
    x, y, radius, visible = object_state(obj, t, num_frames)
    mask = np.zeros((size, size), dtype=bool)
    if not visible:
        return mask
    # every shape lies within `radius` of its centre: only the box around it can be inside (the
    # same box draw_object fills), computed pixel for pixel as over the whole frame
    x0, x1 = max(0, int(x - radius) - 2), min(size, int(x + radius) + 3)
    y0, y1 = max(0, int(y - radius) - 2), min(size, int(y + radius) + 3)
    if x0 < x1 and y0 < y1:
        ys, xs = _pixel_grid(size)
        box = np.s_[y0:y1, x0:x1]
        mask[box] = shape_sdf(obj.shape, xs[box] + 0.5 - x, ys[box] + 0.5 - y, radius) < -0.5
    return mask


@functools.lru_cache(maxsize=8)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs): float32 [size, size] pixel row and column indices, read-only (shared by callers)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    ys.flags.writeable = xs.flags.writeable = False
    return ys, xs


# ---- scenes -------------------------------------------------------------------------------
def make_background(rng: np.random.Generator, size: int, textured: bool = True) -> np.ndarray:
    """A static, desaturated background: smooth low-frequency texture, or plain grey."""
    if not textured:
        return np.full((size, size, 3), 128, dtype=np.uint8)
    ys, xs = (grid / size for grid in _pixel_grid(size))
    level = rng.uniform(75.0, 165.0)
    field = np.zeros((size, size), dtype=np.float32)
    for _ in range(3):
        fx, fy = rng.uniform(-3.0, 3.0, size=2)
        field += rng.uniform(5.0, 14.0) * np.sin(2 * np.pi * (fx * xs + fy * ys) + rng.uniform(0, 2 * np.pi))
    tint = rng.uniform(-8.0, 8.0, size=3).astype(np.float32)
    image = level + field[..., None] + tint
    return np.clip(image, 0, 255).astype(np.uint8)


def _sample_object(
    rng: np.random.Generator, size: int, taken: set[tuple[str, str]], spec: tuple[str, str, str] | None = None
) -> ToyObject:
    """A random object (or one with the given (colour, shape, motion) `spec`, randomly placed)."""
    scale = size / 64.0
    pairs = [pair for pair in _PAIRS if pair not in taken]
    colour, shape = pairs[int(rng.integers(len(pairs)))]
    motion = vocab.MOTIONS[int(rng.integers(len(vocab.MOTIONS)))]
    if spec is not None:
        colour, shape, motion = spec
    radius = float(rng.uniform(*RADIUS_RANGE)) * scale
    reach = radius * (SCALE_RANGE[1] if motion in (vocab.GROWING, vocab.SHRINKING) else 1.0) + 1.0
    travel = float(rng.uniform(*TRAVEL_RANGE)) * size if motion in _MOVES else 0.0
    horizontal = motion in (vocab.MOVING_LEFT, vocab.MOVING_RIGHT)
    x = float(rng.uniform(reach, size - reach - (travel if horizontal else 0.0)))
    y = float(rng.uniform(reach, size - reach - (0.0 if horizontal else travel)))
    jitter = rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3).tolist()
    rgb = tuple(min(255, max(0, v + d)) for v, d in zip(vocab.COLOURS[colour], jitter))
    blink_phase = int(rng.integers(BLINK_PERIOD))
    return ToyObject(
        colour, shape, vocab.noun_for(colour, shape), motion, x, y, radius, travel, blink_phase, rgb
    )


def _track(obj: ToyObject, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 [T] centre x, centre y and radius of `obj` at every frame: object_state's numbers
    (the same operations on every frame at once, so the same bits)."""
    u = np.arange(num_frames) / max(1, num_frames - 1)
    return tuple(np.broadcast_to(np.asarray(v, dtype=np.float64), (num_frames,)) for v in _geometry(obj, u))


def _apart(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    """True if two objects' tracks (`_track`) never overlap during the clip."""
    (ax, ay, ar), (bx, by, br) = a, b
    return not bool((np.hypot(ax - bx, ay - by) < 1.1 * (ar + br) + 1.0).any())


def sample_scene(
    seed: int,
    num_frames: int = 16,
    size: int = 64,
    num_objects: tuple[int, int] = (1, 3),
    background: bool = True,
    max_tries: int = 40,
) -> ToyScene:
    """A random scene: `num_objects` (inclusive range) non-overlapping objects, distinct colour+shape.

    An object that cannot be placed without overlap in `max_tries` attempts is left out (the
    first one always fits).
    """
    rng = np.random.default_rng(seed)
    count = int(rng.integers(num_objects[0], num_objects[1] + 1))
    objects: list[ToyObject] = []
    tracks: list[tuple[np.ndarray, ...]] = []
    for _ in range(count):
        for _ in range(max_tries):
            candidate = _sample_object(rng, size, {(o.colour, o.shape) for o in objects})
            track = _track(candidate, num_frames)
            if all(_apart(track, other) for other in tracks):
                objects.append(candidate)
                tracks.append(track)
                break
    return ToyScene(tuple(objects), size, num_frames, make_background(rng, size, background))


def scripted_scene(
    seed: int,
    specs: list[tuple[str, str, str]],
    num_frames: int = 16,
    size: int = 64,
    background: bool = True,
    max_tries: int = 200,
) -> ToyScene:
    """A scene with exactly the objects `specs` ((colour, shape, motion) each), placed at random.

    Raises:
        ValueError: an unknown colour, shape or motion, or objects that cannot be placed apart.
    """
    for colour, shape, motion in specs:
        if colour not in vocab.COLOURS or shape not in vocab.SHAPES or motion not in vocab.MOTIONS:
            raise ValueError(f"unknown object ({colour!r}, {shape!r}, {motion!r})")
    rng = np.random.default_rng(seed)
    objects: list[ToyObject] = []
    tracks: list[tuple[np.ndarray, ...]] = []
    for spec in specs:
        for _ in range(max_tries):
            candidate = _sample_object(rng, size, set(), spec)
            track = _track(candidate, num_frames)
            if all(_apart(track, other) for other in tracks):
                objects.append(candidate)
                tracks.append(track)
                break
        else:
            raise ValueError(f"could not place {spec} apart from the other objects")
    return ToyScene(tuple(objects), size, num_frames, make_background(rng, size, background))


def render_frame(scene: ToyScene, t: int) -> np.ndarray:
    """float32 [S, S, 3] in 0..255: frame `t` of the scene without noise."""
    canvas = scene.background.astype(np.float32)
    for obj in scene.objects:
        draw_object(canvas, obj, t, scene.num_frames)
    return canvas


def render_scene(scene: ToyScene, noise: float = 0.0, noise_seed: int = 0) -> np.ndarray:
    """uint8 [T, S, S, 3]: every frame, plus Gaussian noise of std `noise` (fraction of 255)."""
    frames = np.stack([render_frame(scene, t) for t in range(scene.num_frames)])
    if noise > 0:
        rng = np.random.default_rng(noise_seed)
        frames += rng.normal(0.0, noise * 255.0, size=frames.shape).astype(np.float32)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def clip_labels(
    objects: list[ToyObject] | tuple[ToyObject, ...], attribute_labels: bool = False
) -> list[str]:
    """The labels of a clip: nouns present (vocabulary order), then motions present, then optionally
    "colour shape" attribute labels of every object."""
    nouns = {o.noun for o in objects if o.noun}
    motions = {o.motion for o in objects}
    labels = [n.name for n in vocab.NOUNS if n.name in nouns] + [m for m in vocab.MOTIONS if m in motions]
    if attribute_labels:
        present = {f"{o.colour} {o.shape}" for o in objects}
        labels += [a for a in vocab.attribute_labels() if a in present]
    return labels


def render_clip(
    seed: int,
    num_frames: int = 16,
    size: int = 64,
    num_objects: tuple[int, int] = (1, 3),
    background: bool = True,
    noise: float = 0.03,
    attribute_labels: bool = False,
) -> ToyClip:
    """Render one random clip, deterministically from `seed`.

    Args:
        seed: everything (objects, motions, background, noise) follows from it.
        num_frames: T.
        size: frame width and height in pixels.
        num_objects: inclusive range of the number of objects.
        background: textured background (False: plain grey).
        noise: std of the per-pixel Gaussian noise as a fraction of 255 (0: none).
        attribute_labels: also label each object's "colour shape" ("red circle"); off by default,
            so the clip labels are exactly the nouns and motions that the experiments score.

    Returns:
        The frames, the objects, and the labels.
    """
    scene = sample_scene(seed, num_frames, size, num_objects, background)
    frames = render_scene(scene, noise, noise_seed=seed + 1_000_003)
    return ToyClip(frames, list(scene.objects), clip_labels(scene.objects, attribute_labels))
