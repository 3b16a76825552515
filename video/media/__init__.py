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

Modules: ``probe`` (metadata), ``ffmpeg`` (running ffmpeg), ``planning`` (times, sizes, engine choice),
``engines`` (ffmpeg and PyAV extraction), ``images`` (Pillow), ``frames`` (``extract_frames``),
``thumbnails``, ``previews`` (storyboard, GIF); ``records`` and ``errors`` hold what they return and raise.
"""

from __future__ import annotations

from video.media.audio import AUDIO_SAMPLE_RATE, extract_audio
from video.media.errors import MediaError
from video.media.ffmpeg import ffmpeg_exe
from video.media.frames import extract_frames
from video.media.planning import PYAV_MAX_COST_RATIO
from video.media.previews import make_preview_gif, make_storyboard, storyboard_vtt
from video.media.probe import ALLOWED_CONTAINERS, probe
from video.media.records import ExtractionResult, FrameRecord, Thumbnail, VideoInfo
from video.media.thumbnails import make_thumbnail

__all__ = [
    "ALLOWED_CONTAINERS",
    "AUDIO_SAMPLE_RATE",
    "PYAV_MAX_COST_RATIO",
    "ExtractionResult",
    "FrameRecord",
    "MediaError",
    "Thumbnail",
    "VideoInfo",
    "extract_audio",
    "extract_frames",
    "ffmpeg_exe",
    "make_preview_gif",
    "make_storyboard",
    "make_thumbnail",
    "probe",
    "storyboard_vtt",
]
