"""The worker's captions step: the audio track to a WAV, the WAV through the speech-to-text
provider (`ai_services.providers.capabilities.transcriber`), its timed segments into cues."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_services.providers.capabilities import transcriber
from quotas.modalities import TRANSCRIBE
from video import media
from video.captions import timing
from video.captions.timing import Cue
from video.models import VideoCaptionCue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transcript:
    cues: list[Cue]
    audio_seconds: float  # what was transcribed, and so billed


def cues_from_segments(segments: list[dict[str, Any]], *, duration: float) -> list[Cue]:
    """Cues from a provider's segments: blank ones dropped, times kept inside the video and ordered."""
    cues: list[Cue] = []
    for segment in segments:
        text = " ".join(str(segment.get("text") or "").split())
        if not text:
            continue
        start = min(max(float(segment.get("start") or 0.0), 0.0), duration)
        end = min(max(float(segment.get("end") or start), start), duration)
        cues.append(Cue(start=round(start, 3), end=round(end, 3), text=text))
    return cues


def captions_transcribe(*, path: str, info: media.VideoInfo) -> Transcript:
    """Transcribe the video's audio track. Provider errors propagate (the caller decides)."""
    provider = transcriber()
    model = provider.default_model(TRANSCRIBE.key)
    with tempfile.TemporaryDirectory(prefix="video-captions-") as tmp:
        wav = media.extract_audio(path, out_path=os.path.join(tmp, "audio.wav"), info=info)
        result = provider.transcribe(path=Path(wav), filename="audio.wav", model=model, language=None, prompt=None)
        energy = timing.frame_energy(wav)
    cues = timing.cues_trim(cues_from_segments(result.segments, duration=info.duration), energy=energy)
    return Transcript(cues=cues, audio_seconds=result.duration or info.duration)


def caption_cue_rows(*, job_id: Any, transcript: Transcript) -> list[VideoCaptionCue]:
    return [
        VideoCaptionCue(job_id=job_id, index=index, start=cue.start, end=cue.end, text=cue.text)
        for index, cue in enumerate(transcript.cues)
    ]


def captions_for_job(*, wanted: bool, path: str, info: media.VideoInfo) -> Transcript | None:
    """The job's transcript, or None when it has no captions to make or the provider failed: a
    video is still worth having without its captions (whose reservation is then refunded)."""
    if not (wanted and info.has_audio):
        return None
    try:
        return captions_transcribe(path=path, info=info)
    except Exception:
        logger.warning("Transcribing the captions failed; the video is kept without them", exc_info=True)
        return None
