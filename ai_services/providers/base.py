"""What providers exchange (results, prepared inputs), the provider base class (model choice),
and the selection of a provider by settings.

Modalities are the keys of `quotas.modalities` (``chat``, ``transcribe``, ``speak``, ``vision``,
``embed``); what a provider can do is the capability protocols of
`ai_services.providers.capabilities` it implements. ``settings.AI_PROVIDERS[modality]`` names the
provider of each ("openai" or "local"); see the "AI services" section of the settings.

Every method raises the domain errors of `core.exceptions` and nothing else on purpose:
`InvalidInput`/`InvalidUpload` for input the provider refuses, `ProviderError` (502),
`ProviderUnavailable`/`ProviderNotConfigured` (503) and `ProviderTimeout` (504).
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings

from core.exceptions import ApplicationError, InvalidInput, ProviderNotConfigured
from quotas.modalities import MODALITY_KEYS

MODALITIES = MODALITY_KEYS
AUDIO_FORMATS = ("mp3", "wav", "opus", "aac", "flac")
AUDIO_MIME = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
}
IMAGE_DETAILS = ("low", "high", "auto")

_PROVIDER_CLASSES = {
    "openai": "ai_services.providers.openai.OpenAIProvider",
    "local": "ai_services.providers.local.provider.LocalProvider",
}


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatResult:
    content: str
    model: str
    usage: Usage | None = None  # None when the server did not report it
    finish_reason: str | None = None


@dataclass(frozen=True)
class ChatChunk:
    """A piece of a streamed answer: a text delta, and/or (last) the usage and finish reason."""

    delta: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class TranscriptionResult:
    text: str
    language: str
    duration: float
    model: str
    segments: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SpeechResult:
    audio: bytes
    format: str
    model: str
    duration: float | None = None

    @property
    def content_type(self) -> str:
        return AUDIO_MIME[self.format]


@dataclass(frozen=True)
class PreparedImage:
    """An uploaded image after validation: downscaled, re-encoded, with what the original said.

    `data` (JPEG, or PNG when the image has transparency) is what goes to a provider; the
    original bytes never leave the process. `exif` holds a few descriptive tags of the original
    (camera, date), never its location.
    """

    data: bytes
    mime: str
    width: int
    height: int
    source_format: str
    source_width: int
    source_height: int
    source_bytes: int
    exif: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VisionResult:
    analysis: str
    model: str
    usage: Usage | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EmbedResult:
    """`vectors` is float32 of shape (len(texts), dimensions), one row per input text."""

    vectors: np.ndarray
    model: str
    dimensions: int
    tokens: int


class Provider(ABC):
    """One backend. It serves the modalities whose capability protocols it implements
    (`ai_services.providers.capabilities`). Instances are shared by threads: keep them stateless."""

    name: str = ""

    @abstractmethod
    def models(self, modality: str) -> list[str]:
        """Models a client may ask for (first is the default); empty if the modality is unsupported."""

    def default_model(self, modality: str) -> str:
        models = self.models(modality)
        if not models:
            raise ProviderNotConfigured(f"No model is configured for {modality} on the {self.name} provider.")
        return models[0]

    def resolve_model(self, modality: str, requested: str | None) -> str:
        """The model to use: the requested one if allowed (else a 400), or the default."""
        if not requested:
            return self.default_model(modality)
        allowed = self.models(modality)
        if requested not in allowed:
            choices = ", ".join(allowed) or "none"
            raise InvalidInput(
                f"Unknown model '{requested}'. Allowed: {choices}.",
                errors={"model": [f"Must be one of: {choices}."]},
            )
        return requested

    def unsupported(self, modality: str) -> ApplicationError:
        """The error for a modality this provider does not serve (a 503 naming the fix)."""
        return ProviderNotConfigured(f"The {self.name} provider does not support {modality}.")


_instances: dict[str, Provider] = {}
_lock = threading.Lock()


def provider_name(modality: str) -> str:
    if modality not in MODALITIES:
        raise ValueError(f"Unknown AI modality {modality!r}; expected one of {MODALITIES}")
    name = settings.AI_PROVIDERS.get(modality) or settings.AI_PROVIDER
    if name not in _PROVIDER_CLASSES:
        raise ProviderNotConfigured(
            f"AI provider '{name}' for {modality} is not one of: {', '.join(_PROVIDER_CLASSES)}."
        )
    return name


def get_provider(modality: str) -> Provider:
    """The provider configured for `modality` (one shared instance per provider and process)."""
    name = provider_name(modality)
    provider = _instances.get(name)
    if provider is None:
        with _lock:
            provider = _instances.get(name)
            if provider is None:
                module_path, class_name = _PROVIDER_CLASSES[name].rsplit(".", 1)
                provider = getattr(importlib.import_module(module_path), class_name)()
                _instances[name] = provider
    return provider
