"""The provider interface (one method per modality) and the selection of a provider by settings.

Modalities: ``chat`` (with ``chat_stream``), ``transcribe``, ``speak``, ``vision``, ``embed``.
``settings.AI_PROVIDERS[modality]`` names the provider of each ("openai" or "local"); see the
"AI services" section of the settings.

Every method raises the domain errors of `core.exceptions` and nothing else on purpose:
`InvalidInput`/`InvalidUpload` for input the provider refuses, `ProviderError` (502),
`ProviderUnavailable`/`ProviderNotConfigured` (503) and `ProviderTimeout` (504).
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from core.exceptions import InvalidInput, ProviderNotConfigured

MODALITIES = ("chat", "transcribe", "speak", "vision", "embed")
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
    "local": "ai_services.providers.local_provider.LocalProvider",
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
    """One backend for every modality. Instances are shared by threads: keep them stateless."""

    name: str = ""

    # -- models and options -----------------------------------------------------------------

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

    @abstractmethod
    def voices(self) -> list[str]:
        """Voice names `speak` accepts."""

    # -- modalities ----------------------------------------------------------------------------

    @abstractmethod
    def chat(
        self, *, messages: list[dict[str, str]], model: str, temperature: float | None, max_tokens: int | None
    ) -> ChatResult: ...

    @abstractmethod
    def chat_stream(
        self, *, messages: list[dict[str, str]], model: str, temperature: float | None, max_tokens: int | None
    ) -> Iterator[ChatChunk]:
        """Start a streamed answer. The request is made before this returns, so refusals and
        connection errors raise here; errors while reading raise from the iterator."""

    @abstractmethod
    def transcribe(
        self, *, path: Path, filename: str, model: str, language: str | None, prompt: str | None
    ) -> TranscriptionResult: ...

    @abstractmethod
    def speak(self, *, text: str, model: str, voice: str, fmt: str, speed: float) -> SpeechResult: ...

    @abstractmethod
    def analyze_image(self, *, image: PreparedImage, prompt: str, detail: str, model: str) -> VisionResult: ...

    @abstractmethod
    def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResult:
        """Embed `texts` (a list, not one string); `model` None means the default."""


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
