"""``make_thumbnail``: one JPEG of the frame on screen at a given time, made on demand."""

from __future__ import annotations

import os
from pathlib import Path

from video.media.errors import MediaError
from video.media.ffmpeg import _input, _run_ffmpeg, _thumbnail_chain, _timeline
from video.media.images import _image_size
from video.media.planning import _clamp_time, _fit, _qscale
from video.media.probe import probe
from video.media.records import Thumbnail, VideoInfo


def make_thumbnail(
    path: str | os.PathLike[str],
    *,
    timestamp: float,
    out_path: str | os.PathLike[str],
    max_side: int = 320,
    jpeg_quality: int = 90,
    info: VideoInfo | None = None,
    timeout: float = 60.0,
) -> Thumbnail:
    """JPEG of the frame on screen at timestamp (clamped into the video), longest side max_side (never
    upscaled).

    Input seeking (``-ss`` before ``-i``) jumps to the keyframe before timestamp; the fps filter then
    keeps the last frame at or before it, as extract_frames does. Cost: one GOP at most, wherever it is.
    """
    path = Path(path)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = info or probe(path)
    t = _clamp_time(timestamp, info)
    width, height = _fit(info.width, info.height, max_side)
    out.unlink(missing_ok=True)
    source = _input(path, info, seek=t)
    graph = f"[0:{info.stream_index}]{_timeline(info, t)},{_thumbnail_chain(t, (width, height))}"
    output = ["-frames:v", "1", "-q:v", str(_qscale(jpeg_quality)), "-update", "1", "-f", "image2", str(out)]
    _run_ffmpeg([*source, "-filter_complex", graph, *output], timeout=timeout, what="Thumbnail")
    if out.is_file():
        w, h = _image_size(out)
        return Thumbnail(timestamp=t, width=w, height=h, path=out, size_bytes=out.stat().st_size)
    raise MediaError("No frame could be decoded from the video.")
