"""The price list: units charged per service (the seed's "Intelligent Quota System" table).

Every charge in the product is computed here and nowhere else. The quota services (`Service`)
are the AI modalities of `quotas.modalities`, which names each one's price function, and video;
import `Service` from there.
"""

from __future__ import annotations

import math

CHAT_UNITS_PER_REQUEST = 2
VISION_UNITS_PER_IMAGE = 3
VIDEO_UNITS_PER_VIDEO = 5
SPEECH_SECONDS_PER_UNIT = 60
TTS_CHARACTERS_PER_UNIT = 1000
EMBEDDING_TOKENS_PER_UNIT = 1000

DEFAULT_MONTHLY_LIMIT = 100
WARNING_RATIO = 0.8


def _started(amount: float, per: int) -> int:
    """Units for every started block of `per` (3 min 1 s of audio is 4 started minutes)."""
    return max(1, math.ceil(amount / per)) if amount > 0 else 1


def units_for_chat() -> int:
    return CHAT_UNITS_PER_REQUEST


def units_for_speech(*, audio_seconds: float) -> int:
    return _started(audio_seconds, SPEECH_SECONDS_PER_UNIT)


def units_for_tts(*, characters: int) -> int:
    return _started(characters, TTS_CHARACTERS_PER_UNIT)


def units_for_vision() -> int:
    return VISION_UNITS_PER_IMAGE


def units_for_video() -> int:
    return VIDEO_UNITS_PER_VIDEO


def units_for_embedding(*, tokens: int) -> int:
    return _started(tokens, EMBEDDING_TOKENS_PER_UNIT)
