"""The AI modalities, one row each: what varies by modality (job type, quota service, price,
provider capability, settings key) is said here once; the enums and choices derive from it.

`ai_services` builds `AIJob.Type` from `job_type_members()`; `Service` (also importable from
`quotas.pricing`) is the modalities' quota services plus video, billed but no AI modality; the
settings name their per-modality keys after `Modality.key`; a provider serves a modality when it
implements the protocol of `ai_services.providers.capabilities` named by `Modality.capability`.

Adding a modality (say image generation): a row here (naming the openai models it defaults
to: the settings and the quota `service` choices follow the table by themselves) and its price
function in `quotas/pricing.py`; its protocol and typed accessor in
`ai_services/providers/capabilities.py` and the method on the providers that support it; a
service module in `ai_services/services/` (through `services.jobs`, which bills it); input and
output serializers, a view and its URL; its tests. No migration: `AIJob.type` and the quota
`service` fields take their choices from `job_type_choices` and `quota_service_choices`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec

from django.db import models

from quotas import pricing

P = ParamSpec("P")


@dataclass(frozen=True)
class Modality(Generic[P]):
    """One AI modality.

    `key` is the provider's name for it: `get_provider(key)`, `settings.AI_PROVIDERS[key]`,
    `settings.AI_MODELS[key]` and the `AI_<KEY>_PROVIDER` / `AI_<KEY>_MODELS` variables.
    `value` is both the stored job type and the quota service it is billed to; `member` is the
    name of both enum members. The labels are the job type's and the quota service's.
    """

    key: str
    member: str
    value: str
    label: str
    service_label: str
    capability: str  # a protocol in ai_services.providers.capabilities
    price: Callable[P, int]
    # The openai provider's models for it, first = default (`settings.AI_MODELS[key]` unless
    # `AI_<KEY>_MODELS` says otherwise).
    default_models: tuple[str, ...] = ()

    @property
    def service(self) -> Service:
        """The quota service this modality is billed to."""
        return Service(self.value)


CHAT = Modality(
    key="chat",
    member="CHAT",
    value="chat",
    label="Chat",
    service_label="Chat",
    capability="ChatCapable",
    price=pricing.units_for_chat,
    default_models=("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "gpt-4"),
)
TRANSCRIBE = Modality(
    key="transcribe",
    member="SPEECH_TO_TEXT",
    value="whisper",
    label="Speech-to-text",
    service_label="Speech-to-text",
    capability="Transcriber",
    price=pricing.units_for_speech,
    default_models=("whisper-1", "gpt-4o-mini-transcribe"),
)
SPEAK = Modality(
    key="speak",
    member="TEXT_TO_SPEECH",
    value="tts",
    label="Text-to-speech",
    service_label="Text-to-speech",
    capability="Speaker",
    price=pricing.units_for_tts,
    default_models=("tts-1", "tts-1-hd", "gpt-4o-mini-tts"),
)
VISION = Modality(
    key="vision",
    member="VISION",
    value="vision",
    label="Vision",
    service_label="Vision",
    capability="VisionCapable",
    price=pricing.units_for_vision,
    default_models=("gpt-4o-mini", "gpt-4o"),
)
EMBED = Modality(
    key="embed",
    member="EMBEDDING",
    value="embedding",
    label="Embedding",
    service_label="Embeddings",
    capability="Embedder",
    price=pricing.units_for_embedding,
    default_models=("text-embedding-3-small", "text-embedding-3-large"),
)

# In the order of the stored choices; a new modality goes last.
MODALITIES: tuple[Modality[Any], ...] = (CHAT, TRANSCRIBE, SPEAK, VISION, EMBED)
MODALITY_KEYS: tuple[str, ...] = tuple(modality.key for modality in MODALITIES)


def modality_get(*, key: str) -> Modality[Any]:
    """The modality a provider key names (`chat`, `transcribe`, ...)."""
    for modality in MODALITIES:
        if modality.key == key:
            return modality
    raise ValueError(f"Unknown AI modality {key!r}; expected one of {MODALITY_KEYS}")


def job_type_choices() -> list[tuple[str, str]]:
    """`(value, label)` of every AI job type. A model field given this callable as its choices
    needs no migration when a modality is added (its migrations name the callable)."""
    return [(modality.value, modality.label) for modality in MODALITIES]


def job_type_members() -> list[tuple[str, tuple[str, str]]]:
    """`(member, (value, label))` of every AI job type, for a TextChoices body."""
    return [(modality.member, (modality.value, modality.label)) for modality in MODALITIES]


def quota_service_choices() -> list[tuple[str, str]]:
    """`(value, label)` of every quota service, for the quota models' `service` fields: given
    this callable as their choices, they need no migration when a modality is added."""
    return [choice for _, choice in quota_service_members()]


def quota_service_members() -> list[tuple[str, tuple[str, str]]]:
    """`(member, (value, label))` of every quota service, for a TextChoices body."""
    members = [(modality.member, (modality.value, modality.service_label)) for modality in MODALITIES]
    # Video sits after vision, where it has always been: the stored choices and the keys of the
    # usage statistics keep their order (new modalities come after embeddings).
    members.insert(_VIDEO_POSITION, ("VIDEO", ("video", "Video processing")))
    return members


_VIDEO_POSITION = 4


class Service(models.TextChoices):
    """What a quota reservation pays for: one per AI modality, and video."""

    # The members are made by the loop (Enum's documented `_ignore_` idiom for computed members).
    _ignore_ = ["member", "choice", "members"]
    VIDEO: Service  # declared for the type checker, which cannot see the loop's members
    members = vars()
    for member, choice in quota_service_members():
        members[member] = choice
