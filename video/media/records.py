"""What the media layer returns: probed metadata, frame and thumbnail records, the names of output
files, and the shared notion of "the same instant"."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Engine = Literal["auto", "ffmpeg", "pyav"]

FRAME_NAME = "frame_{:05d}.jpg"
THUMBNAIL_NAME = "thumbnail.jpg"
_FRAME_PATTERN = re.compile(r"frame_\d{5}\.jpg")

# Timestamps closer than this are the same instant (container time bases are far finer than 1 µs
# rounding errors of float seconds, and far coarser than anything a frame rate can produce).
_EPS = 1e-6


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
