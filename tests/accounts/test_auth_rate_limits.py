"""Authentication endpoints: 5 attempts per 15 minutes per IP and per email (the seed's table)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def attempt(client: APIClient, email: str = "victim@example.com", ip: str = "10.0.0.1"):
    return client.post(
        "/api/auth/login", {"email": email, "password": "wrong-password-1"}, format="json", REMOTE_ADDR=ip
    )


@pytest.fixture
def no_burst(real_rate_limits, settings, rate_clock):
    """The long window alone, so a test can make its five attempts back to back."""
    settings.RATE_LIMITS = {**real_rate_limits, "auth": {"rate": (5, 900), "burst": (100, 10)}}
    return rate_clock


def test_sixth_login_attempt_from_one_ip_is_429_with_retry_after(api, no_burst):
    statuses = [attempt(api, email=f"u{i}@example.com").status_code for i in range(5)]
    assert statuses == [401] * 5
    blocked = attempt(api, email="u9@example.com")
    assert blocked.status_code == 429
    body = blocked.json()
    assert body["success"] is False
    assert body["code"] == "rate_limited"
    assert 0 < int(blocked["Retry-After"]) <= 900
    assert blocked["X-RateLimit-Limit"] == "5"
    assert blocked["X-RateLimit-Remaining"] == "0"
    # another IP is not affected
    assert attempt(api, email="u10@example.com", ip="10.0.0.2").status_code == 401


def test_one_email_is_limited_across_ips(api, no_burst):
    for i in range(5):
        assert attempt(api, ip=f"10.0.1.{i}").status_code == 401
    assert attempt(api, ip="10.0.1.99").status_code == 429


def test_register_counts_as_authentication(api, no_burst):
    for i in range(5):
        api.post("/api/auth/register", {"email": f"r{i}@example.com", "password": "x", "name": "R"}, format="json")
    response = api.post("/api/auth/register", {"email": "r9@example.com", "password": "x", "name": "R"}, format="json")
    assert response.status_code == 429


def test_burst_window_limits_rapid_attempts(api, real_rate_limits):
    burst = real_rate_limits["auth"]["burst"][0]
    for i in range(burst):
        assert attempt(api, email=f"b{i}@example.com").status_code == 401
    assert attempt(api, email="b-last@example.com").status_code == 429


@pytest.mark.skipif(
    not django_settings.REDIS_URL, reason="shared counters need Redis (the embedded cache is per process)"
)
def test_counters_are_shared_between_processes_through_redis(api, no_burst):
    """Another process (a second web worker) spends three attempts of this IP; this one then
    has two left."""
    script = textwrap.dedent(
        f"""
        import django, os, types
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        django.setup()
        import django_ratelimit.core
        # The test process's pinned clock: the same windows, hence the same counters.
        django_ratelimit.core.time = types.SimpleNamespace(time=lambda: {no_burst.now!r})
        from django.test import RequestFactory
        from rest_framework.request import Request
        from rest_framework.parsers import JSONParser
        from quotas.ratelimit import rate_check
        for n in range(3):
            raw = RequestFactory().post("/api/auth/login", {{"email": f"p{{n}}@example.com"}},
                                        content_type="application/json", REMOTE_ADDR="10.9.9.9")
            request = Request(raw, parsers=[JSONParser()])
            print(rate_check(request, "auth").remaining)
        """
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "2"
    assert attempt(api, email="p-main1@example.com", ip="10.9.9.9").status_code == 401
    assert attempt(api, email="p-main2@example.com", ip="10.9.9.9").status_code == 401
    assert attempt(api, email="p-main3@example.com", ip="10.9.9.9").status_code == 429
