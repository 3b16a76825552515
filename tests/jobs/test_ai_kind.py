"""AI jobs as a kind of the billable-job core: the AI_JOB_* settings keep their meaning, the
lifecycle writes the statuses AI jobs have always stored, and what it gives up is refunded and
says so in the job history."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from ai_services.models import AIJob
from ai_services.services.jobs import AI_JOBS
from core.jobs import lifecycle
from quotas.modalities import TRANSCRIBE
from quotas.models import QuotaAccount, Reservation
from quotas.services import quota_reserve

pytestmark = pytest.mark.django_db


def queued_transcription(user) -> AIJob:
    job_id = uuid.uuid4()
    reservation = quota_reserve(user=user, service=TRANSCRIBE.service, units=2, job_type="ai_job", job_id=str(job_id))
    return AIJob.objects.create(
        id=job_id,
        user=user,
        type=TRANSCRIBE.value,
        units_charged=2,
        reservation=reservation,
        input_file=f"ai/pending/{job_id}.wav",
    )


def test_the_kind_reads_the_ai_job_settings(settings) -> None:
    settings.AI_JOB_HEARTBEAT_STALE_SECONDS = 42.0
    settings.AI_JOB_MAX_ATTEMPTS = 4
    settings.AI_JOB_STALE_SECONDS = 900

    assert AI_JOBS.stale_seconds == 42.0
    assert AI_JOBS.max_attempts == 4
    # A queued transcription's task is presumed lost after AI_JOB_STALE_SECONDS, as before.
    assert AI_JOBS.waiting_seconds(AIJob.Status.PENDING) == 900
    assert AI_JOBS.progress_write_seconds == settings.AI_JOB_PROGRESS_WRITE_SECONDS


def test_released_and_requeued_jobs_wait_as_pending(user) -> None:
    job = queued_transcription(user)
    claim = lifecycle.job_claim(kind=AI_JOBS, job_id=job.id)
    assert claim.job is not None
    assert claim.job.status == "processing"

    assert lifecycle.job_release(kind=AI_JOBS, job_id=job.id, token=claim.token)
    job.refresh_from_db()
    assert job.status == "pending"

    claim = lifecycle.job_claim(kind=AI_JOBS, job_id=job.id)
    AIJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    report = lifecycle.jobs_reap(kind=AI_JOBS)
    assert report.requeued == [str(job.id)]
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("pending", 2)


def test_a_job_given_up_is_refunded_and_says_it_was_not_charged(user, settings) -> None:
    job = queued_transcription(user)
    claim = lifecycle.job_claim(kind=AI_JOBS, job_id=job.id)
    AIJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1), attempts=settings.AI_JOB_MAX_ATTEMPTS
    )

    assert lifecycle.jobs_reap(kind=AI_JOBS).failed == [str(job.id)]

    job.refresh_from_db()
    assert (job.status, job.error_code, job.units_charged, job.claim_token) == ("failed", "abandoned", 0, "")
    assert "not charged" in job.error
    assert not lifecycle.job_complete(kind=AI_JOBS, job_id=job.id, token=claim.token)
    assert Reservation.objects.get(pk=job.reservation_id).status == "refunded"
    assert QuotaAccount.objects.get(user=user).used == 0
