"""The modality table (quotas/modalities.py) is the one list of AI modalities: every enum,
choice list, settings key and provider capability agrees with it."""

from __future__ import annotations

import pytest
from django.conf import settings

from ai_services.models import AIJob
from ai_services.providers import MODALITIES as PROVIDER_MODALITIES
from ai_services.providers.capabilities import PROTOCOLS, capability_of, provider_supports
from ai_services.providers.local.provider import LocalProvider
from ai_services.providers.openai import OpenAIProvider
from quotas import pricing
from quotas.modalities import (
    CHAT,
    MODALITIES,
    MODALITY_KEYS,
    Service,
    job_type_choices,
    modality_get,
    quota_service_choices,
)
from quotas.models import Reservation, UsageEntry
from quotas.serializers import ServicesSerializer


def test_job_types_are_the_modalities_with_their_stored_values_and_labels() -> None:
    assert AIJob.Type.choices == [(m.value, m.label) for m in MODALITIES]
    assert AIJob.Type.names == [m.member for m in MODALITIES]
    # The values and labels stored (and published) before the table existed.
    assert AIJob.Type.choices == [
        ("chat", "Chat"),
        ("whisper", "Speech-to-text"),
        ("tts", "Text-to-speech"),
        ("vision", "Vision"),
        ("embedding", "Embedding"),
    ]
    field = AIJob._meta.get_field("type")
    assert list(field.choices or []) == AIJob.Type.choices
    # The migrations name the table's callable, so a new modality needs no migration of the job.
    assert field.deconstruct()[3]["choices"] is job_type_choices


def test_quota_services_are_the_modalities_and_video() -> None:
    assert Service.choices == [
        ("chat", "Chat"),
        ("whisper", "Speech-to-text"),
        ("tts", "Text-to-speech"),
        ("vision", "Vision"),
        ("video", "Video processing"),
        ("embedding", "Embeddings"),
    ]
    assert [value for value in Service.values if value != Service.VIDEO] == [m.value for m in MODALITIES]
    for modality in MODALITIES:
        # A job's type is the quota service that pays for it.
        assert modality.service == AIJob.Type(modality.value) == modality.value
        assert modality.service.label == modality.service_label
        assert Service[modality.member] is modality.service


def test_quota_service_fields_take_their_choices_from_the_table() -> None:
    for model in (Reservation, UsageEntry):
        field = model._meta.get_field("service")
        assert list(field.choices or []) == Service.choices
        # The migrations name the table's callable, so a new modality needs no quota migration.
        assert field.deconstruct()[3]["choices"] is quota_service_choices


def test_the_model_settings_default_to_the_models_the_table_names(settings) -> None:
    for modality in MODALITIES:
        assert modality.default_models, modality.key
    assert settings.AI_MODELS["chat"][0] == CHAT.default_models[0] == "gpt-4o-mini"


def test_usage_statistics_have_one_entry_per_service() -> None:
    assert list(ServicesSerializer().fields) == Service.values


def test_settings_name_every_modality_and_nothing_else() -> None:
    assert tuple(settings.AI_PROVIDERS) == MODALITY_KEYS
    assert tuple(settings.AI_MODELS) == MODALITY_KEYS
    assert PROVIDER_MODALITIES == MODALITY_KEYS
    assert [modality_get(key=key) for key in MODALITY_KEYS] == list(MODALITIES)
    with pytest.raises(ValueError):
        modality_get(key="teleport")


def test_every_modality_names_its_price_and_capability() -> None:
    for modality in MODALITIES:
        assert getattr(pricing, modality.price.__name__) is modality.price
        assert capability_of(modality) is PROTOCOLS[modality.capability]
    assert sorted(m.capability for m in MODALITIES) == sorted(PROTOCOLS)


def test_providers_serve_exactly_the_modalities_they_have_models_for(settings) -> None:
    openai, local = OpenAIProvider(), LocalProvider()
    for modality in MODALITIES:
        assert provider_supports(openai, modality)
        assert openai.models(modality.key) == list(settings.AI_MODELS[modality.key])
        assert provider_supports(local, modality) == bool(local.models(modality.key))
    # No chat model ships with the offline engines.
    assert not provider_supports(local, CHAT)


def test_the_published_job_type_enums_are_the_table(schema) -> None:
    [parameter] = [p for p in schema["paths"]["/api/ai/jobs"]["get"]["parameters"] if p["name"] == "type"]
    assert parameter["schema"]["enum"] == sorted(m.value for m in MODALITIES)
    assert schema["components"]["schemas"]["TypeEnum"]["enum"] == [m.value for m in MODALITIES]
