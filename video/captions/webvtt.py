"""Caption cues rendered as a WebVTT file (https://www.w3.org/TR/webvtt1/)."""

from __future__ import annotations

from collections.abc import Iterable

from video.models import VideoCaptionCue


def _timestamp(seconds: float) -> str:
    millis = max(round(seconds * 1000), 0)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _cue_text(text: str) -> str:
    # "-->" would end the cue's timing line and a blank line would end the cue: neither may appear
    # in a payload; & and < start entities and tags in WebVTT.
    text = " ".join(text.split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def captions_vtt(cues: Iterable[VideoCaptionCue]) -> str:
    lines = ["WEBVTT", ""]
    for position, cue in enumerate(cues, start=1):
        lines += [str(position), f"{_timestamp(cue.start)} --> {_timestamp(cue.end)}", _cue_text(cue.text), ""]
    return "\n".join(lines)
