"""When the rate-limit counters' store (Redis) cannot be reached, limits fail open: the request is
served, a warning is logged and `mma_rate_limit_fail_open_total` counts it, instead of a 500.

The Redis is real and unreachable: a port on this machine with nothing listening.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def unreachable_redis_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The socket is closed: nothing listens there any more.
    return f"redis://127.0.0.1:{port}/0"


def dead_cache() -> dict:
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": unreachable_redis_url(),
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "SOCKET_CONNECT_TIMEOUT": 2},
        }
    }


def fail_open_count(category: str) -> float:
    return REGISTRY.get_sample_value("mma_rate_limit_fail_open_total", {"category": category}) or 0.0


def test_api_calls_are_served_when_redis_is_down(api, user, real_rate_limits):
    before = {category: fail_open_count(category) for category in ("general", "signin", "signup")}
    with override_settings(CACHES=dead_cache()):
        schema = api.get("/api/schema/", {"format": "json"})
        signed_in = api.post("/api/auth/login", {"email": user.email, "password": PASSWORD}, format="json")
        wrong = api.post("/api/auth/login", {"email": user.email, "password": "wrong-password-1"}, format="json")
        registered = api.post(
            "/api/auth/register",
            {"email": "new@example.com", "password": "Sturdy-Lantern-77", "name": "New"},
            format="json",
        )
    assert [r.status_code for r in (schema, signed_in, wrong, registered)] == [200, 200, 401, 201]
    assert "X-RateLimit-Limit" in signed_in  # the cap's size is known even when its count is not
    assert fail_open_count("general") > before["general"]
    assert fail_open_count("signin") > before["signin"]
    assert fail_open_count("signup") > before["signup"]


def test_a_fresh_process_with_redis_down_logs_a_warning_and_answers(tmp_path):
    script = textwrap.dedent(
        """
        import django
        django.setup()
        from django.test import Client
        from prometheus_client import REGISTRY
        response = Client().get("/api/schema/", {"format": "json"})
        print(response.status_code)
        print(REGISTRY.get_sample_value("mma_rate_limit_fail_open_total", {"category": "general"}))
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "REDIS_URL": unreachable_redis_url(),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "LOG_FORMAT": "plain",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    status, counted = out.stdout.split()
    assert status == "200"
    assert float(counted) >= 1
    assert "Rate-limit counters unavailable" in out.stderr
    assert "WARNING core.ratelimit" in out.stderr
