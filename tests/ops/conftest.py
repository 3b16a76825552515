"""Fixtures of the ops tests."""

from tests.clamav import clamav, clamd_server  # noqa: F401 - fixtures
