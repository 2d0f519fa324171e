"""Tests for ovmlv.decode: windows, time sampling, both backends, bad files, memory, real clips.

Frames written by ``moving_square_frames`` carry their frame number, so every test checks
WHICH frame came back, against indices worked out by hand.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest

from ovmlv import decode_pyav
from ovmlv.decode import (
    VideoDecodeError,
    format_duration,
    iter_windows,
    output_size,
    probe_video,
    sample_times,
    window_bounds,
)
from ovmlv.decode_decord import decord_available

from video_fixtures import (
    corner_is_red,
    corrupt_packets,
    moving_square_frames,
    read_frame_index,
    replace_codec_tag,
    truncate_file,
    write_audio_only,
    write_clip,
    write_empty,
    write_long_clip,
    write_no_frames,
    write_text_as_mp4,
)

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared" / "videos"
BACKENDS = [
    "pyav",
    pytest.param("decord", marks=pytest.mark.skipif(not decord_available(), reason="no decord")),
]


def indices(window) -> list[int]:
    return [read_frame_index(frame) for frame in window.frames]


def one_line_error(call, *args, **kwargs) -> str:
    """Run ``call`` (iterating what it returns), expect a VideoDecodeError; return its message."""
    with pytest.raises(VideoDecodeError) as info:
        result = call(*args, **kwargs)
        if call is iter_windows:
            list(result)
    message = str(info.value)
    assert message and "\n" not in message and message == message.strip()
    return message


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """The small synthetic clips most tests share (written once, about 1 s in all)."""
    folder = tmp_path_factory.mktemp("clips")
    frames = moving_square_frames(60, 48, 64)
    out = {
        "plain": write_clip(folder / "plain.mp4", frames[:30], fps=10),  # 3 s
        "vfr": write_clip(folder / "vfr.mp4", frames[:8], pts_s=[0, 0.1, 0.15, 0.5, 0.55, 1.2, 1.25, 1.3]),
        "single": write_clip(folder / "single.mp4", frames[:1], fps=10),
        "odd": write_clip(folder / "odd.mp4", moving_square_frames(20, 97, 161), codec="mpeg4"),
        "gop10": write_clip(folder / "gop10.mp4", frames, fps=10, options={"g": "10"}),  # 6 s
        "nofaststart": write_clip(folder / "nofaststart.mp4", frames[:30], faststart=False),
        "with_audio": write_clip(folder / "with_audio.mp4", frames[:30], with_audio=True),
    }
    for rotation in (90, 180, 270):
        out[f"rot{rotation}"] = write_clip(folder / f"rot{rotation}.mp4", frames[:20], rotation=rotation)
    return out


# --- window arithmetic -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "window", "stride", "expected"),
    [
        (10.0, 2.0, None, [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]),
        (10.4, 2.0, None, [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]),  # 0.4 s < a quarter: dropped
        (10.5, 2.0, None, [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 10.5)]),  # exactly a quarter: kept
        (1.3, 2.0, None, [(0, 1.3)]),  # shorter than one window: one window, the whole clip
        (2.0, 2.0, None, [(0, 2)]),
        (0.1, 2.0, None, [(0, 0.1)]),
        (5.0, 2.0, 1.0, [(0, 2), (1, 3), (2, 4), (3, 5)]),  # overlap: stop at the first that reaches the end
        (6.0, 2.0, 2.5, [(0, 2), (2.5, 4.5), (5, 6)]),  # gaps
        (3.0, 1.0, None, [(0, 1), (1, 2), (2, 3)]),
    ],
)
def test_window_bounds(duration, window, stride, expected):
    bounds = window_bounds(duration, window, stride)
    np.testing.assert_allclose(np.array(bounds), np.array(expected, dtype=float), atol=1e-9)


@pytest.mark.parametrize(
    ("duration", "window", "stride"), [(0, 2, None), (-1, 2, None), (5, 0, None), (5, 2, 0)]
)
def test_window_bounds_rejects_nonsense(duration, window, stride):
    with pytest.raises(ValueError):
        window_bounds(duration, window, stride)


def test_sample_times_are_centres_of_equal_parts():
    assert sample_times(0.0, 2.0, 8) == pytest.approx(
        [0.125, 0.375, 0.625, 0.875, 1.125, 1.375, 1.625, 1.875]
    )
    assert sample_times(1.0, 1.3, 3) == pytest.approx([1.05, 1.15, 1.25])
    assert sample_times(4.0, 6.0, 1) == pytest.approx([5.0])
    assert sample_times(4.0, 6.0, 1).dtype == np.float64
    with pytest.raises(ValueError):
        sample_times(0.0, 1.0, 0)


def test_output_size_and_duration_format():
    assert output_size(640, 360, 224) == (398, 224)
    assert output_size(360, 640, 224) == (224, 398)
    assert output_size(161, 97, 224) == (372, 224)
    assert output_size(161, 97, None) == (161, 97)
    assert [format_duration(s) for s in (754.9, 600, 59, 3725)] == ["12:34", "10:00", "0:59", "1:02:05"]


# --- sampling in time --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_plain_clip_windows_and_frames(clips, backend):
    info = probe_video(clips["plain"])
    assert (info.width, info.height, info.rotation, info.num_frames, info.codec) == (64, 48, 0, 30, "h264")
    assert info.fps == pytest.approx(10) and info.duration_s == pytest.approx(3.0)
    windows = list(iter_windows(clips["plain"], short_side=None, backend=backend))
    assert [(w.index, w.start_s, w.end_s) for w in windows] == [(0, 0.0, 2.0), (1, 2.0, 3.0)]
    # Window 0 targets 0.125, 0.375, ... 1.875 s; frame i is shown from i / 10 s.
    assert indices(windows[0]) == [1, 3, 6, 8, 11, 13, 16, 18]
    # Window 1 (2 to 3 s) targets 2.0625, 2.1875, 2.3125, ... 2.9375 s.
    assert indices(windows[1]) == [20, 21, 23, 24, 25, 26, 28, 29]
    assert windows[0].frame_times == pytest.approx(np.array([1, 3, 6, 8, 11, 13, 16, 18]) / 10, abs=1e-4)
    assert windows[0].frames.dtype == np.uint8 and windows[0].frames.shape == (8, 48, 64, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_audio_track_is_ignored(clips, backend):
    with av.open(str(clips["with_audio"])) as container:
        assert [stream.type for stream in container.streams] == ["video", "audio"]
    windows = list(iter_windows(clips["with_audio"], short_side=None, backend=backend))
    assert [indices(w) for w in windows] == [[1, 3, 6, 8, 11, 13, 16, 18], [20, 21, 23, 24, 25, 26, 28, 29]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate_uses_real_timestamps(clips, backend):
    info = probe_video(clips["vfr"])
    assert info.duration_s == pytest.approx(1.4)
    (window,) = iter_windows(clips["vfr"], short_side=None, backend=backend)
    # Targets (k + 0.5) * 1.4 / 8 = 0.0875, 0.2625, 0.4375, 0.6125, 0.7875, 0.9625, 1.1375, 1.3125
    # against frames shown at 0, 0.1, 0.15, 0.5, 0.55, 1.2, 1.25, 1.3 s. (A constant-rate
    # reading would give 0..7.)
    assert indices(window) == [0, 2, 2, 4, 4, 4, 4, 7]
    assert window.frame_times == pytest.approx([0, 0.15, 0.15, 0.55, 0.55, 0.55, 0.55, 1.3], abs=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_frame_clip_is_one_window_of_that_frame(clips, backend):
    windows = list(iter_windows(clips["single"], frames_per_window=4, short_side=None, backend=backend))
    assert len(windows) == 1 and windows[0].start_s == 0
    assert indices(windows[0]) == [0, 0, 0, 0]
    assert windows[0].frame_times == pytest.approx([0, 0, 0, 0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_odd_dimensions(clips, backend):
    info = probe_video(clips["odd"])
    assert (info.width, info.height, info.codec) == (161, 97, "mpeg4")
    native = next(iter_windows(clips["odd"], short_side=None, backend=backend))
    resized = next(iter_windows(clips["odd"], backend=backend))
    assert native.frames.shape == (8, 97, 161, 3) and resized.frames.shape == (8, 224, 372, 3)
    assert indices(native) == indices(resized) == [1, 3, 6, 8, 11, 13, 16, 18]


@pytest.mark.parametrize("rotation", [90, 180, 270])
@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_metadata_gives_upright_frames(clips, rotation, backend):
    path = clips[f"rot{rotation}"]
    with av.open(str(path)) as container:  # the stored picture really is turned
        stored = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert not corner_is_red(stored, "top_left")
    info = probe_video(path)
    assert (info.rotation, info.width, info.height) == (rotation, 64, 48)
    for short_side, shape in [(None, (48, 64, 3)), (96, (96, 128, 3))]:
        window = next(iter_windows(path, short_side=short_side, backend=backend))
        assert window.frames.shape[1:] == shape
        for frame in window.frames:
            assert corner_is_red(frame, "top_left")
            assert not any(corner_is_red(frame, c) for c in ("top_right", "bottom_left", "bottom_right"))
        assert indices(window) == [1, 3, 6, 8, 11, 13, 16, 18]


@pytest.mark.skipif(not decord_available(), reason="no decord")
@pytest.mark.parametrize("short_side", [None, 224])
def test_backends_agree(clips, short_side):
    by_backend = {
        backend: list(iter_windows(clips["gop10"], short_side=short_side, backend=backend))
        for backend in ("decord", "pyav")
    }
    assert len(by_backend["decord"]) == len(by_backend["pyav"]) == 3
    for a, b in zip(by_backend["decord"], by_backend["pyav"]):
        assert a.frames.shape == b.frames.shape
        np.testing.assert_allclose(a.frame_times, b.frame_times, atol=1e-4)
        diff = np.abs(a.frames.astype(np.int16) - b.frames.astype(np.int16))
        # Same FFmpeg decoder: identical at the stored size. Resized, the two libswscale
        # set-ups differ a little at sharp edges (measured: max 38, mean 0.47).
        assert diff.max() <= (2 if short_side is None else 64) and diff.mean() < 1.5


def test_pyav_seeks_over_long_gaps_and_lands_on_the_right_frames(clips, monkeypatch):
    seeks = []
    original = decode_pyav.PyAVFrameSource._seek
    monkeypatch.setattr(
        decode_pyav.PyAVFrameSource, "_seek", lambda self, t: seeks.append(t) or original(self, t)
    )
    (window,) = iter_windows(
        clips["gop10"], window_s=6.0, frames_per_window=4, short_side=None, backend="pyav"
    )
    # Targets 0.75, 2.25, 3.75, 5.25 s -> frames 7, 22, 37, 52. Keyframes every 1 s: seeking to
    # 2 s and 5 s skips 1.2 s each; the keyframe at 3 s is only 0.7 s ahead (< 1 s): no seek.
    assert indices(window) == [7, 22, 37, 52]
    assert len(seeks) == 2


# --- bad input -----------------------------------------------------------------------------


def test_missing_empty_and_not_a_video(tmp_path):
    assert "not found" in one_line_error(probe_video, tmp_path / "nope.mp4")
    assert "not a file" in one_line_error(probe_video, tmp_path)
    message = one_line_error(probe_video, write_empty(tmp_path / "empty.mp4"))
    assert "'empty.mp4'" in message and "empty" in message.replace("'empty.mp4'", "")
    message = one_line_error(iter_windows, write_text_as_mp4(tmp_path / "notes.mp4"))
    assert "'notes.mp4'" in message and "not a video file" in message


def test_audio_only_unknown_codec_and_no_frames(tmp_path, clips):
    message = one_line_error(probe_video, write_audio_only(tmp_path / "song.mp4"))
    assert "'song.mp4'" in message and "audio only" in message and "no video stream" in message
    unknown = replace_codec_tag(clips["plain"], tmp_path / "alien.mp4")
    assert "unknown or unsupported video codec" in one_line_error(iter_windows, unknown)
    assert "has no frames" in one_line_error(probe_video, write_no_frames(tmp_path / "hollow.avi"))


def test_truncated_files(tmp_path, clips, caplog):
    # Without "faststart" the index is at the end: half a file cannot be opened at all.
    message = one_line_error(probe_video, truncate_file(clips["nofaststart"], tmp_path / "half.mp4", 0.5))
    assert "'half.mp4'" in message and "damaged or incomplete" in message
    # With the index first, the header survives but no packet is complete: nothing decodes.
    data = clips["plain"].read_bytes()
    header_only = truncate_file(
        clips["plain"], tmp_path / "header.mp4", (data.index(b"mdat") + 40) / len(data)
    )
    assert "no frame could be decoded" in one_line_error(probe_video, header_only)
    # Cut in the second half of the data: the frames that arrived come back, the rest is dropped.
    partial = truncate_file(clips["gop10"], tmp_path / "partial.mp4", 0.75)
    assert probe_video(partial).duration_s == pytest.approx(6.0)  # the header still says 6 s
    windows = list(iter_windows(partial, short_side=None))
    assert len(windows) == 2 and "truncated" in caplog.text  # the data stops in the 3rd window
    assert indices(windows[0]) == [1, 3, 6, 8, 11, 13, 16, 18]
    # Past the cut the last frame that arrived stands in (frames 21, 23, 26, ... when intact).
    got, intact = indices(windows[1]), [21, 23, 26, 28, 31, 33, 36, 38]
    assert got[0] == 21 and all(g == i or g == got[-1] for g, i in zip(got, intact)) and got[-1] < 38


def test_corrupt_packets_recover_through_pyav(tmp_path, clips, caplog):
    damaged = corrupt_packets(clips["gop10"], tmp_path / "damaged.mp4", span=(0.45, 0.55))
    windows = list(iter_windows(damaged, short_side=None))  # auto: decord first
    assert [(w.start_s, w.end_s) for w in windows] == [(0, 2), (2, 4), (4, 6)]
    # The damage is in the middle; frames before it and after the next keyframe are intact.
    assert indices(windows[0]) == [1, 3, 6, 8, 11, 13, 16, 18]
    assert indices(windows[2]) == [41, 43, 46, 48, 51, 53, 56, 58]
    if decord_available():
        assert "continuing with PyAV" in caplog.text  # decord gave up half way
        assert "with decord" in one_line_error(iter_windows, damaged, backend="decord")


def test_too_long_is_a_clear_error(tmp_path):
    frames = moving_square_frames(2, 48, 64)
    long_clip = write_clip(tmp_path / "lecture.mp4", frames, pts_s=[0.0, 754.0])  # 12:34 of video
    message = one_line_error(probe_video, long_clip)
    assert "'lecture.mp4'" in message and "12:34 long" in message
    assert "the limit is 10:00 (max_duration_s)" in message
    assert "0:30 (max_duration_s)" in one_line_error(iter_windows, long_clip, max_duration_s=30)
    assert probe_video(long_clip, max_duration_s=None).duration_s == pytest.approx(754.0, abs=0.2)


def test_bad_arguments(clips):
    with pytest.raises(ValueError, match="backend"):
        iter_windows(clips["plain"], backend="opencv")
    with pytest.raises(ValueError, match="frames_per_window"):
        iter_windows(clips["plain"], frames_per_window=0)


@pytest.mark.skipif(not decord_available(), reason="no decord")
def test_decord_noise_is_silenced(tmp_path, clips, capfd):
    broken = truncate_file(clips["gop10"], tmp_path / "broken.mp4", 0.75)
    list(iter_windows(broken, backend="auto"))
    with pytest.raises(VideoDecodeError):
        list(iter_windows(write_text_as_mp4(tmp_path / "t.mp4"), backend="decord"))
    assert capfd.readouterr().err == ""


@pytest.mark.skipif(not decord_available(), reason="no decord")
def test_sizes_decord_resizes_wrongly_go_to_pyav_without_a_warning(tmp_path, caplog, monkeypatch):
    """decord 0.6 asked for 48x48 frames of a 64x64 clip decodes them 48x64 and fails every read (the
    toy model's input size). The first file at that size is checked on one frame and reported at
    INFO; from then on PyAV decodes that size directly. The frames are PyAV's, with no warning."""
    from ovmlv import decode_decord
    from ovmlv.decode_decord import DecordFailure, DecordFrameSource

    monkeypatch.setattr(decode_decord, "_WRONG_SIZES", set())
    monkeypatch.setattr(decode_decord, "_RIGHT_SIZES", set())
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 256, size=(1, 64, 64, 3), dtype=np.uint8), 16, axis=0)
    paths = [write_clip(tmp_path / f"c{i}.mp4", np.roll(frames, 8 * i, axis=2), fps=8) for i in range(2)]
    with pytest.raises(DecordFailure, match="cannot resize 'c0.mp4' to 48x48"):
        DecordFrameSource(str(paths[0]), "c0.mp4", (48, 48))
    assert not decode_decord.resizes_right((48, 48)) and decode_decord.resizes_right((56, 56))
    source = DecordFrameSource(str(paths[0]), "c0.mp4", (56, 56))  # checked once, then read as usual
    assert source.read(np.array([0.0]))[0].shape == (1, 56, 56, 3)
    assert decode_decord._RIGHT_SIZES == {(56, 56)} and decode_decord._WRONG_SIZES == {(48, 48)}
    caplog.set_level(logging.INFO, logger="ovmlv")
    for path in paths:
        auto = [w.frames for w in iter_windows(path, short_side=48, window_s=1.0)]
        pyav = [w.frames for w in iter_windows(path, short_side=48, window_s=1.0, backend="pyav")]
        assert len(auto) == len(pyav) == 2
        for a, b in zip(auto, pyav):
            np.testing.assert_array_equal(a, b)
    assert "WARNING" not in caplog.text and "continuing with PyAV" not in caplog.text


# --- memory --------------------------------------------------------------------------------

_PEAK_RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from ovmlv.decode import iter_windows
    count = sum(1 for _ in iter_windows(sys.argv[1], backend=sys.argv[2]))
    print(json.dumps({"windows": count, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def _peak_rss(path: Path, backend: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_SCRIPT, str(path), backend],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        timeout=120,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_streaming_memory_does_not_grow_with_duration(tmp_path_factory, backend):
    folder = tmp_path_factory.getbasetemp() / "long-clips"
    folder.mkdir(exist_ok=True)
    short, long = folder / "30s.mp4", folder / "300s.mp4"
    if not long.exists():
        write_long_clip(short, 30, 640, 360, fps=10)
        write_long_clip(long, 300, 640, 360, fps=10)
    small, big = _peak_rss(short, backend), _peak_rss(long, backend)
    assert (small["windows"], big["windows"]) == (15, 150)
    # Holding every sampled frame of 300 s would add about 1200 x 224 x 398 x 3 B = 320 MB.
    assert big["peak_mb"] < 1.5 * small["peak_mb"] + 50, (small, big)


# --- real videos ------------------------------------------------------------------------------

REAL = [  # the table in ../shared/videos/README.md
    ("arm_wrestling.mp4", "h264", 340, 256, 28.0, 280),
    ("basketball_2997fps.mp4", "h264", 426, 240, 30000 / 1001, 300),
    ("eye_makeup_mpeg4_mp3.avi", "mpeg4", 320, 240, 25.0, 164),
    ("two_people_1080p.mp4", "h264", 1920, 1080, 28.05, 72),
]


@pytest.mark.skipif(not SHARED_VIDEOS.is_dir(), reason="../shared/videos is not present")
@pytest.mark.parametrize(("name", "codec", "width", "height", "fps", "frames"), REAL)
def test_real_videos(name, codec, width, height, fps, frames):
    info = probe_video(SHARED_VIDEOS / name)
    assert (info.codec, info.width, info.height, info.rotation) == (codec, width, height, 0)
    assert info.num_frames == frames
    assert info.fps == pytest.approx(fps, abs=0.01)
    assert info.duration_s == pytest.approx(frames / fps, abs=1.5 / fps)
    windows = list(iter_windows(SHARED_VIDEOS / name))
    assert [(w.start_s, w.end_s) for w in windows] == window_bounds(info.duration_s)
    assert windows[0].start_s == 0 and windows[-1].end_s >= info.duration_s - 0.5  # at most a quarter lost
    short_side_width = round(width * 224 / height)
    for window in windows:
        assert window.frames.shape == (8, 224, short_side_width, 3)
        targets = sample_times(window.start_s, window.end_s, 8)
        assert np.all(np.diff(window.frame_times) >= 0)
        # The frame used is the one on screen: at or before the target, by less than a frame
        # (the 1080p clip has a 0.2 s hole in its timestamps).
        assert np.all(window.frame_times <= targets + 1e-3) and np.all(targets - window.frame_times < 0.21)
    assert np.abs(np.diff(windows[0].frames.astype(np.int16), axis=0)).mean() > 1  # the picture moves


@pytest.mark.skipif(not SHARED_VIDEOS.is_dir(), reason="../shared/videos is not present")
def test_real_avi_with_shuffled_timestamps():
    """The AVI's packed B-frames come out in display order with timestamps 1, 2, 4, 3, 6, 5...

    Sorted timestamps are handed out in output order, so the frame used for a target time t is
    the one shown at floor(25 t) / 25 (frames every 1/25 s, the first at 0.04 s), and it is the
    decoder's frame number 25 t' - 1 of a plain sequential decode.
    """
    path = SHARED_VIDEOS / "eye_makeup_mpeg4_mp3.avi"
    with av.open(str(path)) as container:
        reference = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(reference) == 164
    for window in iter_windows(path, short_side=None):
        targets = sample_times(window.start_s, window.end_s, 8)
        expected = np.maximum(np.floor(targets * 25 + 1e-6), 1) / 25
        np.testing.assert_allclose(window.frame_times, expected, atol=1e-6)
        for frame, time_s in zip(window.frames, window.frame_times):
            np.testing.assert_array_equal(frame, reference[round(time_s * 25) - 1])
