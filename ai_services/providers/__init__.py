"""AI providers: `get_provider(modality)` returns the backend configured for a modality.

from ai_services.providers import get_provider

result = get_provider("embed").embed(["first text", "second text"])
result.vectors  # float32 (2, result.dimensions), unit-length rows for the local model
"""

from ai_services.providers.base import (
    MODALITIES,
    ChatChunk,
    ChatResult,
    EmbedResult,
    PreparedImage,
    Provider,
    SpeechResult,
    TranscriptionResult,
    Usage,
    VisionResult,
    get_provider,
    provider_name,
)

__all__ = [
    "MODALITIES",
    "ChatChunk",
    "ChatResult",
    "EmbedResult",
    "PreparedImage",
    "Provider",
    "SpeechResult",
    "TranscriptionResult",
    "Usage",
    "VisionResult",
    "get_provider",
    "provider_name",
]
