"""Writing toy-world clips as mp4 files and whole datasets as manifests.

A manifest is JSONL, one `{"video": relative path, "labels": [...]}` per line (the format
that training/ reads), next to the `videos/` folder it refers to.
"""

from __future__ import annotations

import json
import logging
import os
from fractions import Fraction
from pathlib import Path

from .render import ToyClip, render_clip

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"


def write_clip_mp4(clip: ToyClip, path: str | os.PathLike, fps: int = 8, crf: int = 18) -> Path:
    """Encode the clip's frames as H.264 (yuv420p) mp4 at `fps` frames per second.

    Args:
        clip: the clip (frame height and width must be even for yuv420p).
        path: the output file (parent folders are created).
        fps: frame rate; 16 frames at 8 fps make a 2 s clip (one default window).
        crf: x264 quality (lower is better; 18 keeps the small shapes' colours clean).

    The file is a function of the frames and these settings: the same clip encodes to the same bytes.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = clip.frames
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs an even frame size, got {width}x{height}")
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        # mbtree=0: x264's macroblock-tree rate control made the bytes, and the decoded pixels (by up to
        # 25 levels), differ from one encode of the same frames to the next, even on one thread, so
        # the toy world's data was not a function of its seed; without it every encode is identical
        options = {"crf": str(crf), "x264-params": "mbtree=0"}
        stream = container.add_stream("libx264", rate=Fraction(fps), options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def render_dataset(
    out_dir: str | os.PathLike,
    n: int,
    seed: int,
    *,
    num_frames: int = 16,
    size: int = 64,
    num_objects: tuple[int, int] = (1, 3),
    background: bool = True,
    noise: float = 0.03,
    attribute_labels: bool = False,
    fps: int = 8,
    manifest_name: str = MANIFEST_NAME,
) -> Path:
    """Render `n` clips (seeds `seed`, `seed + 1`, ...) as mp4 files and write their manifest.

    Args:
        out_dir: the dataset folder; clips go to `out_dir/videos/`, the manifest to `out_dir`.
        n: number of clips.
        seed: seed of the first clip; clip i uses `seed + i`.
        num_frames, size, num_objects, background, noise, attribute_labels: see `render_clip`.
        fps: frame rate of the files.
        manifest_name: file name of the manifest inside `out_dir`.

    Returns:
        The manifest's path.
    """
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    manifest = out_dir / manifest_name
    with open(manifest, "w", encoding="utf-8") as handle:
        for i in range(n):
            clip = render_clip(seed + i, num_frames, size, num_objects, background, noise, attribute_labels)
            relative = f"videos/clip_{seed + i:07d}.mp4"
            write_clip_mp4(clip, out_dir / relative, fps=fps)
            handle.write(json.dumps({"video": relative, "labels": clip.labels}) + "\n")
    logger.info("wrote %d clips and %s", n, manifest)
    return manifest
