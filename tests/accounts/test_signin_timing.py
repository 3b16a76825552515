"""Sign-in takes as long for an unknown email, a wrong password and an account without a
password (Google only): the password hasher runs on each path.

The measured failure: a Google-only account answered in 4.6 ms, a wrong password in 110 ms. The
assertion is that the hasher ran; the medians with production's Argon2 costs are printed
(`pytest -s`), never asserted, since timings on a shared machine are noise.
"""

from __future__ import annotations

import statistics
import time

import pytest

from accounts.models import User
from tests.hashers import CountingArgon2PasswordHasher

pytestmark = pytest.mark.django_db
PATHS = ("unknown email", "wrong password", "no password (Google only)")


@pytest.fixture
def accounts(make_user):
    make_user(email="local@example.com")
    google_only = make_user(email="google@example.com", provider="google")
    google_only.set_unusable_password()
    google_only.save()
    return {
        "unknown email": "nobody@example.com",
        "wrong password": "local@example.com",
        "no password (Google only)": "google@example.com",
    }


def attempt(api, email: str):
    return api.post("/api/auth/login", {"email": email, "password": "wrong-password-1"}, format="json")


@pytest.mark.parametrize("path", PATHS)
def test_the_hasher_runs_on_every_failure_path(api, settings, accounts, path):
    settings.PASSWORD_HASHERS = ["tests.hashers.CountingArgon2PasswordHasher"]
    before = CountingArgon2PasswordHasher.runs
    response = attempt(api, accounts[path])
    assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")
    assert CountingArgon2PasswordHasher.runs > before


def test_median_times_of_the_three_paths_are_printed(api, settings, accounts):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    local = User.objects.get(email="local@example.com")
    local.set_password("Another-Real-Password-9")  # stored with production's Argon2 costs
    local.save()
    # Round-robin, so a change of load on the machine falls on the three paths alike.
    samples: dict[str, list[float]] = {path: [] for path in PATHS}
    for _ in range(5):
        for path in PATHS:
            started = time.perf_counter()
            assert attempt(api, accounts[path]).status_code == 401
            samples[path].append(time.perf_counter() - started)
    medians = {path: statistics.median(times) * 1000 for path, times in samples.items()}
    print("\nsign-in failure medians (ms): " + ", ".join(f"{path} {ms:.1f}" for path, ms in medians.items()))
