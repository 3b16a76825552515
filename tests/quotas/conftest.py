"""Fixtures for quota and rate-limit tests."""

from __future__ import annotations

import time

import django_ratelimit.core
import pytest


class RateClock:
    """The clock the rate-limit windows read. Windows are fixed and roll over at times that
    depend on the key, so a test that makes 21 requests could straddle a boundary and see its
    counter restart; pinning the clock makes the window boundaries the test's decision."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def start_window(self, identity: str, seconds: int) -> None:
        """Move to the first second of a fresh `seconds` window of `identity` (e.g. "ip:10.0.0.1"),
        so the test has the whole window before that counter rolls over."""
        self.now = float(django_ratelimit.core._get_window(identity, seconds) + 1)


@pytest.fixture
def rate_clock(monkeypatch) -> RateClock:
    clock = RateClock(float(int(time.time())))
    monkeypatch.setattr(django_ratelimit.core, "time", clock)
    return clock
