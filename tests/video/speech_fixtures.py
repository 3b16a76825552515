"""Videos whose audio track is synthesized speech (piper, the offline TTS) over a test pattern, with
the time each sentence is actually spoken: the ground truth for captions and in-video search."""

from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from imageio_ffmpeg import get_ffmpeg_exe

LEAD_SECONDS = 0.8  # silence before the first sentence
GAP_SECONDS = 1.2  # silence between sentences: enough for a recognizer to end a segment
TAIL_SECONDS = 1.0


@dataclass(frozen=True)
class Spoken:
    text: str
    start: float  # seconds of the video where the first word begins
    end: float  # ... and where the last word ends


def _speech_bounds(samples: np.ndarray, rate: int) -> tuple[int, int]:
    """First and last sample of speech: where the 10 ms energy rises above a fraction of the peak
    (piper pads a sentence with a little silence of its own)."""
    window = rate // 100
    frames = samples[: len(samples) // window * window].astype(np.float32).reshape(-1, window)
    energy = np.sqrt((frames**2).mean(axis=1))
    loud = np.flatnonzero(energy > energy.max() * 0.05)
    return int(loud[0] * window), int((loud[-1] + 1) * window)


def make_speech_video(path: Path, sentences: list[str]) -> list[Spoken]:
    """Write an MP4 (test pattern + AAC speech) saying `sentences` one after another; return when
    each is spoken."""
    from ai_services.providers.local import piper_tts

    parts: list[np.ndarray] = []
    spoken: list[Spoken] = []
    rate = 0
    position = 0
    for number, sentence in enumerate(sentences):
        samples, rate = piper_tts.synthesize(sentence)
        silence = np.zeros(int(rate * (LEAD_SECONDS if number == 0 else GAP_SECONDS)), dtype=np.int16)
        parts.append(silence)
        position += len(silence)
        first, last = _speech_bounds(samples, rate)
        spoken.append(Spoken(sentence, (position + first) / rate, (position + last) / rate))
        parts.append(samples)
        position += len(samples)
    parts.append(np.zeros(int(rate * TAIL_SECONDS), dtype=np.int16))
    audio = np.concatenate(parts)
    wav = path.with_suffix(".wav")
    with wave.open(str(wav), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(audio.tobytes())
    seconds = len(audio) / rate
    subprocess.run(
        [
            get_ffmpeg_exe(),
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=320x240:rate=25:duration={seconds:.3f}",
            "-i",
            str(wav),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-shortest",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    wav.unlink()
    return spoken
