"""Fixtures of the ops tests."""

from collections.abc import Iterator
from datetime import datetime, time

import pytest
import time_machine
from django.utils import timezone

from tests.clamav import clamav, clamd_server  # noqa: F401 - fixtures


@pytest.fixture
def noon_today() -> Iterator[datetime]:
    """The clock at noon today, ticking on from there: data placed "n days ago" and the page that
    charts it agree on which day is today, however long the test runs and whenever it starts."""
    noon = timezone.make_aware(datetime.combine(timezone.localdate(), time(12, 0)))
    with time_machine.travel(noon, tick=True):
        yield noon
