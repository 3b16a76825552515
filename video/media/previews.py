"""Scrub and hover previews: the storyboard sprite with its WebVTT track, and the animated GIF."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import av
from PIL import Image

from video.media.engines import _Job, _pyav_grab
from video.media.errors import MediaError
from video.media.ffmpeg import _decode_timeout, _input, _rate, _run_ffmpeg, _timeline
from video.media.images import _image_size, _to_image
from video.media.planning import _choose_engine, _qscale
from video.media.probe import probe
from video.media.records import Engine, VideoInfo


def make_storyboard(
    path: str | os.PathLike[str],
    *,
    out_path: str | os.PathLike[str],
    tiles: int = 25,
    columns: int = 5,
    tile_width: int = 160,
    jpeg_quality: int = 80,
    engine: Engine = "auto",
    info: VideoInfo | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """One sprite JPEG of `tiles` frames evenly spaced over the video, and the map of where each is.

    Tile i shows the frame at i * duration / tiles (same "frame on screen at t" rule as
    extract_frames), so it previews the span [i * step, (i + 1) * step). Returns::

        {"sprite": str path, "width": W, "height": H, "columns": c, "rows": r, "interval": step,
         "duration": d, "tile_width": w, "tile_height": h,
         "tiles": [{"index": i, "time": t, "x": x, "y": y, "w": w, "h": h}, ...]}
    """
    if tiles < 1 or columns < 1 or tile_width < 1:
        raise ValueError("tiles, columns and tile_width must be positive")
    if engine not in ("auto", "ffmpeg", "pyav"):
        raise ValueError(f"unknown engine {engine!r}")
    path = Path(path)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = info or probe(path)
    step = info.duration / tiles
    times = [i * step for i in range(tiles)]
    tile_w = tile_width
    tile_h = max(1, round(tile_width * info.height / info.width))
    rows = math.ceil(tiles / columns)
    cols = min(columns, tiles)
    chosen = engine if engine != "auto" else _choose_engine(path, info, times, times[-1])
    if chosen == "pyav":
        sprite = Image.new("RGB", (cols * tile_w, rows * tile_h))
        jobs = [_Job(t, i) for i, t in enumerate(times)]
        placed: set[int] = set()

        def sink(job: _Job, frame: av.VideoFrame) -> None:
            i = job.key
            sprite.paste(_to_image(frame, (tile_w, tile_h), info.rotation), ((i % cols) * tile_w, (i // cols) * tile_h))
            placed.add(i)

        deadline = time.monotonic() + (timeout or _decode_timeout(info.duration))
        try:
            _pyav_grab(path, info, jobs, sink, lambda _f: None, deadline)
        except av.FFmpegError as exc:
            raise MediaError("The video could not be decoded.", detail=str(exc)) from exc
        if not placed:
            raise MediaError("No frame could be decoded from the video.")
        sprite.save(out, "JPEG", quality=jpeg_quality)
    else:
        graph = (
            f"[0:{info.stream_index}]{_timeline(info)},fps={_rate(step)}:round=up:start_time=0,"
            f"scale={tile_w}:{tile_h},tile={cols}x{rows}"
        )
        out.unlink(missing_ok=True)
        output = ["-frames:v", "1", "-q:v", str(_qscale(jpeg_quality)), "-update", "1", "-f", "image2", str(out)]
        _run_ffmpeg(
            [*_input(path, info), "-filter_complex", graph, *output],
            timeout=timeout or _decode_timeout(info.duration),
            what="Storyboard",
        )
        if not out.is_file():
            raise MediaError("No frame could be decoded from the video.")
    width, height = _image_size(out)
    return {
        "sprite": str(out),
        "width": width,
        "height": height,
        "columns": cols,
        "rows": rows,
        "interval": step,
        "duration": info.duration,
        "tile_width": tile_w,
        "tile_height": tile_h,
        "tiles": [
            {"index": i, "time": t, "x": (i % cols) * tile_w, "y": (i // cols) * tile_h, "w": tile_w, "h": tile_h}
            for i, t in enumerate(times)
        ],
    }


def _vtt_time(seconds: float) -> str:
    ms = round(max(seconds, 0.0) * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def storyboard_vtt(storyboard: dict[str, Any], sprite_url: str) -> str:
    """WebVTT thumbnail track for a storyboard map: one cue per tile, its image as a ``#xywh=`` media
    fragment of the sprite (the format video.js / Plyr / JW Player / Vidstack take for scrub previews)."""
    tiles = storyboard["tiles"]
    duration = storyboard.get("duration") or (tiles[-1]["time"] + storyboard.get("interval", 0.0))
    lines = ["WEBVTT", ""]
    for i, tile in enumerate(tiles):
        end = tiles[i + 1]["time"] if i + 1 < len(tiles) else duration
        lines += [
            f"{_vtt_time(tile['time'])} --> {_vtt_time(end)}",
            f"{sprite_url}#xywh={tile['x']},{tile['y']},{tile['w']},{tile['h']}",
            "",
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# preview GIF


def make_preview_gif(
    path: str | os.PathLike[str],
    *,
    out_path: str | os.PathLike[str],
    seconds: float = 3.0,
    fps: int = 8,
    width: int = 240,
    start: float | None = None,
    info: VideoInfo | None = None,
) -> dict[str, Any]:
    """Short looping animated GIF (hover preview) made with moviepy, `width` px wide (never upscaled).

    start None begins at 10% of the duration (past intros and fades) while still fitting `seconds`.
    Returns {"path", "start", "seconds", "fps", "width", "height", "size_bytes"}. moviepy runs its own
    ffmpeg reader without a timeout; the clip it reads is only `seconds` long.

    The size goes to moviepy as target_resolution, in display orientation from our probe: ffmpeg then
    scales while decoding (cheaper than resizing in Python), and rotated phone videos come out right.
    moviepy 2.2 reads rotation from ffmpeg's banner and does not recognise ffmpeg 9's "Display Matrix"
    wording, so on its own it would treat a portrait video as landscape and squash it.
    """
    # moviepy pulls in numpy, imageio, proglog and decorator machinery: ~0.5 s of import, paid only here.
    from moviepy import VideoFileClip

    path = Path(path)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = info or probe(path)
    seconds = max(min(seconds, info.duration), 0.1)
    if start is None:
        start = min(info.duration * 0.1, max(info.duration - seconds, 0.0))
    start = min(max(start, 0.0), max(info.duration - seconds, 0.0))
    gif_width = min(width, info.width)
    size = (gif_width, max(1, round(info.height * gif_width / info.width)))
    try:
        with VideoFileClip(str(path), audio=False, target_resolution=size) as clip:
            part = clip.subclipped(start, min(start + seconds, clip.duration))
            part.write_gif(str(out), fps=fps, loop=0, logger=None)
    except (OSError, ValueError, RuntimeError) as exc:
        raise MediaError("The preview animation could not be made.", detail=str(exc)) from exc
    return {
        "path": str(out),
        "start": start,
        "seconds": seconds,
        "fps": fps,
        "width": size[0],
        "height": size[1],
        "size_bytes": out.stat().st_size,
    }
