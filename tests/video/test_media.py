"""video.media against short synthetic clips made by the bundled ffmpeg (see media_fixtures).

Most clips paint their frame number into every frame, so exactness is checked to the frame: each
extracted JPEG must show the frame that an independent PyAV decode says is on screen at its time.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from tests.video.media_fixtures import (
    frame_index_of,
    index_on_screen,
    make_clip,
    painted_timeline,
    truncate_copy,
    write_garbage,
)
from video import media

ENGINES = ["ffmpeg", "pyav"]

# name: (make_clip arguments, expected probe values)
FORMATS: dict[str, tuple[dict, dict]] = {
    "mp4": (
        {"vcodec": "libx264", "acodec": "aac", "container": "mp4"},
        {"container": "mov,mp4,m4a,3gp,3g2,mj2", "codec": "h264", "audio_codec": "aac"},
    ),
    "webm": (
        {"vcodec": "libvpx", "acodec": "libopus", "container": "webm"},
        {"container": "matroska,webm", "codec": "vp8", "audio_codec": "opus"},
    ),
    "mkv": (
        {"vcodec": "libvpx-vp9", "acodec": "libvorbis", "container": "matroska"},
        {"container": "matroska,webm", "codec": "vp9", "audio_codec": "vorbis"},
    ),
    "avi": (
        {"vcodec": "mpeg4", "acodec": "libmp3lame", "container": "avi"},
        {"container": "avi", "codec": "mpeg4", "audio_codec": "mp3"},
    ),
    "mov": (
        {"vcodec": "libx264", "acodec": "aac", "container": "mov"},
        {"container": "mov,mp4,m4a,3gp,3g2,mj2", "codec": "h264", "audio_codec": "aac"},
    ),
    "wmv": (
        {"vcodec": "wmv2", "acodec": "wmav2", "container": "asf"},
        {"container": "asf", "codec": "wmv2", "audio_codec": "wmav2"},
    ),
}
# Containers whose muxer puts frame k of a 25 fps clip at exactly k/25 s (AVI and ASF shift a little).
CLEAN_TIMELINES = {"mp4", "webm", "mkv", "mov"}

SECONDS = 6
W, H = 160, 120

pytestmark = pytest.mark.usefixtures("each_ffmpeg")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    out = {
        name: make_clip(d / f"index.{name}", seconds=SECONDS, width=W, height=H, pattern="index", **args)
        for name, (args, _) in FORMATS.items()
    }
    out["short_gop"] = make_clip(d / "short_gop.mp4", seconds=SECONDS, width=W, height=H, pattern="index", gop=25)
    out["rotated"] = make_clip(d / "rotated.mp4", seconds=SECONDS, width=W, height=H, pattern="index", rotate=90)
    out["silent"] = make_clip(d / "silent.mp4", seconds=3, width=W, height=H, pattern="index", acodec=None)
    out["long_audio"] = make_clip(d / "long_audio.mp4", seconds=4, audio_seconds=6, width=W, height=H, pattern="index")
    out["big"] = make_clip(d / "big.mp4", seconds=4, width=640, height=360)
    out["audio_only"] = make_clip(d / "audio_only.m4a", seconds=2, vcodec=None, acodec="aac", container="mp4")
    out["live_webm"] = make_clip(
        d / "live.webm",
        seconds=SECONDS,
        width=W,
        height=H,
        pattern="index",
        vcodec="libvpx",
        acodec="libopus",
        container="webm",
        extra=["-live", "1"],  # as a browser's MediaRecorder writes it: no duration, no cues
    )
    out["gif"] = make_clip(d / "anim.gif", seconds=1, width=W, height=H, vcodec="gif", acodec=None, container="gif")
    faststart = make_clip(d / "faststart.mp4", seconds=SECONDS, width=W, height=H, extra=["-movflags", "+faststart"])
    out["truncated_faststart"] = truncate_copy(faststart, d / "truncated_faststart.mp4", 0.6)
    out["truncated_mp4"] = truncate_copy(out["mp4"], d / "truncated.mp4", 0.6)
    out["truncated_webm"] = truncate_copy(out["webm"], d / "truncated.webm", 0.5)
    out["garbage"] = write_garbage(d / "garbage.mp4")
    out["empty"] = d / "empty.mp4"
    out["empty"].write_bytes(b"")
    return out


@pytest.fixture(scope="module")
def timelines(clips: dict[str, Path]) -> dict[str, list[tuple[float, int]]]:
    names = [*FORMATS, "short_gop", "rotated", "long_audio", "live_webm"]
    return {name: painted_timeline(clips[name]) for name in names}


def painted(path: Path, rotation: int = 0) -> int:
    return frame_index_of(path, rotation)


# ------------------------------------------------------------------------------------------------
# probe


@pytest.mark.parametrize("name", list(FORMATS))
def test_probe_reads_metadata(clips: dict[str, Path], name: str) -> None:
    info = media.probe(clips[name])
    expected = FORMATS[name][1]
    assert info.container == expected["container"]
    assert info.container in media.ALLOWED_CONTAINERS
    assert info.codec == expected["codec"]
    assert info.audio_codec == expected["audio_codec"]
    assert (info.width, info.height) == (W, H)
    assert info.fps == pytest.approx(25, abs=0.01)
    assert info.duration == pytest.approx(SECONDS, abs=0.15)
    assert info.rotation == 0
    assert info.has_audio is True
    assert info.has_video is True
    assert info.bitrate is not None
    assert info.bitrate > 10_000
    assert info.size_bytes == clips[name].stat().st_size
    assert info.as_dict()["codec"] == info.codec


def test_probe_rotated_reports_display_size(clips: dict[str, Path]) -> None:
    info = media.probe(clips["rotated"])
    assert info.rotation == 90
    assert (info.width, info.height) == (H, W)


def test_probe_without_audio(clips: dict[str, Path]) -> None:
    info = media.probe(clips["silent"])
    assert info.has_audio is False
    assert info.audio_codec is None
    assert info.duration == pytest.approx(3, abs=0.05)


def test_probe_webm_without_duration_header(clips: dict[str, Path]) -> None:
    # Browser recordings carry no duration; probe measures it from the packets.
    info = media.probe(clips["live_webm"])
    assert info.duration == pytest.approx(SECONDS, abs=0.1)
    assert info.bitrate is not None


def test_probe_reads_in_process_without_running_ffmpeg(clips: dict[str, Path], monkeypatch) -> None:
    """Probing is a demuxer read through PyAV, a few ms (bench/video_bench.py measures it), never an
    ffmpeg process. Checked by what it does, not by a timing a busy machine would break."""
    import subprocess

    def refuse(*args, **kwargs):
        raise AssertionError(f"probe started a process: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    assert media.probe(clips["mp4"]).duration == pytest.approx(SECONDS, abs=0.1)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("audio_only", "no video stream"),
        ("garbage", "not a readable video"),
        ("truncated_mp4", "not a readable video"),
        ("truncated_faststart", "truncated"),
        ("truncated_webm", "truncated"),
        ("gif", "unsupported file format"),
        ("empty", "empty"),
    ],
)
def test_probe_refuses(clips: dict[str, Path], name: str, message: str) -> None:
    with pytest.raises(media.MediaError) as caught:
        media.probe(clips[name])
    assert message in str(caught.value).lower()


def test_probe_missing_file(tmp_path: Path) -> None:
    with pytest.raises(media.MediaError, match="could not be read"):
        media.probe(tmp_path / "nope.mp4")


# ------------------------------------------------------------------------------------------------
# extract_frames: exactness, caps, engines


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", list(FORMATS))
def test_frames_are_exact(clips, timelines, tmp_path: Path, name: str, engine: str) -> None:
    info = media.probe(clips[name])
    result = media.extract_frames(clips[name], interval=1.0, max_frames=100, out_dir=tmp_path, engine=engine)
    # Frames exist for t < duration while there is picture: audio may run a few ms past the last frame.
    video_end = timelines[name][-1][0] + 0.04
    expected_times = [float(k) for k in range(100) if k < min(info.duration, video_end) - 1e-9]
    assert [f.timestamp for f in result.frames] == expected_times
    assert [f.index for f in result.frames] == list(range(len(expected_times)))
    got = [painted(f.path) for f in result.frames]
    assert got == [index_on_screen(timelines[name], t) for t in expected_times]
    if name in CLEAN_TIMELINES:
        # A 6 s clip gives exactly 6 frames, at 0..5 s: frame numbers 0, 25, ..., 125 of the 25 fps clip.
        assert got == [0, 25, 50, 75, 100, 125]
    for frame in result.frames:
        assert (frame.width, frame.height) == (W, H)
        assert frame.size_bytes == frame.path.stat().st_size > 0
        assert frame.path.parent == tmp_path
    assert result.engine == engine


# GOP structures that make skipping decode work tricky: B-frames reordered across the skip points,
# open GOPs whose leading pictures reference the GOP before, HEVC, and a frame rate off the 1 s grid.
GOP_VARIANTS: dict[str, dict] = {
    "h264-bframes-gop10": {"gop": 10},
    "h264-open-gop10": {"gop": 10, "extra": ["-x264-params", "open-gop=1"]},
    "hevc-open-gop12": {"vcodec": "libx265", "gop": 12, "extra": ["-x265-params", "open-gop=1:log-level=error"]},
    "h264-ntsc-29.97": {"fps": "30000/1001", "gop": 15},
}


@pytest.fixture(scope="module")
def gop_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[tuple[float, int]]]]:
    d = tmp_path_factory.mktemp("gops")
    out = {}
    for name, args in GOP_VARIANTS.items():
        path = make_clip(d / f"{name}.mp4", seconds=SECONDS, width=W, height=H, pattern="index", **args)
        out[name] = (path, painted_timeline(path))
    return out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("interval", [1.0, 0.7])
@pytest.mark.parametrize("name", list(GOP_VARIANTS))
def test_frames_are_exact_across_gop_structures(gop_clips, tmp_path: Path, name: str, interval: float, engine: str):
    path, timeline = gop_clips[name]
    result = media.extract_frames(
        path, interval=interval, max_frames=100, out_dir=tmp_path, engine=engine, thumbnail_timestamp=3.3
    )
    times = [f.timestamp for f in result.frames]
    assert times == pytest.approx([k * interval for k in range(len(times))])
    assert len(times) >= int(SECONDS / interval)
    assert [painted(f.path) for f in result.frames] == [index_on_screen(timeline, t) for t in times]
    assert painted(result.thumbnail.path) == index_on_screen(timeline, 3.3)


@pytest.mark.parametrize("engine", ENGINES)
def test_max_frames_caps_and_fractional_interval(clips, timelines, tmp_path: Path, engine: str) -> None:
    result = media.extract_frames(clips["mp4"], interval=0.5, max_frames=4, out_dir=tmp_path, engine=engine)
    assert [f.timestamp for f in result.frames] == [0.0, 0.5, 1.0, 1.5]
    # 0.5 s falls between frames 12 (0.48 s) and 13 (0.52 s): frame 12 is on screen.
    assert [painted(f.path) for f in result.frames] == [0, 12, 25, 37]
    assert sorted(p.name for p in tmp_path.glob("frame_*.jpg")) == [f"frame_{i:05d}.jpg" for i in range(4)]


@pytest.mark.parametrize("engine", ENGINES)
def test_interval_not_dividing_duration(clips, timelines, tmp_path: Path, engine: str) -> None:
    result = media.extract_frames(clips["webm"], interval=2.5, max_frames=100, out_dir=tmp_path, engine=engine)
    assert [f.timestamp for f in result.frames] == [0.0, 2.5, 5.0]
    assert [painted(f.path) for f in result.frames] == [index_on_screen(timelines["webm"], t) for t in (0, 2.5, 5)]


@pytest.mark.parametrize("engine", ENGINES)
def test_rotated_clip_gives_upright_portrait_frames(clips, timelines, tmp_path: Path, engine: str) -> None:
    result = media.extract_frames(clips["rotated"], interval=1.0, max_frames=100, out_dir=tmp_path, engine=engine)
    assert len(result.frames) == SECONDS
    for frame in result.frames:
        assert (frame.width, frame.height) == (H, W)
        with Image.open(frame.path) as img:
            assert img.size == (H, W)
    # Undoing a 90° clockwise turn restores the painted number; a turn the wrong way would swap the halves.
    assert [painted(f.path, rotation=90) for f in result.frames] == [0, 25, 50, 75, 100, 125]
    assert [painted(f.path, rotation=270) for f in result.frames][1:] != [25, 50, 75, 100, 125]
    assert (result.thumbnail.width, result.thumbnail.height) == (H, W)


def test_engines_write_the_same_pictures(clips, tmp_path: Path) -> None:
    import numpy as np

    results = {
        engine: media.extract_frames(
            clips["rotated"], interval=2.0, max_frames=3, out_dir=tmp_path / engine, engine=engine
        )
        for engine in ENGINES
    }
    for a, b in zip(results["ffmpeg"].frames, results["pyav"].frames, strict=True):
        pixels_a = np.asarray(Image.open(a.path).convert("RGB"), dtype=np.int16)
        pixels_b = np.asarray(Image.open(b.path).convert("RGB"), dtype=np.int16)
        assert pixels_a.shape == pixels_b.shape
        assert np.abs(pixels_a - pixels_b).mean() < 4  # only JPEG encoder differences


@pytest.mark.parametrize("engine", ENGINES)
def test_video_shorter_than_audio(clips, timelines, tmp_path: Path, engine: str) -> None:
    # The container lasts 6 s (audio) but the picture stops at 4 s: frames stop there too, and a
    # thumbnail asked for after the end shows the last picture.
    result = media.extract_frames(
        clips["long_audio"], interval=1.0, max_frames=100, out_dir=tmp_path, engine=engine, thumbnail_timestamp=5.5
    )
    assert [painted(f.path) for f in result.frames] == [0, 25, 50, 75]
    assert painted(result.thumbnail.path) == 99


@pytest.mark.parametrize("engine", ENGINES)
def test_webm_without_duration_header(clips, timelines, tmp_path: Path, engine: str) -> None:
    result = media.extract_frames(clips["live_webm"], interval=1.0, max_frames=100, out_dir=tmp_path, engine=engine)
    assert [painted(f.path) for f in result.frames] == [0, 25, 50, 75, 100, 125]


# ------------------------------------------------------------------------------------------------
# thumbnail


@pytest.mark.parametrize("engine", ENGINES)
def test_thumbnail_longest_side_320(clips, tmp_path: Path, engine: str) -> None:
    result = media.extract_frames(clips["big"], interval=1.0, max_frames=100, out_dir=tmp_path, engine=engine)
    assert (result.thumbnail.width, result.thumbnail.height) == (320, 180)
    with Image.open(result.thumbnail.path) as img:
        assert img.size == (320, 180)
        assert img.format == "JPEG"
    assert result.thumbnail.path == tmp_path / "thumbnail.jpg"
    assert (result.frames[0].width, result.frames[0].height) == (640, 360)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("requested", "max_frames", "expected_time"),
    [
        (2.0, 100, 2.0),  # inside the frames window: same decode pass
        (4.2, 2, 4.2),  # past the window: a seeked second input / a GOP jump
        (-3.0, 100, 0.0),  # clamped into [0, duration)
        (99.0, 100, SECONDS - 0.04),  # clamped to the last frame
    ],
)
def test_thumbnail_timestamp(
    clips, timelines, tmp_path: Path, engine: str, requested: float, max_frames: int, expected_time: float
) -> None:
    result = media.extract_frames(
        clips["mp4"],
        interval=1.0,
        max_frames=max_frames,
        out_dir=tmp_path,
        engine=engine,
        thumbnail_timestamp=requested,
    )
    assert result.thumbnail.timestamp == pytest.approx(expected_time)
    assert painted(result.thumbnail.path) == index_on_screen(timelines["mp4"], expected_time)
    # The clip is smaller than 320 px: never upscaled.
    assert (result.thumbnail.width, result.thumbnail.height) == (W, H)


def test_default_thumbnail_is_a_frame_near_ten_percent(clips, tmp_path: Path) -> None:
    result = media.extract_frames(clips["big"], interval=0.25, max_frames=100, out_dir=tmp_path, engine="ffmpeg")
    assert result.thumbnail.timestamp == pytest.approx(0.25)  # 10% of 4 s, on the 0.25 s grid


def test_make_thumbnail_anywhere(clips, timelines, tmp_path: Path) -> None:
    thumb = media.make_thumbnail(clips["webm"], timestamp=3.3, out_path=tmp_path / "t.jpg", max_side=100)
    assert thumb.timestamp == pytest.approx(3.3)
    assert (thumb.width, thumb.height) == (100, 75)
    assert painted(thumb.path) == index_on_screen(timelines["webm"], 3.3)
    rotated = media.make_thumbnail(clips["rotated"], timestamp=2.0, out_path=tmp_path / "r.jpg")
    assert (rotated.width, rotated.height) == (H, W)
    assert painted(rotated.path, rotation=90) == 50


def test_make_thumbnail_garbage(clips, tmp_path: Path) -> None:
    with pytest.raises(media.MediaError):
        media.make_thumbnail(clips["garbage"], timestamp=1, out_path=tmp_path / "t.jpg")


# ------------------------------------------------------------------------------------------------
# engine choice, progress, housekeeping


def test_auto_engine_follows_the_keyframe_index(clips, tmp_path: Path) -> None:
    def engine_for(name: str) -> str:
        return media.extract_frames(clips[name], interval=1.0, max_frames=100, out_dir=tmp_path / name).engine

    # A keyframe every second: only the keyframes need decoding.
    assert engine_for("short_gop") == "pyav"
    # One keyframe for the whole clip (x264's default GOP outlasts 6 s): nothing to skip.
    assert engine_for("mp4") == "ffmpeg"
    # No usable index in AVI: always the ffmpeg engine.
    assert engine_for("avi") == "ffmpeg"


@pytest.mark.parametrize("engine", ENGINES)
def test_progress_is_monotonic_and_completes(clips, tmp_path: Path, engine: str) -> None:
    seen: list[float] = []
    media.extract_frames(
        clips["short_gop"], interval=0.5, max_frames=100, out_dir=tmp_path, engine=engine, on_progress=seen.append
    )
    assert seen[0] == 0.0
    assert seen[-1] == 1.0
    assert seen == sorted(seen)
    assert all(0.0 <= p <= 1.0 for p in seen)


@pytest.mark.parametrize("engine", ENGINES)
def test_progress_callback_can_cancel(clips, tmp_path: Path, engine: str) -> None:
    class Cancelled(Exception):
        pass

    def cancel(fraction: float) -> None:
        if fraction > 0:
            raise Cancelled

    with pytest.raises(Cancelled):
        media.extract_frames(
            clips["short_gop"], interval=0.2, max_frames=100, out_dir=tmp_path, engine=engine, on_progress=cancel
        )


def test_earlier_outputs_are_replaced(clips, tmp_path: Path) -> None:
    media.extract_frames(clips["mp4"], interval=1.0, max_frames=100, out_dir=tmp_path)
    (tmp_path / "keep.txt").write_text("not ours")
    result = media.extract_frames(clips["mp4"], interval=1.0, max_frames=2, out_dir=tmp_path)
    assert len(result.frames) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "frame_00000.jpg",
        "frame_00001.jpg",
        "keep.txt",
        "thumbnail.jpg",
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_frame_max_side_and_result_dict(clips, tmp_path: Path, engine: str) -> None:
    result = media.extract_frames(
        clips["big"], interval=1.0, max_frames=2, out_dir=tmp_path, frame_max_side=320, engine=engine
    )
    assert [(f.width, f.height) for f in result.frames] == [(320, 180), (320, 180)]
    rotated = media.extract_frames(
        clips["rotated"], interval=1.0, max_frames=1, out_dir=tmp_path / "r", frame_max_side=80, engine=engine
    )
    assert (rotated.frames[0].width, rotated.frames[0].height) == (60, 80)
    data = result.as_dict()
    assert data["frames"][1]["timestamp"] == 1.0
    assert data["frames"][1]["path"] == str(tmp_path / "frame_00001.jpg")
    assert data["info"]["duration"] == pytest.approx(4, abs=0.05)


def test_extract_refuses_bad_arguments_and_files(clips, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        media.extract_frames(clips["mp4"], interval=0, max_frames=1, out_dir=tmp_path)
    with pytest.raises(ValueError, match="max_frames"):
        media.extract_frames(clips["mp4"], interval=1, max_frames=0, out_dir=tmp_path)
    with pytest.raises(media.MediaError, match="no video stream"):
        media.extract_frames(clips["audio_only"], interval=1, max_frames=5, out_dir=tmp_path)


def test_ffmpeg_exe_is_cached_and_runs() -> None:
    import subprocess

    exe = media.ffmpeg_exe()
    assert exe is media.ffmpeg_exe()
    version = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30, check=True).stdout
    assert version.startswith("ffmpeg version")


# ------------------------------------------------------------------------------------------------
# storyboard and GIF


@pytest.mark.parametrize("engine", ENGINES)
def test_storyboard_sprite_and_map(clips, timelines, tmp_path: Path, engine: str) -> None:
    board = media.make_storyboard(
        clips["short_gop"], out_path=tmp_path / "sb.jpg", tiles=6, columns=4, tile_width=80, engine=engine
    )
    assert (board["columns"], board["rows"]) == (4, 2)
    assert (board["tile_width"], board["tile_height"]) == (80, 60)
    assert (board["width"], board["height"]) == (320, 120)
    assert board["interval"] == pytest.approx(1.0)
    tiles = board["tiles"]
    assert [(t["index"], t["x"], t["y"]) for t in tiles] == [
        (0, 0, 0),
        (1, 80, 0),
        (2, 160, 0),
        (3, 240, 0),
        (4, 0, 60),
        (5, 80, 60),
    ]
    assert [t["time"] for t in tiles] == pytest.approx([0, 1, 2, 3, 4, 5])
    with Image.open(board["sprite"]) as sprite:
        assert sprite.size == (320, 120)
        for tile in tiles:
            crop = sprite.crop((tile["x"], tile["y"], tile["x"] + tile["w"], tile["y"] + tile["h"]))
            assert frame_index_of(crop) == index_on_screen(timelines["short_gop"], tile["time"])


def test_storyboard_vtt(clips, tmp_path: Path) -> None:
    board = media.make_storyboard(clips["big"], out_path=tmp_path / "sb.jpg", tiles=4, columns=2, tile_width=64)
    vtt = media.storyboard_vtt(board, "/media/sb.jpg")
    assert vtt.startswith("WEBVTT\n\n")
    cues = re.findall(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(\S+)", vtt)
    assert cues == [
        ("00:00:00.000", "00:00:01.000", "/media/sb.jpg#xywh=0,0,64,36"),
        ("00:00:01.000", "00:00:02.000", "/media/sb.jpg#xywh=64,0,64,36"),
        ("00:00:02.000", "00:00:03.000", "/media/sb.jpg#xywh=0,36,64,36"),
        ("00:00:03.000", "00:00:04.000", "/media/sb.jpg#xywh=64,36,64,36"),
    ]


def test_preview_gif_is_animated(clips, tmp_path: Path) -> None:
    out = media.make_preview_gif(clips["big"], out_path=tmp_path / "p.gif", seconds=1.5, fps=6, width=240)
    assert (out["width"], out["height"]) == (240, 135)
    with Image.open(out["path"]) as gif:
        assert gif.format == "GIF"
        assert gif.is_animated
        assert gif.n_frames > 1
        assert gif.size == (240, 135)
