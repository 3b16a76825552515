"""Long AI calls don't stall light requests, through the deployed gunicorn configuration: while
one user's two text-to-speech calls are held open by the provider, another user's `/me` is
answered, and the same user's third AI call is refused at once (429 `ai_concurrency_limited`),
uncharged. The fake provider holds the calls on an event, so nothing depends on timing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from quotas.models import UsageEntry
from tests.ai_services.conftest import TEST_KEY
from tests.celery_worker import _database_url, wait_for
from tests.ops.live_stores import backend

pytestmark = pytest.mark.django_db(transaction=True)

TTS = "/api/ai/text-to-speech"


def test_two_long_ai_calls_leave_light_requests_served_and_a_third_is_refused(tmp_path, fake_openai):
    gate = threading.Event()
    fake_openai.state.speech_gate = gate
    env = {
        "DATABASE_URL": _database_url(),
        "RATE_LIMITS_ENABLED": "false",
        "OPENAI_API_KEY": TEST_KEY,
        "OPENAI_BASE_URL": fake_openai.url,
        "OPENAI_MAX_RETRIES": "0",
        "AI_PROVIDER": "openai",
        "AI_USER_CONCURRENCY": "2",
        "WEB_CONCURRENCY": "1",
    }
    env.pop("GUNICORN_THREADS", None)  # the deployment's default
    with backend(tmp_path, deployed=True, **env) as server, ThreadPoolExecutor(max_workers=2) as pool:
        heavy = server.register("heavy@example.com")["accessToken"]
        light = server.register("light@example.com")["accessToken"]
        try:
            calls = [pool.submit(server.call, "POST", TTS, token=heavy, json={"text": "word " * 800}) for _ in range(2)]
            wait_for(lambda: len(fake_openai.requests_to("/audio/speech")) == 2, timeout=60, what="two held calls")

            me = server.call("GET", "/api/auth/me", token=light)
            assert me.status_code == 200, me.text

            third = server.call("POST", TTS, token=heavy, json={"text": "one more"})
            assert third.status_code == 429, third.text
            body = third.json()
            assert (body["success"], body["code"]) == (False, "ai_concurrency_limited")
            assert int(third.headers["Retry-After"]) > 0
            assert len(fake_openai.requests_to("/audio/speech")) == 2, "the refused call never reached the provider"
        finally:
            gate.set()
        assert [call.result().status_code for call in calls] == [200, 200]

    # 4,000 characters cost 4 units each; the refused call cost nothing.
    charges = UsageEntry.objects.filter(user__email="heavy@example.com", kind="charge")
    assert sorted(entry.units for entry in charges) == [4, 4]
