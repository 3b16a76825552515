"""Completing a job with the caller's copy of it: what comes back is the row as stored, without
reading it again, and a settled reservation is a copy of the stored row too."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from ai_services.models import AIJob
from ai_services.services.jobs import AI_JOBS
from core.jobs import lifecycle
from quotas.models import QuotaAccount, Reservation
from quotas.services import quota_reserve, reservation_settle
from tests.jobs.test_ai_kind import queued_transcription

pytestmark = pytest.mark.django_db


def _stored(instance: AIJob | Reservation) -> dict:
    return model_to_dict(type(instance).objects.get(pk=instance.pk), fields=[f.name for f in instance._meta.fields])


def test_a_job_completed_with_its_copy_is_the_stored_row(user) -> None:
    queued = queued_transcription(user)
    claim = lifecycle.job_claim(kind=AI_JOBS, job_id=queued.id)
    assert claim.job is not None

    done = lifecycle.job_complete_stored(
        kind=AI_JOBS,
        job_id=claim.job.id,
        token=claim.token,
        fields={"output": {"text": "hello", "duration": 1.5}, "tokens_used": 3},
        usage={"audio_seconds": 1.5},
        job=claim.job,
    )

    assert done is claim.job
    assert model_to_dict(done, fields=[f.name for f in AIJob._meta.fields]) == _stored(done)
    assert (done.status, done.progress, done.output) == ("completed", 100, {"text": "hello", "duration": 1.5})
    reservation = Reservation.objects.get(pk=done.reservation_id)
    assert (reservation.status, reservation.audio_seconds) == ("settled", 1.5)


def test_a_job_no_longer_owned_is_neither_completed_nor_settled(user) -> None:
    queued = queued_transcription(user)
    claim = lifecycle.job_claim(kind=AI_JOBS, job_id=queued.id)
    assert claim.job is not None

    assert lifecycle.job_complete_stored(kind=AI_JOBS, job_id=queued.id, token="someone-else", job=claim.job) is None
    assert AIJob.objects.get(pk=queued.id).status == "processing"
    assert Reservation.objects.get(pk=queued.reservation_id).status == "reserved"


def test_a_settled_reservation_is_a_copy_of_the_stored_row(user) -> None:
    reservation = quota_reserve(user=user, service="chat", units=5, job_type="ai_job", job_id="j-1")

    settled = reservation_settle(reservation=reservation, units=3, usage={"tokens": 40, "processing_ms": 12.6})

    assert settled is not reservation
    assert reservation.status == "reserved"  # the caller's instance is left as it was
    assert model_to_dict(settled, fields=[f.name for f in Reservation._meta.fields]) == _stored(settled)
    assert (settled.status, settled.units, settled.tokens, settled.processing_ms) == ("settled", 3, 40, 13)
    assert QuotaAccount.objects.get(user=user).used == 3

    # Settling again changes nothing and answers the row as stored.
    again = reservation_settle(reservation=reservation, units=9)
    assert (again.status, again.units) == ("settled", 3)
    assert QuotaAccount.objects.get(user=user).used == 3
