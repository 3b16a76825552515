"""What a provider can do, one small protocol per AI modality: a provider implements only the
modalities it supports, and `quotas.modalities` names the protocol each modality needs.

`provider_for(modality)` is the provider configured for a modality, checked to have its
capability (a 503 that says so otherwise); the typed accessors below narrow it for callers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

from ai_services.providers.base import (
    ChatChunk,
    ChatResult,
    EmbedResult,
    PreparedImage,
    Provider,
    SpeechResult,
    TranscriptionResult,
    VisionResult,
    get_provider,
)
from quotas.modalities import CHAT, EMBED, SPEAK, TRANSCRIBE, VISION, Modality

# Token counts of several texts at once, one per text, special tokens included.
TokenCounter = Callable[[Sequence[str]], list[int]]


@dataclass(frozen=True)
class EmbedTokenizer:
    """How an embedding model counts its input: with its own tokenizer where it ships here."""

    count_tokens: TokenCounter
    max_input_tokens: int  # per input text, special tokens included


@runtime_checkable
class Capable(Protocol):
    """What every provider has: a name and the models it offers per modality."""

    name: str

    def models(self, modality: str) -> list[str]: ...

    def default_model(self, modality: str) -> str: ...

    def resolve_model(self, modality: str, requested: str | None) -> str: ...


@runtime_checkable
class ChatCapable(Capable, Protocol):
    def chat(
        self, *, messages: list[dict[str, Any]], model: str, temperature: float | None, max_tokens: int | None
    ) -> ChatResult: ...

    def chat_stream(
        self, *, messages: list[dict[str, Any]], model: str, temperature: float | None, max_tokens: int | None
    ) -> Iterator[ChatChunk]:
        """Start a streamed answer. The request is made before this returns, so refusals and
        connection errors raise here; errors while reading raise from the iterator."""
        ...


@runtime_checkable
class Transcriber(Capable, Protocol):
    def transcribe(
        self, *, path: Path, filename: str, model: str, language: str | None, prompt: str | None
    ) -> TranscriptionResult: ...


@runtime_checkable
class Speaker(Capable, Protocol):
    def voices(self) -> list[str]:
        """Voice names `speak` accepts."""
        ...

    def speak(self, *, text: str, model: str, voice: str, fmt: str, speed: float) -> SpeechResult: ...


@runtime_checkable
class VisionCapable(Capable, Protocol):
    def analyze_image(self, *, image: PreparedImage, prompt: str, detail: str, model: str) -> VisionResult: ...


@runtime_checkable
class Embedder(Capable, Protocol):
    def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResult:
        """Embed `texts` (a list, not one string); `model` None means the default."""
        ...

    def embed_tokenizer(self, *, model: str) -> EmbedTokenizer:
        """How `model` counts tokens, and how many it reads per text."""
        ...


PROTOCOLS: dict[str, type[Capable]] = {
    protocol.__name__: protocol for protocol in (ChatCapable, Transcriber, Speaker, VisionCapable, Embedder)
}


def capability_of(modality: Modality[Any]) -> type[Capable]:
    """The protocol the table names for `modality`."""
    try:
        return PROTOCOLS[modality.capability]
    except KeyError:
        raise LookupError(f"{modality.key}: no capability protocol named {modality.capability!r}") from None


# What a provider class can do, per capability. isinstance() against a runtime-checkable protocol
# with a data member (`name`) inspects every attribute of the protocol on each call, a tenth of a
# millisecond or more, and every AI request asks several times; the answer depends only on the
# provider's class (providers declare their capabilities by subclassing the protocols).
_class_supports: dict[tuple[type, type[Capable]], bool] = {}


def provider_supports(provider: object, modality: Modality[Any]) -> bool:
    capability = capability_of(modality)
    key = (type(provider), capability)
    supported = _class_supports.get(key)
    if supported is None:
        supported = _class_supports[key] = isinstance(provider, capability)
    return supported


def provider_for(modality: Modality[Any]) -> Provider:
    """The provider configured for `modality`; a 503 when it lacks the modality's capability."""
    provider = get_provider(modality.key)
    if not provider_supports(provider, modality):
        raise provider.unsupported(modality.key)
    return provider


# The casts are checked: provider_for() tested the capability the table names for each.
def chat_provider() -> ChatCapable:
    return cast(ChatCapable, provider_for(CHAT))


def transcriber() -> Transcriber:
    return cast(Transcriber, provider_for(TRANSCRIBE))


def speaker() -> Speaker:
    return cast(Speaker, provider_for(SPEAK))


def vision_provider() -> VisionCapable:
    return cast(VisionCapable, provider_for(VISION))


def embedder() -> Embedder:
    return cast(Embedder, provider_for(EMBED))
