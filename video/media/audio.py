"""The audio track of a video as a small mono WAV, for speech-to-text (captions)."""

from __future__ import annotations

from pathlib import Path

from video.media.ffmpeg import _decode_timeout, _input, _run_ffmpeg
from video.media.records import VideoInfo

# What speech-to-text engines read natively (Whisper resamples everything to 16 kHz mono), and
# small enough to send to a hosted provider: 5 minutes are under 10 MB.
AUDIO_SAMPLE_RATE = 16_000


def extract_audio(path: str | Path, *, out_path: str | Path, info: VideoInfo) -> Path:
    """Write the first audio track of `path` to `out_path` (16 kHz mono PCM WAV), on the video's
    timeline: second 0 of the WAV is second 0 of the video, so transcript times are video times."""
    origin = info.start_time
    shift = f"asetpts=PTS{'-' if origin >= 0 else '+'}{abs(origin):.6f}/TB"
    # async fills a late start with silence instead of pulling the speech earlier.
    graph = f"{shift},aresample={AUDIO_SAMPLE_RATE}:async=1:first_pts=0"
    out = Path(out_path)
    _run_ffmpeg(
        [
            *_input(Path(path), info),
            "-map",
            "0:a:0",
            "-vn",
            "-af",
            graph,
            "-ac",
            "1",
            "-c:a",
            "pcm_s16le",
            "-f",
            "wav",
            str(out.resolve()),
        ],
        timeout=_decode_timeout(info.duration),
        what="Audio extraction",
    )
    return out
