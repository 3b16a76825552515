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
# Quiet shorter than this is a pause inside speech, not a boundary between two stretches of it.
MIN_PAUSE_SECONDS = 0.35


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


def _runs(loud: np.ndarray) -> list[tuple[int, int]]:
    """Stretches of loud frames, [first, last+1), joined across pauses shorter than MIN_PAUSE."""
    frames = np.flatnonzero(loud)
    if frames.size == 0:
        return []
    pause = max(int(MIN_PAUSE_SECONDS / FRAME_SECONDS), 1)
    breaks = np.flatnonzero(np.diff(frames) > pause)
    starts = [int(frames[0]), *(int(frames[b + 1]) for b in breaks)]
    ends = [*(int(frames[b]) + 1 for b in breaks), int(frames[-1]) + 1]
    return list(zip(starts, ends, strict=True))


def cues_trim(cues: list[Cue], *, energy: np.ndarray) -> list[Cue]:
    """Each cue trimmed to the stretches of speech it holds: every stretch goes to the cue whose
    window (widened by SLACK_SECONDS) overlaps it most, and a cue spans its stretches. A cue with
    none keeps the provider's times."""
    if energy.size == 0 or not cues:
        return cues
    level = float(np.percentile(energy, 99))
    if level <= 0:
        return cues
    spans: dict[int, tuple[float, float]] = {}
    for first, last in _runs(energy > level * LOUD_FRACTION):
        start, end = first * FRAME_SECONDS, last * FRAME_SECONDS
        overlaps = [min(end, cue.end + SLACK_SECONDS) - max(start, cue.start - SLACK_SECONDS) for cue in cues]
        best = int(np.argmax(overlaps))
        if overlaps[best] <= 0:
            continue
        low, high = spans.get(best, (start, end))
        spans[best] = (min(low, start), max(high, end))
    trimmed: list[Cue] = []
    for position, cue in enumerate(cues):
        if position in spans:
            start, end = spans[position]
            trimmed.append(Cue(start=round(start, 3), end=round(end, 3), text=cue.text))
        else:
            trimmed.append(cue)
    return trimmed
