"""What the AI request path keeps between requests, and when it must not: the SDK client, what a
provider class can do, and the SQLite connection settings every new connection gets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, connections

from ai_services.providers.base import ChatChunk, ChatResult
from ai_services.providers.capabilities import provider_supports
from ai_services.providers.local.provider import LocalProvider
from ai_services.providers.openai import OpenAIProvider
from quotas.modalities import CHAT, SPEAK


def test_the_openai_client_is_reused_until_its_settings_change(settings) -> None:
    settings.OPENAI_API_KEY = "sk-test-0000000000000000"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    provider = OpenAIProvider()
    first = provider.client()
    assert provider.client() is first

    settings.OPENAI_BASE_URL = "http://127.0.0.1:10/v1"
    moved = provider.client()
    assert moved is not first
    assert str(moved.base_url).startswith("http://127.0.0.1:10/v1")

    settings.OPENAI_API_KEY = "sk-test-1111111111111111"
    assert provider.client() is not moved
    assert provider.client().api_key == "sk-test-1111111111111111"


class _ChattyLocal(LocalProvider):
    """The offline provider with a chat engine: a class of its own, so it supports chat."""

    def chat(
        self, *, messages: list[dict[str, Any]], model: str, temperature: float | None, max_tokens: int | None
    ) -> ChatResult:
        return ChatResult(content="hi", model=model)

    def chat_stream(
        self, *, messages: list[dict[str, Any]], model: str, temperature: float | None, max_tokens: int | None
    ) -> Iterator[ChatChunk]:
        yield ChatChunk(delta="hi")


def test_what_a_provider_supports_is_decided_per_class() -> None:
    # Asked in both orders, each class keeps its own answer.
    assert not provider_supports(LocalProvider(), CHAT)
    assert provider_supports(_ChattyLocal(), CHAT)
    assert not provider_supports(LocalProvider(), CHAT)
    assert provider_supports(LocalProvider(), SPEAK)
    assert provider_supports(_ChattyLocal(), SPEAK)


@pytest.mark.django_db
def test_every_new_sqlite_connection_is_in_wal_mode_with_normal_sync() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite connection settings")
    fresh = connections.create_connection("default")
    try:
        with fresh.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA synchronous")
            assert cursor.fetchone()[0] == 1  # NORMAL: WAL commits without an fsync each
    finally:
        fresh.close()
