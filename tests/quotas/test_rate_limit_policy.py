"""The seed's rate-limit table, category by category, through HTTP.

Probe views (one per category, test-only URLs) stand in for endpoints that other apps add; the
policy is what is under test. The real user endpoints are checked for their category too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

import config.urls
from core import ratelimit
from core.api.envelope import ok

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]

# The seed's table: category -> (requests, window seconds), burst (requests, seconds).
SEED_TABLE = {
    ratelimit.GENERAL: ((60, 60), (20, 10)),
    ratelimit.AUTH: ((5, 900), (2, 10)),
    ratelimit.AI: ((10, 60), (5, 10)),
    ratelimit.UPLOAD: ((3, 60), (1, 5)),
    ratelimit.DOWNLOAD: ((100, 60), (50, 10)),
}
# Request caps per address of sign-up, sign-in and refresh (no burst window).
ACCOUNT_TABLE = {
    ratelimit.SIGNUP: ((30, 300), None),
    ratelimit.SIGNIN: ((60, 60), None),
    ratelimit.REFRESH: ((120, 60), None),
}
# Chunks of resumable video uploads (creating one counts as an upload).
CHUNK_TABLE = {"upload_chunk": ((120, 60), (30, 10))}
TABLE = {**SEED_TABLE, **ACCOUNT_TABLE, **CHUNK_TABLE}
# Budgets of failed sign-ins (accounts.signin_protection): the seed's "5 attempts per 15 minutes".
FAILURE_BUDGETS = {
    ratelimit.AUTH_FAILURES: (5, 900),
    ratelimit.AUTH_ADDRESS_FAILURES: (20, 900),
    ratelimit.AUTH_EMAIL_FAILURES: (10, 900),
}


class Probe(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        return ok({"category": self.rate_category})


urlpatterns = [
    *(
        path(f"api/test-rate/{category}", type(f"{category}Probe", (Probe,), {"rate_category": category}).as_view())
        for category in TABLE
    ),
    *config.urls.urlpatterns,
]


def hit(client, category: str, ip: str = "10.1.0.1"):
    return client.get(f"/api/test-rate/{category}", REMOTE_ADDR=ip)


@pytest.fixture
def long_window_only(real_rate_limits, settings, rate_clock):
    """The long windows alone (bursts out of the way), so a test can spend a whole window."""
    settings.RATE_LIMITS = {name: {**policy, "burst": None} for name, policy in real_rate_limits.items()}
    return rate_clock


def test_settings_carry_the_seed_table_and_the_account_limits(real_rate_limits):
    requests = {name: (policy["rate"], policy["burst"]) for name, policy in real_rate_limits.items()}
    assert {name: requests.pop(name) for name in TABLE} == TABLE
    assert {name: rate for name, (rate, _burst) in requests.items()} == FAILURE_BUDGETS


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("category", list(TABLE))
def test_long_window_of_each_category(api, long_window_only, category):
    (limit, window), _burst = TABLE[category]
    for n in range(limit):
        response = hit(api, category)
        assert response.status_code == 200, (n, response.content)
        assert response["X-RateLimit-Limit"] == str(limit)
        assert response["X-RateLimit-Remaining"] == str(limit - n - 1)

    blocked = hit(api, category)
    assert blocked.status_code == 429
    body = blocked.json()
    assert (body["success"], body["code"]) == (False, "rate_limited")
    assert body["message"].startswith("Too many requests.")
    assert 1 <= int(blocked["Retry-After"]) <= window
    assert (blocked["X-RateLimit-Limit"], blocked["X-RateLimit-Remaining"]) == (str(limit), "0")

    assert hit(api, category, ip="10.1.0.2").status_code == 200  # keyed by IP when anonymous
    long_window_only.advance(window)
    assert hit(api, category).status_code == 200  # a new window


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("category", list(SEED_TABLE))
def test_burst_window_of_each_category(api, real_rate_limits, rate_clock, category):
    (limit, window), (burst, burst_seconds) = TABLE[category]
    # The long window must not roll over when the clock moves past the burst window.
    rate_clock.start_window("ip:10.1.0.1", window)
    for _ in range(burst):
        assert hit(api, category).status_code == 200
    blocked = hit(api, category)
    assert blocked.status_code == 429
    assert 1 <= int(blocked["Retry-After"]) <= burst_seconds
    # Remaining reports the long window, which the burst has not used up
    assert blocked["X-RateLimit-Remaining"] == str(limit - burst - 1)

    rate_clock.advance(burst_seconds)
    allowed = hit(api, category)
    assert allowed.status_code == 200
    # the long window kept counting: burst requests, the refused one and this one
    assert allowed["X-RateLimit-Remaining"] == str(max(limit - burst - 2, 0))


@pytest.mark.urls(__name__)
def test_authenticated_requests_are_keyed_by_user(make_user, auth_client, long_window_only):
    alice, bob = make_user(), make_user()
    as_alice, as_bob = auth_client(alice), auth_client(bob)
    for n in range(10):
        assert hit(as_alice, ratelimit.AI, ip=f"10.2.0.{n}").status_code == 200  # many IPs, one user
    assert hit(as_alice, ratelimit.AI, ip="10.2.9.9").status_code == 429
    assert hit(as_bob, ratelimit.AI, ip="10.2.0.1").status_code == 200  # same IP, another user
    assert hit(as_bob, ratelimit.AI, ip="10.2.0.1")["X-RateLimit-Remaining"] == "8"


@pytest.mark.urls(__name__)
def test_switch_turns_limits_off(api, real_rate_limits, settings):
    settings.RATE_LIMITS_ENABLED = False
    responses = [hit(api, ratelimit.UPLOAD) for _ in range(5)]
    assert {r.status_code for r in responses} == {200}
    assert "X-RateLimit-Limit" not in responses[-1]


def test_user_endpoints_belong_to_their_categories(client_a, long_window_only):
    assert client_a.get("/api/user/quota")["X-RateLimit-Limit"] == "60"
    assert client_a.get("/api/user/usage-stats")["X-RateLimit-Limit"] == "60"
    assert client_a.get("/api/user/profile")["X-RateLimit-Limit"] == "60"
    assert client_a.get("/api/user/avatar")["X-RateLimit-Limit"] == "100"  # a 404 still counts
    assert client_a.post("/api/user/avatar", {}, format="multipart")["X-RateLimit-Limit"] == "3"
    assert client_a.delete("/api/user/avatar")["X-RateLimit-Limit"] == "60"
    assert client_a.post("/api/user/deactivate", {}, format="json")["X-RateLimit-Limit"] == "5"
    assert client_a.delete("/api/user/account", {}, format="json")["X-RateLimit-Limit"] == "5"


def test_real_upload_endpoint_is_limited_per_user(client_a, long_window_only):
    statuses = [client_a.post("/api/user/avatar", {}, format="multipart").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]


@pytest.mark.urls(__name__)
@pytest.mark.skipif(
    not django_settings.REDIS_URL, reason="shared counters need Redis (the embedded cache is per process)"
)
def test_user_keyed_limit_holds_across_two_processes(make_user, auth_client, long_window_only):
    """A second web process spends 4 of a user's 10 AI requests; this one gets the other 6."""
    user = make_user()
    client = auth_client(user)
    script = textwrap.dedent(
        f"""
        import os, types
        import django
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        django.setup()
        import django_ratelimit.core
        from django.conf import settings
        from django.test import RequestFactory
        from rest_framework.request import Request
        from core.ratelimit import rate_check

        # The same clock and policy as the test process: the same windows, hence the same counters.
        django_ratelimit.core.time = types.SimpleNamespace(time=lambda: {long_window_only.now!r})
        settings.RATE_LIMITS = {{**settings.RATE_LIMITS, "ai": {{"rate": (10, 60), "burst": (100000, 10)}}}}
        for n in range(4):
            request = Request(RequestFactory().get("/api/ai/chat", REMOTE_ADDR=f"10.3.0.{{n}}"))
            request.user = types.SimpleNamespace(pk={user.pk}, is_authenticated=True)
            print(rate_check(request, "ai").remaining)
        """
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["9", "8", "7", "6"]
    statuses = [hit(client, ratelimit.AI, ip="10.3.1.1").status_code for _ in range(7)]
    assert statuses == [200] * 6 + [429]
