"""Fixtures of the embeddings API tests (opt-in: the vector-index tests in this folder need none)."""

from __future__ import annotations

import pytest

from tests import net
from tests.ai_services.fake_openai import FakeOpenAI


@pytest.fixture
def embeddings_env(settings, tmp_path):
    """The local MiniLM engine and a vector cache of this test's own."""
    from embeddings import services

    settings.EMBEDDINGS_CACHE_DIR = str(tmp_path / "vector-cache")
    settings.AI_PROVIDERS = {**settings.AI_PROVIDERS, "embed": "local"}
    yield settings
    services._caches.clear()


@pytest.fixture
def fake_openai(fake_openai: FakeOpenAI, settings) -> FakeOpenAI:
    """The shared fake server (tests/conftest.py) as the `openai` provider of embeddings
    (deterministic 32-dimension vectors from a hash of each text; usage = words)."""
    fake_openai.state.embedding_dimensions = 32
    settings.AI_PROVIDERS = {**settings.AI_PROVIDERS, "embed": "openai"}
    settings.AI_MODELS = {**settings.AI_MODELS, "embed": ["text-embedding-3-small", "text-embedding-3-large"]}
    settings.OPENAI_BASE_URL = fake_openai.url
    settings.OPENAI_API_KEY = "sk-test-embeddings-0000"
    settings.OPENAI_MAX_RETRIES = 1
    # Far above what the fake takes on a loaded machine: a timed-out request would be retried.
    settings.OPENAI_TIMEOUT_SECONDS = 30.0
    settings.OPENAI_CONNECT_TIMEOUT_SECONDS = 10.0
    return fake_openai


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    return net.closed_port()
