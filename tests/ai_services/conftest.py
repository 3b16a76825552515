"""Fixtures for the AI services tests: provider settings pointed at the fake OpenAI-compatible
server (`fake_openai`, in tests/conftest.py), and the real Celery worker of `tests.celery_worker`
for queued transcriptions."""

from __future__ import annotations

import io
import math
import struct
import time
import wave

import pytest

from quotas.modalities import MODALITY_KEYS
from tests.celery_worker import celery_worker_process, worker  # noqa: F401 - fixtures

TEST_KEY = "sk-test-Zq8RkVt3mP2xL9wN4cB7yH"


# A provider timeout in the tests that expect one: far below the fake's `timeout_sleep`.
SHORT_TIMEOUT_SECONDS = 0.5


@pytest.fixture
def openai_settings(settings, fake_openai):
    """Every modality on the openai provider, pointed at the fake server. The timeouts are far
    above what the fake takes on a loaded machine: a request that timed out would be retried,
    and the tests count the requests; the tests of timeouts set a short one themselves."""
    settings.OPENAI_API_KEY = TEST_KEY
    settings.OPENAI_BASE_URL = fake_openai.url
    settings.OPENAI_TIMEOUT_SECONDS = 30.0
    settings.OPENAI_CONNECT_TIMEOUT_SECONDS = 10.0
    settings.OPENAI_MAX_RETRIES = 2
    settings.AI_PROVIDER = "openai"
    settings.AI_PROVIDERS = dict.fromkeys(MODALITY_KEYS, "openai")
    return settings


@pytest.fixture
def celery_eager(eager):
    """Eager tasks whose exceptions reach the caller."""
    from config.celery import app

    previous = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_eager_propagates = previous


def wav_bytes(seconds: float, *, rate: int = 16000, tone: bool = True) -> bytes:
    """A mono 16-bit WAV: a quiet 440 Hz tone, or silence."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = int(seconds * rate)
        if tone:
            out.writeframes(
                b"".join(struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(frames))
            )
        else:
            out.writeframes(b"\x00\x00" * frames)
    return buffer.getvalue()


def wait_for(predicate, *, timeout: float = 15.0, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy (a background thread is finishing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
