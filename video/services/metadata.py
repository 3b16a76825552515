"""What the probe of an upload tells about the video: its stored `metadata` (snake_case, a
`VideoMetadata`), the container name clients see, and times clamped into the video."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

from django.utils.text import get_valid_filename

from video import media


class VideoMetadata(TypedDict):
    """`VideoJob.metadata` as stored. The API renders it camelCase (`VideoMetadataField`).
    Width and height are the display size (rotation applied)."""

    duration: float
    width: int
    height: int
    fps: float
    codec: str
    bitrate: int | None
    rotation: int
    has_audio: bool
    size: int
    container: str


# Demuxer names (media.ALLOWED_CONTAINERS) -> the format name clients see. One demuxer reads
# MP4 and MOV, another Matroska and WebM; the file name and the codec tell them apart.
WEBM_CODECS = frozenset({"vp8", "vp9", "av1"})
CONTAINER_EXTENSIONS = {"mp4": ".mp4", "mov": ".mov", "avi": ".avi", "wmv": ".wmv", "webm": ".webm", "mkv": ".mkv"}


def container_name(info: media.VideoInfo, filename: str = "") -> str:
    extension = Path(filename).suffix.lower()
    if info.container.startswith("mov,mp4"):
        return "mov" if extension in {".mov", ".qt"} else "mp4"
    if info.container == "asf":
        return "wmv"
    if info.container.startswith("matroska"):
        return "webm" if info.codec in WEBM_CODECS and extension != ".mkv" else "mkv"
    return info.container.split(",")[0]


def metadata_from_info(info: media.VideoInfo, *, container: str = "") -> VideoMetadata:
    return {
        "duration": round(float(info.duration), 3),
        "width": info.width,
        "height": info.height,
        "fps": round(float(info.fps), 3) if info.fps else 0.0,
        "codec": info.codec,
        "bitrate": info.bitrate,
        "rotation": info.rotation,
        "has_audio": bool(info.has_audio),
        "size": info.size_bytes,
        "container": container or container_name(info),
    }


def clamp_timestamp(timestamp: float, *, duration: float, fps: float | None) -> float:
    """Keep a requested time inside the video: the last frame starts one frame before the end."""
    if duration <= 0:
        return 0.0
    frame = 1.0 / fps if fps and fps > 0 else 0.1
    latest = max(duration - frame, 0.0)
    return round(min(max(timestamp, 0.0), latest), 3)


def stored_filename(original: str, container: str) -> str:
    """A safe name for the stored upload: the client's name cleaned, with the extension of what
    the content really is."""
    try:
        stem = get_valid_filename(Path(original).stem)[:80]
    except Exception:  # get_valid_filename refuses names that clean to nothing
        stem = ""
    return f"{stem or 'video'}{CONTAINER_EXTENSIONS.get(container, '.bin')}"
