"""Container and stream metadata through PyAV (demuxer only, no ffmpeg process): ``probe``.

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

import dataclasses
import os
import re
import threading
from pathlib import Path

import av
import av.logging

from video.media.errors import MediaError
from video.media.records import VideoInfo

# PyAV/FFmpeg demuxer names (``container.format.name``) that uploads may use.
ALLOWED_CONTAINERS: frozenset[str] = frozenset(
    {
        "mov,mp4,m4a,3gp,3g2,mj2",
        "avi",
        "asf",
        "matroska,webm",
    }
)

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
            # PyAV 18's stubs omit Container.dumps_format (defined in av/container/core.py).
            dump = container.dumps_format()  # type: ignore[attr-defined]
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
