"""Planning shared by the engines: frame times, clamping, output sizes, JPEG quality, and the choice
of engine from the keyframe index."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import av

from video.media.probe import _AV_OPTIONS
from video.media.records import _EPS, VideoInfo

# Containers whose keyframe index PyAV exposes completely enough to plan GOP skipping from.
_INDEXED_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})

# engine="auto" takes the PyAV engine when it has to decode at most this share of what ffmpeg decodes.
# Below 1 because the PyAV engine pays per-GOP costs (decoder flush, threads refilling) and Python work.
PYAV_MAX_COST_RATIO = 0.6


def _frame_times(duration: float, interval: float, max_frames: int) -> list[float]:
    count = max(1, math.ceil(duration / interval - 1e-9)) if duration > 0 else max_frames
    return [k * interval for k in range(min(count, max_frames))]


def _clamp_time(t: float, info: VideoInfo) -> float:
    """Clamp into [0, duration): the last instant that still shows a frame is one frame before the end."""
    frame = 1.0 / info.fps if info.fps > 0 else 0.04
    return min(max(t, 0.0), max(info.duration - frame, 0.0))


def _fit(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Size with the longest side at most max_side, aspect kept, never upscaled."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _qscale(jpeg_quality: int) -> int:
    """ffmpeg's mjpeg -q:v (2 best .. 31) for a libjpeg-style quality (1..100). Roughly size-matched:
    measured on 1080p frames, q:v 2 is about Pillow quality 90, 3 about 85, 5 about 75."""
    return min(31, max(2, round((100 - jpeg_quality) / 5)))


def _keyframe_times(path: Path, info: VideoInfo, until: float) -> list[float]:
    """Keyframe times (s, relative to the file start) up to `until` from the container index; [] if the
    container has none. MP4 indexes every sample (216k entries for an hour at 60 fps), so only the
    entries up to `until`, found by bisection, are looked at."""
    if info.container not in _INDEXED_CONTAINERS:
        return []
    try:
        with av.open(str(path), metadata_errors="ignore", options=_AV_OPTIONS) as container:
            vs = container.streams[info.stream_index]
            tb = vs.time_base
            if tb is None:
                return []
            entries = vs.index_entries
            limit = int((until + info.start_time) / tb) + 1
            end = min(bisect.bisect_right(entries, limit, key=lambda e: e.timestamp) + 1, len(entries))
            # MP4 entries carry decode timestamps, which B-frame reordering starts below zero; shifting
            # by that delay approximates the keyframes' presentation times (Matroska cues are already pts).
            delay = min(float(entries[0].timestamp * tb) - info.start_time, 0.0) if end else 0.0
            keyframes = []
            for i in range(end):
                entry = entries[i]
                if entry.is_keyframe:
                    keyframes.append(float(entry.timestamp * tb) - info.start_time - delay)
            return sorted(keyframes)
    except av.FFmpegError:
        return []


def _skip_cost(keyframes: list[float], targets: Sequence[float], frame: float) -> float:
    """Seconds of video the PyAV engine decodes: from the keyframe before each target to the latest
    target of that GOP (plus a few frames of decoder delay per GOP)."""
    latest: dict[int, float] = {}
    for t in targets:
        gop = max(bisect.bisect_right(keyframes, t + _EPS) - 1, 0)
        latest[gop] = max(latest.get(gop, 0.0), t)
    return sum(max(t - keyframes[g], 0.0) + 4 * frame for g, t in latest.items())


def _choose_engine(
    path: Path, info: VideoInfo, targets: Sequence[float], thumb_time: float
) -> Literal["ffmpeg", "pyav"]:
    keyframes = _keyframe_times(path, info, max(*targets, thumb_time))
    if len(keyframes) < 2:
        return "ffmpeg"
    frame = 1.0 / info.fps if info.fps > 0 else 0.04
    window = max(targets)
    ffmpeg_cost = window + frame
    if thumb_time > window + _EPS:
        # ffmpeg engine input-seeks for it: decodes from the keyframe before it.
        ffmpeg_cost += _skip_cost(keyframes, [thumb_time], frame)
    pyav_cost = _skip_cost(keyframes, [*targets, thumb_time], frame)
    return "pyav" if pyav_cost <= PYAV_MAX_COST_RATIO * ffmpeg_cost else "ffmpeg"


def _progress_reporter(on_progress: Callable[[float], None] | None) -> Callable[[float], None]:
    """Monotonic, de-duplicated progress in [0, 1]."""
    last = [-1.0]

    def report(fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if on_progress is not None and (fraction >= last[0] + 0.005 or (fraction == 1.0 and last[0] < 1.0)):
            last[0] = fraction
            on_progress(fraction)

    return report
