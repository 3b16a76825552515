"""Text-to-speech: check the voice and format, bill by started 1,000 characters, synthesize."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import User
from ai_services.models import AIJob
from ai_services.providers.base import AUDIO_FORMATS
from ai_services.providers.capabilities import speaker
from ai_services.services.jobs import ai_job_begin, ai_job_failures_recorded, ai_job_succeed, text_summary
from core.exceptions import InvalidInput
from quotas.modalities import SPEAK


@dataclass
class SpeechOutcome:
    audio: bytes
    content_type: str
    format: str
    job: AIJob


def speech_synthesize(*, user: User, text: str, voice: str, fmt: str, speed: float) -> SpeechOutcome:
    provider = speaker()
    voices = provider.voices()
    if voice not in voices:
        raise InvalidInput(
            f"Unknown voice '{voice}'. Available: {', '.join(voices)}.",
            errors={"voice": [f"Must be one of: {', '.join(voices)}."]},
        )
    if fmt not in AUDIO_FORMATS:
        raise InvalidInput(
            f"Unknown format '{fmt}'.", errors={"format": [f"Must be one of: {', '.join(AUDIO_FORMATS)}."]}
        )
    model = provider.default_model(SPEAK.key)
    call = ai_job_begin(
        user=user,
        modality=SPEAK,
        units=SPEAK.price(characters=len(text)),
        provider=provider.name,
        model=model,
        summary={"text": text_summary(text), "characters": len(text), "voice": voice, "format": fmt, "speed": speed},
    )
    with ai_job_failures_recorded(call):
        result = provider.speak(text=text, model=model, voice=voice, fmt=fmt, speed=speed)
        job = ai_job_succeed(
            call,
            output={
                "bytes": len(result.audio),
                "format": fmt,
                "content_type": result.content_type,
                "duration": result.duration,
            },
            usage={"characters": len(text)},
        )
    return SpeechOutcome(audio=result.audio, content_type=result.content_type, format=fmt, job=job)
