"""The compiled count of a user's running AI calls answers what the queryset's own count does."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from ai_services.concurrency import running_calls, running_calls_count
from ai_services.models import AIJob
from quotas.modalities import CHAT

pytestmark = pytest.mark.django_db


def _job(user, *, status: str = AIJob.Status.PROCESSING, started_ago: float = 1.0, input_file: str = "") -> AIJob:
    return AIJob.objects.create(
        id=uuid.uuid4(),
        user=user,
        type=CHAT.value,
        status=status,
        input_file=input_file,
        started_at=timezone.now() - timedelta(seconds=started_ago),
    )


def test_the_compiled_count_is_the_querysets(user, make_user) -> None:
    other = make_user()
    since = timezone.now() - timedelta(seconds=60)
    assert running_calls_count(user_id=user.pk, since=since) == 0

    _job(user)
    _job(user, started_ago=30)
    _job(user, started_ago=120)  # started before `since`: given up on, not counted
    _job(user, input_file="ai/pending/a.wav")  # a queued upload is a worker's
    _job(user, status=AIJob.Status.COMPLETED)
    _job(user, status=AIJob.Status.PENDING)
    _job(other)

    for who in (user, other):
        for cutoff in (since, since - timedelta(hours=1), timezone.now()):
            expected = running_calls(user_id=who.pk, since=cutoff).count()
            assert running_calls_count(user_id=who.pk, since=cutoff) == expected
    assert running_calls_count(user_id=user.pk, since=since) == 2
    assert running_calls_count(user_id=other.pk, since=since) == 1
