"""Sign-in, sign-up and refresh limits: attackers are stopped, honest users never see a 429.

Budgets of failed sign-ins (defaults): 5 per email from one address, 20 per address across
emails, 10 per email from addresses the account never signed in from, each per 15 minutes.
Request caps per address: 30 sign-ups per 5 minutes, 60 sign-ins and 120 refreshes per minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
NEW_PASSWORD = "Sturdy-Lantern-77"
WRONG = "wrong-password-1"


def sign_in(client: APIClient, email: str, password: str = WRONG, ip: str = "10.0.0.1"):
    return client.post("/api/auth/login", {"email": email, "password": password}, format="json", REMOTE_ADDR=ip)


def sign_up(client: APIClient, email: str, password: str = NEW_PASSWORD, ip: str = "10.0.0.1"):
    body = {"email": email, "password": password, "name": "New Person"}
    return client.post("/api/auth/register", body, format="json", REMOTE_ADDR=ip)


def assert_refused(response, *, limit: int, window: int) -> None:
    assert response.status_code == 429, response.content
    body = response.json()
    assert (body["success"], body["code"]) == (False, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= window
    assert (response["X-RateLimit-Limit"], response["X-RateLimit-Remaining"]) == (str(limit), "0")


# --- Honest users ----------------------------------------------------------------------------


def test_a_new_users_first_minute_is_never_refused(api, real_rate_limits):
    """Sign-up, a sign-up refused for a weak password and one for a taken email, the corrected
    sign-up, a sign-in and a refresh: from one address, within a second."""
    first = sign_up(api, "first@example.com")
    weak = sign_up(api, "second@example.com", password="123")
    taken = sign_up(api, "first@example.com")
    second = sign_up(api, "second@example.com")
    signed_in = sign_in(api, "second@example.com", NEW_PASSWORD)
    refreshed = api.post(
        "/api/auth/refresh",
        {"refreshToken": signed_in.json()["data"]["refreshToken"]},
        format="json",
        REMOTE_ADDR="10.0.0.1",
    )
    statuses = [r.status_code for r in (first, weak, taken, second, signed_in, refreshed)]
    assert statuses == [201, 400, 409, 201, 200, 200]
    assert refreshed["X-RateLimit-Limit"] == "120"  # refreshes have their own category


def test_thirty_people_behind_one_address_each_sign_in(api, make_user, real_rate_limits):
    users = [make_user() for _ in range(30)]
    statuses = [sign_in(api, user.email, PASSWORD, ip="198.51.100.9").status_code for user in users]
    assert statuses == [200] * 30


def test_successes_and_invalid_input_spend_no_failure_budget(api, user, real_rate_limits):
    for _ in range(8):
        assert sign_in(api, user.email, PASSWORD).status_code == 200
    for body in ({"email": user.email}, {"email": "not-an-email", "password": "x"}, {}):
        assert api.post("/api/auth/login", body, format="json", REMOTE_ADDR="10.0.0.1").status_code == 400
    remaining = [sign_in(api, user.email)["X-RateLimit-Remaining"] for _ in range(5)]
    assert remaining == ["4", "3", "2", "1", "0"]  # all five wrong passwords were still checked


def test_a_deactivated_account_is_not_a_failed_guess(api, make_user, real_rate_limits):
    dormant = make_user(is_active=False)
    responses = [sign_in(api, dormant.email, PASSWORD) for _ in range(7)]
    assert {(r.status_code, r.json()["code"]) for r in responses} == {(401, "account_inactive")}


# --- Attackers -------------------------------------------------------------------------------


def test_guessing_one_password_from_one_address_locks_that_pair_only(api, user, real_rate_limits, rate_clock):
    statuses = [sign_in(api, user.email).status_code for _ in range(5)]
    assert statuses == [401] * 5
    assert_refused(sign_in(api, user.email), limit=5, window=900)
    # Refused before the check: even the right password from this address waits.
    assert_refused(sign_in(api, user.email, PASSWORD), limit=5, window=900)
    # The owner, from an address that has not been failing, signs in.
    assert sign_in(api, user.email, PASSWORD, ip="192.0.2.44").status_code == 200
    # Other accounts from the attacker's address are not locked by this pair.
    assert sign_in(api, "someone-else@example.com").status_code == 401
    rate_clock.advance(900)
    assert sign_in(api, user.email, PASSWORD).status_code == 200


def test_distributed_guessing_on_one_email_is_stopped_and_the_owner_still_signs_in(api, user, real_rate_limits):
    # The owner has signed in from home before: a device session from that address.
    assert sign_in(api, user.email, PASSWORD, ip="192.0.2.10").status_code == 200
    statuses = [sign_in(api, user.email, ip=f"203.0.113.{n}").status_code for n in range(10)]
    assert statuses == [401] * 10
    # The 11th address, new like every attacker's, is refused unchecked, the right password too.
    assert_refused(sign_in(api, user.email, ip="203.0.113.200"), limit=10, window=900)
    assert_refused(sign_in(api, user.email, PASSWORD, ip="203.0.113.201"), limit=10, window=900)
    # The owner from a familiar address is not locked out.
    assert sign_in(api, user.email, PASSWORD, ip="192.0.2.10").status_code == 200
    # Nor is any other account.
    assert sign_in(api, "other@example.com", ip="203.0.113.202").status_code == 401


def test_one_address_spraying_many_emails_is_stopped(api, make_user, real_rate_limits):
    victims = [make_user() for _ in range(21)]
    statuses = [sign_in(api, victim.email, ip="203.0.113.77").status_code for victim in victims[:20]]
    assert statuses == [401] * 20
    assert_refused(sign_in(api, victims[20].email, ip="203.0.113.77"), limit=20, window=900)
    # Everyone else signs in, from any other address.
    assert sign_in(api, victims[20].email, PASSWORD, ip="198.51.100.20").status_code == 200


def test_sign_ups_are_capped_per_address(api, real_rate_limits):
    statuses = [sign_up(api, f"r{n}@example.com", ip="10.0.5.5").status_code for n in range(30)]
    assert statuses == [201] * 30
    blocked = sign_up(api, "r30@example.com", ip="10.0.5.5")
    assert_refused(blocked, limit=30, window=300)
    assert sign_up(api, "r31@example.com", ip="10.0.5.6").status_code == 201


def test_sign_in_requests_are_capped_per_address(api, user, real_rate_limits, settings):
    settings.RATE_LIMITS = {**real_rate_limits, "signin": {"rate": (3, 60), "burst": None}}
    assert [sign_in(api, user.email, PASSWORD).status_code for _ in range(3)] == [200] * 3
    assert_refused(sign_in(api, user.email, PASSWORD), limit=3, window=60)


# --- Configuration ---------------------------------------------------------------------------


def _settings_in_subprocess(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    """Run `code` (already dedented) in a fresh process with Django set up from `env`."""
    script = "import django\ndjango.setup()\nfrom django.conf import settings\n" + code
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60
    )


def test_every_limit_comes_from_the_environment():
    out = _settings_in_subprocess(
        {
            "RATE_LIMIT_AUTH_FAILURES": "3/1m",
            "RATE_LIMIT_SIGNUP": "100/1h",
            "RATE_LIMIT_GENERAL_BURST": "",
            "RATE_LIMIT_AI": "20/30s",
        },
        "print(settings.RATE_LIMITS['auth_failures'], settings.RATE_LIMITS['signup'], "
        "settings.RATE_LIMITS['general'], settings.RATE_LIMITS['ai'])",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'rate': (3, 60), 'burst': None} {'rate': (100, 3600), 'burst': None} " + (
        "{'rate': (60, 60), 'burst': None} {'rate': (20, 30), 'burst': (5, 10)}"
    )


def test_a_malformed_limit_refuses_to_start():
    out = _settings_in_subprocess({"RATE_LIMIT_AUTH_FAILURES": "five per minute"}, "")
    assert out.returncode != 0
    assert "RATE_LIMIT_AUTH_FAILURES must look like 5/15m" in out.stderr


@pytest.mark.skipif(
    not django_settings.REDIS_URL, reason="shared counters need Redis (the embedded cache is per process)"
)
def test_failure_budgets_are_shared_between_processes_through_redis(api, user, real_rate_limits, rate_clock):
    """Another web process checks three wrong passwords for this email from this address; this
    one then has two left."""
    out = _settings_in_subprocess(
        {},
        textwrap.dedent(
            f"""
        import types
        import django_ratelimit.core
        # The test process's pinned clock: the same windows, hence the same counters.
        django_ratelimit.core.time = types.SimpleNamespace(time=lambda: {rate_clock.now!r})
        from accounts.signin_protection import signin_failure_record
        for _ in range(3):
            print(signin_failure_record(email={user.email!r}, address="10.9.9.9")["X-RateLimit-Remaining"])
        """
        ),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4", "3", "2"]
    assert [sign_in(api, user.email, ip="10.9.9.9").status_code for _ in range(3)] == [401, 401, 429]
