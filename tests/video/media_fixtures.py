"""Synthetic video clips for the video tests, generated with the pinned ffmpeg binary.

The clips are the tests' inputs, so they are made by imageio-ffmpeg's binary whatever ffmpeg the
product is told to run (FFMPEG_BINARY): every machine tests the product on the same bytes.

`make_clip` writes a short clip in any container/codec pair the tests need. With
``pattern="index"`` every frame paints its own frame number into the picture (left half: number // 16,
right half: number % 16, as luma levels 14 apart), so a test can read back exactly which source frame an
extracted JPEG came from with `frame_index_of` — one frame off is detected, not just one second off.
Numbers go up to 255 (10 s at 25 fps); longer index clips wrap around.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import av
import numpy as np
from imageio_ffmpeg import get_ffmpeg_exe
from PIL import Image

# Luma step between the 16 levels used by the index pattern: wide enough that lossy codecs at the
# bitrates below never move a flat block by half a step.
_INDEX_STEP = 14

# Codec settings that keep the flat index pattern readable and the files small.
_QUALITY_ARGS: dict[str, list[str]] = {
    "libx264": ["-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"],
    "libx265": ["-preset", "ultrafast", "-crf", "20", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"],
    "libvpx": ["-b:v", "1M", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p"],
    "libvpx-vp9": ["-b:v", "1M", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p"],
    "mpeg4": ["-q:v", "2", "-pix_fmt", "yuv420p"],
    "wmv2": ["-q:v", "2", "-pix_fmt", "yuv420p"],
    "mjpeg": ["-q:v", "2", "-pix_fmt", "yuvj420p"],
}


def _run(args: Sequence[str]) -> None:
    proc = subprocess.run(
        [get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


def _video_source(pattern: str, seconds: float, width: int, height: int, fps: int | str) -> str:
    if pattern == "testsrc2":
        return f"testsrc2=s={width}x{height}:r={fps}:d={seconds}"
    if pattern == "index":
        lum = f"if(lt(X\\,W/2)\\,16+floor(N/16)*{_INDEX_STEP}\\,16+mod(N\\,16)*{_INDEX_STEP})"
        return f"color=c=black:s={width}x{height}:r={fps}:d={seconds},format=yuv420p,geq=lum='{lum}':cb=128:cr=128"
    raise ValueError(f"unknown pattern {pattern!r}")


def make_clip(
    path: Path | str,
    *,
    seconds: float,
    width: int = 320,
    height: int = 240,
    fps: int | str = 25,
    vcodec: str | None = "libx264",
    acodec: str | None = "aac",
    container: str = "mp4",
    rotate: int = 0,
    pattern: Literal["testsrc2", "index"] = "testsrc2",
    gop: int | None = None,
    audio_seconds: float | None = None,
    extra: Sequence[str] = (),
) -> Path:
    """Write a synthetic clip and return its path.

    fps may be a rational string ("30000/1001"). vcodec None makes an audio-only file. rotate is the
    clockwise display rotation (the value `probe` reports); it is stored as a display matrix by a
    stream-copy pass, because ffmpeg's autorotate would otherwise bake it into the pixels while
    encoding. gop sets a fixed keyframe interval in frames (None: the encoder's default). audio_seconds
    makes the audio track longer or shorter than the video. extra goes right before the output path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_to = path.with_name(f".unrotated-{path.name}") if rotate else path
    args: list[str] = []
    if vcodec:
        args += ["-f", "lavfi", "-i", _video_source(pattern, seconds, width, height, fps)]
    if acodec:
        # 48 kHz stereo suits every audio encoder used here (opus only takes 48 kHz).
        args += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=48000:duration={audio_seconds or seconds}",
            "-ac",
            "2",
            "-c:a",
            acodec,
        ]
        if acodec in {"libvorbis", "vorbis"}:
            args += ["-q:a", "3"]
    if vcodec:
        args += ["-c:v", vcodec, *_QUALITY_ARGS.get(vcodec, [])]
        if gop:
            args += ["-g", str(gop), "-keyint_min", str(gop)]
            if vcodec == "libx264":
                args += ["-sc_threshold", "0"]
    args += ["-f", container, *extra, str(encode_to)]
    _run(args)
    if rotate:
        copy = ["-map", "0", "-c", "copy", "-f", container, str(path)]
        # -display_rotation (counter-clockwise) sets the display matrix.
        _run(["-display_rotation", str((360 - rotate) % 360), "-i", str(encode_to), *copy])
        encode_to.unlink()
    return path


def frame_index_of(image: Image.Image | Path | str, rotation: int = 0) -> int:
    """Read back the frame number painted by ``pattern="index"``.

    rotation is the clockwise display rotation already applied to the image; it is undone first, so a
    picture turned the wrong way reads as a different number (the halves swap) instead of passing.
    """
    if not isinstance(image, Image.Image):
        image = Image.open(image)
    if rotation:
        image = image.rotate(rotation, expand=True)  # Pillow turns counter-clockwise
    luma = np.asarray(image.convert("L"), dtype=np.float64)
    h, w = luma.shape

    def level(block: np.ndarray) -> int:
        # JPEG stores full-range luma; the clip was painted in limited range (16..235).
        limited = block.mean() * 219 / 255 + 16
        return round((limited - 16) / _INDEX_STEP)

    # Sample the middle of each half, away from the edge between them (chroma/DCT bleed).
    rows = slice(h // 4, 3 * h // 4)
    return level(luma[rows, w // 8 : 3 * w // 8]) * 16 + level(luma[rows, 5 * w // 8 : 7 * w // 8])


def painted_timeline(path: Path | str) -> list[tuple[float, int]]:
    """(time, painted frame number) of every frame of an index clip, decoded independently of
    video.media: PyAV, every frame, times relative to the container start as ffmpeg shows them."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = (container.start_time or 0) / 1e6
        timeline = []
        for frame in container.decode(stream):
            ts = frame.pts if frame.pts is not None else frame.dts
            timeline.append((float(ts * stream.time_base) - start, frame_index_of(frame.to_image())))
    return timeline


def index_on_screen(timeline: list[tuple[float, int]], t: float) -> int:
    """Painted number of the frame on screen at t: the last frame starting at or before t (the first
    frame before the video starts)."""
    shown = [index for start, index in timeline if start <= t + 1e-6]
    return shown[-1] if shown else timeline[0][1]


def write_garbage(path: Path | str, size: int = 64 * 1024, seed: int = 1234) -> Path:
    """Random bytes with a video-like file name."""
    path = Path(path)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def truncate_copy(src: Path | str, dst: Path | str, fraction: float = 0.5) -> Path:
    """Copy the first `fraction` of a file, as an interrupted upload leaves it."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst
