"""AI providers: `get_provider(modality)` returns the backend configured for a modality; the
accessors of `ai_services.providers.capabilities` return it typed by what the modality needs.

from ai_services.providers.capabilities import embedder

result = embedder().embed(["first text", "second text"])
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
