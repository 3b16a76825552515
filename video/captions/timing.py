"""Tightening cue times to the speech they hold.

Speech-to-text providers time their segments coarsely: Whisper often reports a segment as the
whole stretch between the previous segment's end and the next one's start, silences included
(0-4 s for a sentence spoken from 0.9 to 3.7 s). A caption should appear when its words are heard,
so each cue is trimmed to the first and last loud moment of the audio inside its own window. The
window bounds the change: where the audio is never quiet (music, noise) the provider's times stay."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Cue:
    start: float  # seconds of the video
    end: float
    text: str


FRAME_SECONDS = 0.01
# A 10 ms frame is "loud" above this fraction of the track's loud level (its 99th percentile
# frame): quiet enough to keep soft consonants at word edges, well above encoder noise.
LOUD_FRACTION = 0.05
# How far past its window a cue may reach for the edge of its first or last word.
SLACK_SECONDS = 0.2


def frame_energy(wav_path: Path) -> np.ndarray:
    """RMS energy of each 10 ms frame of a mono 16-bit WAV."""
    with wave.open(str(wav_path), "rb") as handle:
        rate = handle.getframerate()
        samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16)
    window = max(int(rate * FRAME_SECONDS), 1)
    usable = len(samples) // window * window
    if usable == 0:
        return np.zeros(0, dtype=np.float32)
    frames = samples[:usable].astype(np.float32).reshape(-1, window)
    return np.asarray(np.sqrt((frames**2).mean(axis=1)), dtype=np.float32)


def cues_trim(cues: list[Cue], *, energy: np.ndarray) -> list[Cue]:
    """Each cue trimmed to the loud frames inside its window (widened by SLACK_SECONDS)."""
    if energy.size == 0 or not cues:
        return cues
    level = float(np.percentile(energy, 99))
    if level <= 0:
        return cues
    loud = energy > level * LOUD_FRACTION
    trimmed: list[Cue] = []
    for position, cue in enumerate(cues):
        # The slack never reaches into a neighbour's window: that speech is the neighbour's.
        low = cue.start - SLACK_SECONDS
        high = cue.end + SLACK_SECONDS
        if position > 0:
            low = max(low, min(cue.start, cues[position - 1].end))
        if position + 1 < len(cues):
            high = min(high, max(cue.end, cues[position + 1].start))
        first = max(int(low / FRAME_SECONDS), 0)
        last = min(int(high / FRAME_SECONDS) + 1, loud.size)
        hits = np.flatnonzero(loud[first:last])
        if hits.size == 0:
            trimmed.append(cue)
            continue
        start = (first + int(hits[0])) * FRAME_SECONDS
        end = (first + int(hits[-1]) + 1) * FRAME_SECONDS
        trimmed.append(Cue(start=round(start, 3), end=round(max(end, start), 3), text=cue.text))
    return trimmed
