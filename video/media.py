"""Media layer of the video pipeline: pure functions over local file paths (no Django).

Public API
----------
``probe(path) -> VideoInfo``
    Container/stream metadata through PyAV (demuxer only, no ffmpeg process), a few ms per file.
``extract_frames(path, *, interval, max_frames, out_dir, ...) -> ExtractionResult``
    JPEG frames at exactly t = 0, interval, 2*interval, ... (< duration, at most max_frames) plus a
    thumbnail, in one decode pass.
``make_thumbnail``, ``make_storyboard`` / ``storyboard_vtt``, ``make_preview_gif``, ``ffmpeg_exe``.

Every failure the caller can act on is a ``MediaError`` whose message is fit to show a user.

Which frame is "the frame at t"
-------------------------------
The frame on screen at t: the last frame whose presentation time is <= t (timeline relative to the
file's start, as ffmpeg shows it). For the usual constant-rate file with a frame exactly at t this is
that frame. ffmpeg's plain ``fps=1`` filter rounds timestamps to the *nearest* output tick, so its frame
"at 1 s" is the one shown at ~1.48 s (measured with a clip that paints its frame number into every frame:
``fps=1`` gave frames 12, 37, 62 ... of a 25 fps clip, ``fps=1:round=up`` gave 0, 25, 50 ... exactly).
``round=up`` maps a frame at time p to tick ceil(p), so tick k receives the last frame with p <= k:
exactly the definition above. ``start_time=0`` makes tick 0 exist even when the first video frame is
a little after 0 (it is then the first frame, as with any later tick before the video starts).

Two engines, one contract (numbers: bench/README.md, from bench/video_bench.py)
-----------------------------------------------------------------------------------------
Decoding is nearly all of the cost (1080p H.264 decodes at ~300 frames/s per core here; a JPEG costs
~7 ms), and the two ways to decode run at the same speed: PyAV (bundling FFmpeg 8 libraries) and the
ffmpeg CLI (imageio-ffmpeg's 9.0) run the same decoder code with frame threads. What differs is how
much has to be decoded.

* ``ffmpeg`` engine: one ffmpeg process, one decode pass, the command a person would write::

      ffmpeg -t LIMIT -i X -filter_complex
        "[0:v]split=2[a][b];[a]fps=1/interval:round=up:start_time=0[f];
         [b]setpts=PTS-T/TB,tpad=...,fps=1/100000:round=up:start_time=0,scale=W:H[t]"
        -map [f] -frames:v n frame_%05d.jpg -map [t] -frames:v 1 thumbnail.jpg

  Once both outputs have their frames ffmpeg stops reading, so 100 frames at 1 s from a 300 s file
  decode ~100 s of it (``-t`` only bounds a runaway). The thumbnail branch uses the same "on screen
  at t" rule as the frames (shift T to 0, then an fps filter with a single tick); tpad keeps it from
  coming out empty when the picture ends before T. A thumbnail past the frames window is not worth
  decoding up to: a second input of the same file, seeked with ``-noaccurate_seek -ss T`` (keyframe
  before T, timestamps relative to T), feeds it in the same process. Progress: ``-progress pipe:1``.
  Cost against the plain one-pass command (``select='gte(t,T)'`` thumbnail, no progress): the same
  within measurement noise — it *is* that command plus a ~5 ms probe.

* ``pyav`` engine: a frame only depends on the frames since its keyframe, so it demuxes every packet
  (cheap: ~25 ms per minute of 1080p) but *decodes* only from the last keyframe before each target up
  to the target; the rest of every GOP is skipped (see ``_pyav_grab``). JPEGs are encoded (swscale to
  RGB + Pillow/libjpeg-turbo) on a worker thread while decoding goes on. With nothing to skip it costs
  what the ffmpeg engine costs (bench: 0.95-0.99 of the plain command's CPU on x264-default GOPs); the
  gain depends on where keyframes fall relative to the targets. Best case, a keyframe on every target
  (1 s GOPs at exactly 30 fps): a quarter of the plain command's time. Worst case, every target is the
  *last* frame of its GOP (29.97 fps with 30-frame GOPs: keyframes at 1.001 s, 2.002 s, ... so the
  frame on screen at 2 s closes the GOP before): nothing to skip. 2 s GOPs at 1 s intervals halve it.

``engine="auto"`` (default) reads the keyframe index (MP4/MOV sample table, Matroska cues; a few ms)
and takes ``pyav`` when it would decode at most ``PYAV_MAX_COST_RATIO`` (0.6) of what ffmpeg decodes,
else ``ffmpeg`` (the estimate tracks the measurement: 0.53 estimated, 0.55-0.57 of the CPU measured on
the bench file that has both aligned and misaligned keyframes). AVI and ASF always take ``ffmpeg``.
Both engines give the same frames: the tests check each against an independent decode, frame number by
frame number, for every container and for B-frames, open GOPs, HEVC and 29.97 fps. The ffmpeg engine's
subprocess also keeps a decoder crash on a hostile file out of the worker process; the PyAV engine only
runs in-process on the containers and files where it wins.

Containers and damaged files
----------------------------
``ALLOWED_CONTAINERS``: MP4/MOV/3GP (mov demuxer), AVI, ASF (WMV) and Matroska/WebM, what the upload
form accepts. A file with no video stream (audio only; cover art does not count) is refused with "no
video stream"; any other container with "Unsupported file format": GIF and images (not videos to us),
MPEG-TS/M2TS, MPEG-PS, FLV and Ogg (estimated durations and timelines starting at arbitrary offsets,
none of which the tests cover; adding one is a line here plus a test clip). ffmpeg is then pinned to
the demuxer probe saw and to local files (see ``_input``).

Damaged files: random bytes and an MP4 cut before its index (the ``moov`` box at the end) do not open;
an MP4 with the index first but cut short fails the sample-table check; a Matroska/WebM file whose data
ends well before its header's duration fails a tail check; WebM without a duration (browser
MediaRecorder) gets one measured from its packets. A cut AVI or ASF file is accepted with the shorter
duration ffmpeg measures: what is left of it is a valid video.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import dataclasses
import math
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.logging
from PIL import Image

from core import ffmpeg as core_ffmpeg

__all__ = [
    "ALLOWED_CONTAINERS",
    "PYAV_MAX_COST_RATIO",
    "ExtractionResult",
    "FrameRecord",
    "MediaError",
    "Thumbnail",
    "VideoInfo",
    "extract_frames",
    "ffmpeg_exe",
    "make_preview_gif",
    "make_storyboard",
    "make_thumbnail",
    "probe",
    "storyboard_vtt",
]

# PyAV/FFmpeg demuxer names (``container.format.name``) that uploads may use.
ALLOWED_CONTAINERS: frozenset[str] = frozenset(
    {
        "mov,mp4,m4a,3gp,3g2,mj2",
        "avi",
        "asf",
        "matroska,webm",
    }
)

# Containers whose keyframe index PyAV exposes completely enough to plan GOP skipping from.
_INDEXED_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})

# engine="auto" takes the PyAV engine when it has to decode at most this share of what ffmpeg decodes.
# Below 1 because the PyAV engine pays per-GOP costs (decoder flush, threads refilling) and Python work.
PYAV_MAX_COST_RATIO = 0.6

Engine = Literal["auto", "ffmpeg", "pyav"]

FRAME_NAME = "frame_{:05d}.jpg"
THUMBNAIL_NAME = "thumbnail.jpg"
_FRAME_PATTERN = re.compile(r"frame_\d{5}\.jpg")

# Timestamps closer than this are the same instant (container time bases are far finer than 1 µs
# rounding errors of float seconds, and far coarser than anything a frame rate can produce).
_EPS = 1e-6


class MediaError(Exception):
    """A file that cannot be used, or a media operation that failed; str() is fit to show a user.

    ``detail`` keeps the tool output (ffmpeg stderr tail, PyAV message) for logs. ``code`` tells a
    file we do not take (``unsupported_video_format``, ``no_video_stream``) from one that is broken
    (``invalid_video``, the default).
    """

    def __init__(self, message: str, *, detail: str | None = None, code: str = "invalid_video") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.code = code


@dataclass(frozen=True, slots=True)
class VideoInfo:
    duration: float  # seconds
    width: int  # display size: after rotation, in stored pixels (sample aspect ratio not applied)
    height: int
    fps: float  # average frame rate, 0.0 if the file does not tell
    codec: str  # video codec, FFmpeg's name ("h264", "vp9", "wmv2", ...)
    bitrate: int | None  # whole file, bits/s
    rotation: int  # clockwise degrees the picture is turned for display: 0, 90, 180 or 270
    has_audio: bool
    container: str  # demuxer name, one of ALLOWED_CONTAINERS
    size_bytes: int
    has_video: bool = True  # always True: probe refuses files without video
    stream_index: int = 0  # index of the video stream used (first that is not cover art)
    start_time: float = 0.0  # container start in seconds; timestamps here are relative to it
    audio_codec: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class FrameRecord:
    index: int
    timestamp: float  # the requested time: index * interval
    width: int
    height: int
    path: Path
    size_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "path": str(self.path)}


@dataclass(frozen=True, slots=True)
class Thumbnail:
    timestamp: float  # requested time after clamping into the video
    width: int
    height: int
    path: Path
    size_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "path": str(self.path)}


@dataclass(frozen=True, slots=True)
class ExtractionResult:
    frames: list[FrameRecord]
    thumbnail: Thumbnail
    info: VideoInfo
    interval: float
    engine: Literal["ffmpeg", "pyav"]
    elapsed: float  # seconds of wall time

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames": [f.as_dict() for f in self.frames],
            "thumbnail": self.thumbnail.as_dict(),
            "info": self.info.as_dict(),
            "interval": self.interval,
            "engine": self.engine,
            "elapsed": self.elapsed,
        }


# --------------------------------------------------------------------------------------------------
# ffmpeg binary and subprocess plumbing


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (core.ffmpeg: the pinned one unless FFMPEG_BINARY names another)."""
    try:
        return core_ffmpeg.ffmpeg_exe()
    except core_ffmpeg.FfmpegUnavailable as exc:
        raise MediaError(
            "Video processing is unavailable: ffmpeg is not usable", detail=str(exc), code="ffmpeg_unavailable"
        ) from exc


def _stderr_message(stderr: str, limit: int = 2000) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "\n".join(lines)[-limit:]


def _run_ffmpeg(
    args: Sequence[str],
    *,
    timeout: float,
    what: str,
    on_progress_line: Callable[[str, str], None] | None = None,
) -> None:
    """Run ffmpeg (no shell) with a hard timeout; a failure becomes MediaError(f"{what} failed ...").

    With on_progress_line, ``-progress pipe:1`` key=value lines are handed over as they come; an
    exception raised by the callback kills ffmpeg and propagates (a way to cancel). stderr goes to a
    temporary file rather than a pipe: a corrupt input can log megabytes, and a full pipe would stall
    ffmpeg.
    """
    # -copyts: timestamps as stored in the file; _timeline() shifts them explicitly (see _input).
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-copyts"]
    if on_progress_line is not None:
        cmd += ["-nostats", "-progress", "pipe:1", "-stats_period", "0.25"]
    cmd += list(args)
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as err:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if on_progress_line else subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        watchdog = threading.Timer(timeout, kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            if on_progress_line is not None and proc.stdout is not None:
                for line in proc.stdout:
                    key, sep, value = line.strip().partition("=")
                    if sep:
                        on_progress_line(key, value)
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            watchdog.cancel()
            if proc.stdout is not None:
                proc.stdout.close()
        err.seek(0)
        stderr = err.read()
    if timed_out.is_set():
        raise MediaError(f"{what} took longer than {timeout:.0f} s and was stopped", detail=_stderr_message(stderr))
    if returncode != 0:
        raise MediaError(
            f"{what} failed: {_stderr_message(stderr, 300) or f'ffmpeg exit code {returncode}'}",
            detail=_stderr_message(stderr),
        )


def _input(path: Path, info: VideoInfo, *, seek: float | None = None) -> list[str]:
    """ffmpeg input arguments for a probed file. The demuxer is the one probe accepted (ffmpeg would
    otherwise sniff again, and a playlist or concat script named .mp4 could pull in other files); local
    files only, no network; the path absolute, so neither a leading "-" nor a "proto:" prefix in a file
    name means anything to ffmpeg.

    ``seek`` (seconds on the file's timeline) jumps to the keyframe before it without discarding up to
    it (``-noaccurate_seek``). The position is given as an absolute timestamp (``-seek_timestamp``):
    ffmpeg releases disagree on where a file starts (5.1 counts an Opus track's pre-skip as a negative
    start, later releases do not), so nothing here may depend on ffmpeg's idea of the start.
    """
    demuxer = info.container.split(",")[0]
    args = ["-f", demuxer, "-protocol_whitelist", "file"]
    if seek is not None:
        args += ["-noaccurate_seek", "-seek_timestamp", "1", "-ss", f"{info.start_time + seek:.6f}"]
    return [*args, "-i", str(path.resolve())]


def _timeline(info: VideoInfo, at: float = 0.0) -> str:
    """Filter that puts a stream on the file's timeline (as probe reads it) shifted so ``at`` is 0.

    ffmpeg runs with ``-copyts`` (see _run_ffmpeg), so frames reach the graph with the timestamps
    stored in the file, and this one shift is the only offset applied whatever ffmpeg release runs.
    """
    origin = info.start_time + at
    return f"setpts=PTS{'-' if origin >= 0 else '+'}{abs(origin):.6f}/TB"


def _decode_timeout(seconds_of_video: float) -> float:
    # Decoding runs far faster than real time for anything up to 4K on one core; 4x real time plus a
    # minute of slack only trips on a stuck process.
    return 60.0 + 4.0 * max(seconds_of_video, 0.0)


# --------------------------------------------------------------------------------------------------
# probe

# Local files only: a playlist-like file must not make the demuxer fetch URLs while we probe it.
_AV_OPTIONS = {"protocol_whitelist": "file"}
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
# PyAV routes FFmpeg's log through a process-wide level; dumps_format() needs INFO for a moment.
_LOG_LEVEL_LOCK = threading.Lock()


def _display_rotation(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """Clockwise display rotation of the stream, snapped to a multiple of 90.

    PyAV 18 exposes the display matrix only on decoded frames; decoding one 1080p frame costs 5-40 ms
    while FFmpeg's own format dump (av_dump_format, the text of ``ffmpeg -i``) has it for ~0.1 ms:
    "Display Matrix: rotation of -90.00 degrees" (FFmpeg prints the counter-clockwise angle). The
    legacy ``rotate`` tag (clockwise) is the fallback.
    """
    with _LOG_LEVEL_LOCK:
        previous = av.logging.get_level()
        try:
            if previous is None or previous < av.logging.INFO:
                av.logging.set_level(av.logging.INFO)
            dump = container.dumps_format()
        finally:
            av.logging.set_level(previous)
    # The dump lists streams in order; keep the section of ours.
    sections = re.split(r"\n\s*Stream #\d+:", "\n" + dump)
    section = sections[stream.index + 1] if len(sections) > stream.index + 1 else ""
    match = _ROTATION_RE.search(section)
    if match:
        return round(-float(match.group(1)) / 90) * 90 % 360
    tag = stream.metadata.get("rotate")
    if tag and re.fullmatch(r"-?\d+", tag.strip()):
        return round(int(tag) / 90) * 90 % 360
    return 0


def _scan_duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    """Duration by demuxing every packet of the stream (no decoding), for files whose header has
    none, e.g. browser MediaRecorder WebM. Returns 0.0 when no packet has a timestamp."""
    end = None
    for packet in container.demux(stream):
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None:
            continue
        packet_end = ts + (packet.duration or 0)
        end = packet_end if end is None else max(end, packet_end)
    if end is None or stream.time_base is None:
        return 0.0
    start = stream.start_time or 0
    return max(float((end - start) * stream.time_base), 0.0)


def _check_complete(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, size_bytes: int
) -> None:
    """MP4/MOV: every sample's byte range is in the sample table; a file shorter than the last sample's
    end was cut off (an interrupted upload with the index at the front)."""
    if container.format.name != "mov,mp4,m4a,3gp,3g2,mj2":
        return
    for s in container.streams:
        entries = s.index_entries
        if len(entries) and entries[-1].pos + entries[-1].size > size_bytes:
            raise MediaError("The video file is incomplete (truncated).")


def _check_tail(container: av.container.InputContainer, duration: float) -> None:
    """Matroska/WebM keep the duration in the header, so a cut-off file still claims its full length.
    Demux (no decoding) from the keyframe before the last two seconds: some stream must reach close
    to the claimed end. Bounded: when the index is too sparse to seek near the end, it gives up after
    a few thousand packets and trusts the header."""
    try:
        container.seek(int(max(duration - 2.0, 0.0) * 1e6), backward=True)
    except av.FFmpegError:
        return  # not seekable (no cues): nothing to conclude from
    end = None
    for count, packet in enumerate(container.demux()):
        if count >= 5000:
            return
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None or packet.time_base is None:
            continue
        packet_end = float((ts + (packet.duration or 0)) * packet.time_base)
        end = packet_end if end is None else max(end, packet_end)
    start = container.start_time / 1e6 if container.start_time is not None else 0.0
    # Muxers round the duration up to a frame or so; only a real gap means the end is missing.
    if end is None or end - start < duration - max(1.0, 0.05 * duration):
        raise MediaError("The video file is incomplete (truncated).")


def _codec_name(stream: av.stream.Stream) -> str | None:
    cc = stream.codec_context
    return cc.codec.canonical_name if cc is not None and cc.codec is not None else None


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read container and stream metadata. Raises MediaError for anything that is not a usable video."""
    path = Path(path)
    try:
        size_bytes = path.stat().st_size
    except OSError as exc:
        raise MediaError("The video file could not be read.", detail=str(exc)) from exc
    if size_bytes == 0:
        raise MediaError("The video file is empty.")
    try:
        container = av.open(str(path), metadata_errors="ignore", options=_AV_OPTIONS)
    except av.FFmpegError as exc:
        raise MediaError(
            "The file is not a readable video (unknown format, corrupt or truncated).", detail=str(exc)
        ) from exc
    except OSError as exc:
        raise MediaError("The video file could not be read.", detail=str(exc)) from exc
    with container:
        fmt = container.format.name
        # Cover art (an attached picture) is a "video" stream of one image: not a video.
        streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        audio = list(container.streams.audio)
        if not streams:
            raise MediaError("The file has no video stream.", code="no_video_stream")
        if fmt not in ALLOWED_CONTAINERS:
            raise MediaError(
                f"Unsupported file format ({container.format.long_name or fmt}); "
                "upload MP4, MOV, AVI, WMV, MKV or WebM.",
                code="unsupported_video_format",
            )
        vs = streams[0]
        cc = vs.codec_context
        if cc is None or cc.codec is None or not cc.width or not cc.height:
            raise MediaError("The video stream cannot be decoded (unknown codec or corrupt header).")
        _check_complete(container, vs, size_bytes)
        rotation = _display_rotation(container, vs)
        start_time = container.start_time / 1e6 if container.start_time is not None else 0.0
        if container.duration:
            duration = container.duration / 1e6
        elif vs.duration and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        else:
            duration = 0.0
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        info = VideoInfo(
            duration=duration,
            width=cc.height if rotation in (90, 270) else cc.width,
            height=cc.width if rotation in (90, 270) else cc.height,
            fps=float(rate) if rate else 0.0,
            codec=cc.codec.canonical_name,  # "h264", not the decoder's name ("libdav1d" decodes "av1")
            bitrate=container.bit_rate or None,
            rotation=rotation,
            has_audio=bool(audio),
            container=fmt,
            size_bytes=size_bytes,
            stream_index=vs.index,
            start_time=start_time,
            audio_codec=_codec_name(audio[0]) if audio else None,
        )
        try:
            if duration <= 0:
                duration = _scan_duration(container, vs)
                if duration <= 0:
                    raise MediaError("The video has no frames.")
                bitrate = info.bitrate or int(size_bytes * 8 / duration)
                info = dataclasses.replace(info, duration=duration, bitrate=bitrate)
            elif fmt == "matroska,webm":
                _check_tail(container, duration)
        except av.FFmpegError as exc:
            raise MediaError("The video file is corrupt.", detail=str(exc)) from exc
    return info


# --------------------------------------------------------------------------------------------------
# planning shared by the engines


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


def _clear_outputs(out_dir: Path) -> None:
    """Remove frames/thumbnail of an earlier run in out_dir, so no stale file passes for a new one."""
    for entry in out_dir.iterdir():
        if entry.is_file() and (_FRAME_PATTERN.fullmatch(entry.name) or entry.name == THUMBNAIL_NAME):
            entry.unlink()


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:  # reads the header only
        return img.size


# --------------------------------------------------------------------------------------------------
# ffmpeg engine


def _rate(interval: float) -> str:
    """1/interval as an exact rational string for ffmpeg's fps option."""
    frac = Fraction(interval).limit_denominator(1_000_000)
    return f"{frac.denominator}/{frac.numerator}"


def _progress_reporter(on_progress: Callable[[float], None] | None) -> Callable[[float], None]:
    """Monotonic, de-duplicated progress in [0, 1]."""
    last = [-1.0]

    def report(fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if on_progress is not None and (fraction >= last[0] + 0.005 or (fraction == 1.0 and last[0] < 1.0)):
            last[0] = fraction
            on_progress(fraction)

    return report


def _thumbnail_chain(t: float, size: tuple[int, int]) -> str:
    """Filter chain picking the frame on screen at t from a stream whose timestamps are relative to t.

    Same rule as the frames: an fps filter with one tick per 100000 s puts the last frame at or before
    t on tick 0 (``select='gte(t,T)'`` would take the first frame after t instead). The fps filter emits
    tick 0 only when a later frame arrives, so tpad clones the last frame past t: a video that ends
    before t (audio longer than video, or a header duration that overstates) still yields its last frame
    instead of an empty output, which ffmpeg treats as an error.
    """
    return (
        f"tpad=stop_mode=clone:stop_duration={t + 1:.6f},fps=fps=1/100000:round=up:start_time=0,"
        f"scale={size[0]}:{size[1]}"
    )


def _extract_ffmpeg(
    path: Path,
    info: VideoInfo,
    *,
    interval: float,
    targets: list[float],
    thumb_time: float,
    thumb_size: tuple[int, int],
    frame_size: tuple[int, int] | None,
    out_dir: Path,
    qscale: int,
    report: Callable[[float], None],
    timeout: float | None,
) -> None:
    n = len(targets)
    window = targets[-1]
    thumb_in_window = thumb_time <= window + _EPS
    frames_chain = f"{_timeline(info)},fps={_rate(interval)}:round=up:start_time=0"
    if frame_size is not None:
        frames_chain += f",scale={frame_size[0]}:{frame_size[1]}"
    thumb_chain = _thumbnail_chain(thumb_time, thumb_size)
    # Bound reading even if an output never completes (a thumbnail past the last video frame).
    args = ["-t", f"{window + 2 * interval + 1:.6f}", *_input(path, info)]
    src = f"[0:{info.stream_index}]"
    if thumb_in_window:
        graph = f"{src}split=2[a][b];[a]{frames_chain}[f];[b]{_timeline(info, thumb_time)},{thumb_chain}[t]"
    else:
        # A second input of the same file, seeked to the keyframe before T.
        args += _input(path, info, seek=thumb_time)
        graph = f"{src}{frames_chain}[f];[1:{info.stream_index}]{_timeline(info, thumb_time)},{thumb_chain}[t]"
    frames_out = ["-map", "[f]", "-frames:v", str(n), "-q:v", str(qscale), "-start_number", "0", "-f", "image2"]
    thumb_out = ["-map", "[t]", "-frames:v", "1", "-q:v", str(qscale), "-update", "1", "-f", "image2"]
    args += ["-filter_complex", graph, *frames_out, str(out_dir / "frame_%05d.jpg")]
    args += [*thumb_out, str(out_dir / THUMBNAIL_NAME)]
    total = n * interval  # out_time of the frames output reaches n*interval when the last frame is out

    def on_line(key: str, value: str) -> None:
        if key == "out_time_us" and value.lstrip("-").isdigit():
            report(int(value) / 1e6 / total)
        elif key == "frame" and value.isdigit():
            report(int(value) / n)

    _run_ffmpeg(args, timeout=timeout or _decode_timeout(window), what="Frame extraction", on_progress_line=on_line)


# --------------------------------------------------------------------------------------------------
# PyAV engine


@dataclass(slots=True)
class _Job:
    time: float
    key: Any


def _frame_seconds(frame: av.VideoFrame, tb: Fraction, offset: float) -> float | None:
    ts = frame.pts if frame.pts is not None else frame.dts
    return None if ts is None else float(ts * tb) - offset


def _pyav_grab(
    path: Path,
    info: VideoInfo,
    jobs: list[_Job],
    sink: Callable[[_Job, av.VideoFrame], None],
    report: Callable[[float], None],
    deadline: float,
) -> None:
    """Decode only what each job needs and hand sink(job, frame) the frame shown at job.time.

    Jobs must be sorted by time. Packets are demuxed in order; while the next job's time is ahead, a
    packet displayed at or before it is held back rather than decoded: a later keyframe that is still
    at or before that time makes everything held useless (dropped; the decoder is flushed and restarts
    at that keyframe), while the first packet displayed after it proves the wanted frame is in this
    GOP (the held packets are decoded then). So each GOP is decoded from its keyframe up to its last
    wanted frame and no further, and GOPs with nothing wanted are never decoded. At the end of the
    stream the last frame serves jobs within its duration, and the thumbnail job in any case.
    """
    with av.open(str(path), metadata_errors="ignore", options=_AV_OPTIONS) as container:
        vs = container.streams[info.stream_index]
        vs.thread_type = "AUTO"  # frame + slice threads, as the ffmpeg CLI decodes
        cc = vs.codec_context
        tb = vs.time_base
        offset = info.start_time
        ji = 0
        prev: av.VideoFrame | None = None
        prev_time = 0.0
        floor: float | None = None  # after a jump: frames before the restart keyframe are not usable
        held: list[av.Packet] = []
        restart = False  # held[0] is a keyframe to restart decoding at
        fed = False  # the decoder has been given packets since it was last flushed

        def handle(frame: av.VideoFrame) -> None:
            nonlocal ji, prev, prev_time
            ft = _frame_seconds(frame, tb, offset)
            if ft is None or (floor is not None and ft < floor - _EPS):
                # Leading pictures of an open GOP reference frames that were skipped.
                return
            while ji < len(jobs):
                target = jobs[ji].time
                if ft <= target + _EPS:
                    duration = float(frame.duration * tb) if frame.duration else 0.0
                    if not (abs(ft - target) <= _EPS or ft + duration > target + _EPS):
                        break  # an earlier frame; the next one may still be at or before target
                    chosen = frame  # on screen at target: no need to wait for the next frame
                else:
                    # The first frame after target arrived, so the previous one was on screen at target
                    # (before the first frame, the first frame stands in, like ffmpeg's start_time=0).
                    chosen = prev if prev is not None else frame
                sink(jobs[ji], chosen)
                ji += 1
                report(ji / len(jobs))
            prev, prev_time = frame, ft

        def decode(packet: av.Packet | None) -> None:
            nonlocal fed
            fed = True
            try:
                frames = cc.decode(packet)
            except av.error.InvalidDataError:
                return  # a damaged packet: skip it and go on, as the ffmpeg CLI does
            for frame in frames:
                handle(frame)

        def decode_held() -> None:
            nonlocal prev, floor, restart, fed
            if restart:
                if fed:
                    cc.flush_buffers()
                    fed = False
                key_ts = held[0].pts if held[0].pts is not None else held[0].dts
                prev, floor, restart = None, (None if key_ts is None else float(key_ts * tb) - offset), False
            for pending in held:
                decode(pending)
            held.clear()

        for packet in container.demux(vs):
            if ji >= len(jobs):
                break
            if time.monotonic() > deadline:
                raise MediaError("Frame extraction took too long and was stopped.")
            if packet.size == 0:
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            pt = None if ts is None else float(ts * tb) - offset
            if pt is not None and pt <= jobs[ji].time + _EPS:
                if packet.is_keyframe:
                    held, restart = [packet], True
                    continue
                if held or prev is not None:
                    held.append(packet)
                    continue
            decode_held()
            decode(packet)
        if ji < len(jobs):
            decode_held()
            decode(None)
        if prev is not None:
            last_end = prev_time + (float(prev.duration * tb) if prev.duration else 0.0)
            for job in jobs[ji:]:
                if job.time < last_end - _EPS or job.key == "thumbnail":
                    sink(job, prev)


def _to_image(frame: av.VideoFrame, size: tuple[int, int] | None, rotation: int) -> Image.Image:
    """RGB Pillow image of the frame turned upright; size is the upright target size."""
    if size is not None and rotation in (90, 270):
        size = (size[1], size[0])
    kwargs: dict[str, Any] = {"format": "rgb24"}
    if size is not None and size != (frame.width, frame.height):
        kwargs.update(width=size[0], height=size[1], interpolation="AREA")
    rgb = frame.reformat(**kwargs)
    plane = rgb.planes[0]
    img = Image.frombuffer("RGB", (rgb.width, rgb.height), plane, "raw", "RGB", plane.line_size, 1)
    if rotation == 90:
        img = img.transpose(Image.Transpose.ROTATE_270)  # Pillow's ROTATE_n turn counter-clockwise
    elif rotation == 180:
        img = img.transpose(Image.Transpose.ROTATE_180)
    elif rotation == 270:
        img = img.transpose(Image.Transpose.ROTATE_90)
    return img


def _extract_pyav(
    path: Path,
    info: VideoInfo,
    *,
    targets: list[float],
    thumb_time: float,
    thumb_size: tuple[int, int],
    frame_size: tuple[int, int] | None,
    out_dir: Path,
    jpeg_quality: int,
    report: Callable[[float], None],
    timeout: float | None,
) -> None:
    jobs = sorted(
        [_Job(t, k) for k, t in enumerate(targets)] + [_Job(thumb_time, "thumbnail")],
        key=lambda j: (j.time, j.key == "thumbnail"),
    )
    deadline = time.monotonic() + (timeout or _decode_timeout(max(targets[-1], thumb_time)))
    # JPEG work (swscale + libjpeg, both GIL-free) overlaps decoding on one worker thread; the bound
    # on in-flight frames caps memory (a decoded 4K frame is 12 MB).
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="jpeg")
    in_flight: list[concurrent.futures.Future[None]] = []

    def write(frame: av.VideoFrame, size: tuple[int, int] | None, dest: Path) -> None:
        _to_image(frame, size, info.rotation).save(dest, "JPEG", quality=jpeg_quality)

    def sink(job: _Job, frame: av.VideoFrame) -> None:
        if job.key == "thumbnail":
            future = pool.submit(write, frame, thumb_size, out_dir / THUMBNAIL_NAME)
        else:
            future = pool.submit(write, frame, frame_size, out_dir / FRAME_NAME.format(job.key))
        in_flight.append(future)
        while len(in_flight) > 3:
            in_flight.pop(0).result()

    try:
        _pyav_grab(path, info, jobs, sink, report, deadline)
        for future in in_flight:
            future.result()
    except av.FFmpegError as exc:
        raise MediaError("The video could not be decoded.", detail=str(exc)) from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------------------------------
# extract_frames


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


# --------------------------------------------------------------------------------------------------
# on-demand thumbnail


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


# --------------------------------------------------------------------------------------------------
# storyboard


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
