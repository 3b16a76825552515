"""``extract_frames``: JPEG frames at every multiple of an interval plus a thumbnail, in one decode pass."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from video.media.engines import _extract_ffmpeg, _extract_pyav
from video.media.errors import MediaError
from video.media.images import _image_size
from video.media.planning import _choose_engine, _clamp_time, _fit, _frame_times, _progress_reporter, _qscale
from video.media.probe import probe
from video.media.records import (
    _EPS,
    _FRAME_PATTERN,
    FRAME_NAME,
    THUMBNAIL_NAME,
    Engine,
    ExtractionResult,
    FrameRecord,
    Thumbnail,
    VideoInfo,
)


def _clear_outputs(out_dir: Path) -> None:
    """Remove frames/thumbnail of an earlier run in out_dir, so no stale file passes for a new one."""
    for entry in out_dir.iterdir():
        if entry.is_file() and (_FRAME_PATTERN.fullmatch(entry.name) or entry.name == THUMBNAIL_NAME):
            entry.unlink()


def extract_frames(
    path: str | os.PathLike[str],
    *,
    interval: float,
    max_frames: int,
    out_dir: str | os.PathLike[str],
    thumbnail_timestamp: float | None = None,
    thumbnail_max_side: int = 320,
    jpeg_quality: int = 90,
    frame_max_side: int | None = None,
    on_progress: Callable[[float], None] | None = None,
    engine: Engine = "auto",
    info: VideoInfo | None = None,
    timeout: float | None = None,
) -> ExtractionResult:
    """JPEG frames at t = 0, interval, 2*interval, ... (t < duration, at most max_frames) and a thumbnail.

    Files are ``out_dir/frame_00000.jpg`` ... and ``out_dir/thumbnail.jpg`` (earlier ones of those names
    are removed first). Frames are upright (display rotation applied), full size unless frame_max_side is
    given. The thumbnail shows thumbnail_timestamp clamped into the video, longest side
    thumbnail_max_side (never upscaled); None takes the frame at the multiple of interval nearest below
    10% of the duration, which both engines get for free. on_progress receives fractions in [0, 1]
    (monotonic, ends with 1.0); an exception raised from it stops the work and propagates. info
    skips the probe when the caller already has it. timeout defaults to a generous multiple of the
    decoded duration. Raises MediaError.
    """
    started = time.perf_counter()
    if not interval > 0:
        raise ValueError("interval must be positive")
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    if not 1 <= jpeg_quality <= 100:
        raise ValueError("jpeg_quality must be within 1..100")
    if engine not in ("auto", "ffmpeg", "pyav"):
        raise ValueError(f"unknown engine {engine!r}")
    path = Path(path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _clear_outputs(out)
    info = info or probe(path)
    report = _progress_reporter(on_progress)
    report(0.0)

    targets = _frame_times(info.duration, interval, max_frames)
    if thumbnail_timestamp is None:
        thumbnail_timestamp = min(math.floor(info.duration * 0.1 / interval + _EPS) * interval, targets[-1])
    thumb_time = _clamp_time(thumbnail_timestamp, info)
    thumb_size = _fit(info.width, info.height, thumbnail_max_side)
    frame_size = _fit(info.width, info.height, frame_max_side) if frame_max_side else None
    if frame_size == (info.width, info.height):
        frame_size = None
    chosen = engine if engine != "auto" else _choose_engine(path, info, targets, thumb_time)
    if chosen == "ffmpeg":
        _extract_ffmpeg(
            path,
            info,
            interval=interval,
            targets=targets,
            thumb_time=thumb_time,
            thumb_size=thumb_size,
            frame_size=frame_size,
            out_dir=out,
            qscale=_qscale(jpeg_quality),
            report=report,
            timeout=timeout,
        )
    else:
        _extract_pyav(
            path,
            info,
            targets=targets,
            thumb_time=thumb_time,
            thumb_size=thumb_size,
            frame_size=frame_size,
            out_dir=out,
            jpeg_quality=jpeg_quality,
            report=report,
            timeout=timeout,
        )

    frames: list[FrameRecord] = []
    for index, t in enumerate(targets):
        frame_path = out / FRAME_NAME.format(index)
        if not frame_path.is_file():
            break  # the video ended before this time (its duration header overstates it)
        width, height = _image_size(frame_path)
        frames.append(
            FrameRecord(
                index=index,
                timestamp=t,
                width=width,
                height=height,
                path=frame_path,
                size_bytes=frame_path.stat().st_size,
            )
        )
    if not frames:
        raise MediaError("No frame could be decoded from the video.")
    thumb_path = out / THUMBNAIL_NAME
    if not thumb_path.is_file():
        # Neither engine should leave it missing once a frame was decoded; if one does, a frame stands in.
        with Image.open(frames[-1].path) as img:
            img.convert("RGB").resize(_fit(img.width, img.height, thumbnail_max_side), Image.Resampling.LANCZOS).save(
                thumb_path, "JPEG", quality=jpeg_quality
            )
        thumb_time = frames[-1].timestamp
    tw, th = _image_size(thumb_path)
    thumbnail = Thumbnail(
        timestamp=thumb_time, width=tw, height=th, path=thumb_path, size_bytes=thumb_path.stat().st_size
    )
    report(1.0)
    return ExtractionResult(
        frames=frames,
        thumbnail=thumbnail,
        info=info,
        interval=interval,
        engine="pyav" if chosen == "pyav" else "ffmpeg",
        elapsed=time.perf_counter() - started,
    )
