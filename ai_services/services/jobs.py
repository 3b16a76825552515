"""The billing lifecycle of AI jobs: every provider call is recorded as an `AIJob` paid for by a
quota reservation, settled when it succeeds and refunded when it fails; and the reaper of jobs
nothing will finish.

This module is the AI jobs' one entry to that lifecycle (`ai_job_begin`, `ai_job_succeed`,
`ai_job_fail`, `ai_job_failures_recorded`, `ai_job_resume`, `ai_job_abandon`, `ai_jobs_reap`):
the modality modules call nothing else, so the lifecycle can move onto a shared job core here
without them changing.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from ai_services.concurrency import ai_call_slot_take
from ai_services.models import AIJob, Conversation
from core.api.outages import BROKER_ERRORS
from core.exceptions import ApplicationError
from quotas.modalities import Modality
from quotas.models import Reservation
from quotas.services import quota_reserve, reservation_refund, reservation_settle

logger = logging.getLogger(__name__)

JOB_RESERVATION_TYPE = "ai_job"
SUMMARY_CHARS = 500
UNFINISHED = (AIJob.Status.PENDING, AIJob.Status.PROCESSING)

_METRIC_STATUS = {
    "provider_timeout": "timeout",
    "provider_unavailable": "unavailable",
    "provider_not_configured": "unavailable",
    "provider_error": "provider_error",
}


def text_summary(text: str) -> str:
    """`text` as a job's input or output keeps it: at most SUMMARY_CHARS characters."""
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _record_metric(job: AIJob) -> None:
    from core.metrics import record_ai_call

    status = "ok" if job.status == AIJob.Status.COMPLETED else _METRIC_STATUS.get(job.error_code, "error")
    record_ai_call(kind=job.type, provider=job.provider, status=status, tokens=job.tokens_used)


@dataclass
class JobCall:
    """A job in flight with the quota reservation that pays for it."""

    job: AIJob
    reservation: Reservation
    started: float


def ai_job_begin(
    *,
    user: User,
    modality: Modality[Any],
    units: int,
    provider: str,
    model: str,
    summary: dict[str, Any],
    conversation: Conversation | None = None,
    status: str = AIJob.Status.PROCESSING,
) -> JobCall:
    """Reserve `units` of the modality's quota service (429 when they do not fit) and record the
    job, in one transaction. A job that runs in this request also takes one of the user's AI call
    slots."""
    job_id = uuid.uuid4()
    with transaction.atomic():
        if status == AIJob.Status.PROCESSING:  # a call that runs in this request holds a web thread
            ai_call_slot_take(user=user)
        reservation = quota_reserve(
            user=user, service=modality.service, units=units, job_type=JOB_RESERVATION_TYPE, job_id=str(job_id)
        )
        # In the same transaction: a job that cannot be created takes its reservation with it.
        job = AIJob.objects.create(
            id=job_id,
            user=user,
            type=modality.value,
            status=status,
            provider=provider,
            model=model,
            input=summary,
            units_charged=units,
            conversation=conversation,
            reservation_id=reservation.pk,
            started_at=timezone.now() if status == AIJob.Status.PROCESSING else None,
        )
    return JobCall(job=job, reservation=reservation, started=time.perf_counter())


def ai_job_resume(*, job: AIJob) -> JobCall:
    """A queued job taken up by a worker, with the reservation made when it was queued."""
    if job.reservation_id is None:  # every job is created with its reservation
        raise Reservation.DoesNotExist(f"AI job {job.id} has no reservation")
    return JobCall(job=job, reservation=Reservation.objects.get(pk=job.reservation_id), started=time.perf_counter())


def ai_job_succeed(
    call: JobCall,
    *,
    output: dict[str, Any],
    tokens: int = 0,
    units: int | None = None,
    usage: dict[str, Any] | None = None,
    **fields: Any,
) -> AIJob:
    """Settle the reservation (at `units`, or what was reserved) and complete the job."""
    elapsed_ms = int((time.perf_counter() - call.started) * 1000)
    settled = reservation_settle(
        reservation=call.reservation,
        units=units,
        usage={"tokens": max(int(tokens), 0), "processing_ms": elapsed_ms, **(usage or {})},
    )
    job = call.job
    job.status = AIJob.Status.COMPLETED
    job.output = output
    job.tokens_used = max(int(tokens), 0)
    # A job given up for lost (and refunded) that finishes after all is delivered, free.
    job.units_charged = settled.units if settled.status == Reservation.Status.SETTLED else 0
    job.processing_time_ms = elapsed_ms
    job.completed_at = timezone.now()
    job.error = ""
    job.error_code = ""
    for name, value in fields.items():
        setattr(job, name, value)
    job.save()
    _record_metric(job)
    return job


def ai_job_fail(call: JobCall, error: BaseException) -> AIJob:
    """Refund and record the failure; the caller re-raises `error`."""
    reservation_refund(reservation=call.reservation)
    job = call.job
    if isinstance(error, ApplicationError):
        job.error, job.error_code = error.message, error.code
    else:
        logger.error("AI job %s failed unexpectedly", job.id, exc_info=error)
        job.error, job.error_code = "Internal error.", "server_error"
    job.status = AIJob.Status.FAILED
    job.units_charged = 0
    job.processing_time_ms = int((time.perf_counter() - call.started) * 1000)
    job.completed_at = timezone.now()
    job.save()
    _record_metric(job)
    return job


@contextmanager
def ai_job_failures_recorded(call: JobCall) -> Iterator[None]:
    """Whatever escapes the block fails the job (refunded) and goes on to the caller."""
    try:
        yield
    except BaseException as exc:
        ai_job_fail(call, exc)
        raise


def pending_file_delete(job: AIJob) -> None:
    """Remove a queued job's upload, once processed or given up."""
    name = job.input_file.name
    if name:
        default_storage.delete(name)
        AIJob.objects.filter(pk=job.pk).update(input_file="")
        job.input_file.name = ""


# --- Jobs nothing will finish ----------------------------------------------------------------


def _stale_before(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.AI_JOB_STALE_SECONDS)


def transcription_lost(now: datetime) -> Q:
    """Queued transcriptions whose worker is gone: no heartbeat for the heartbeat window, or
    running past the overall ceiling."""
    return (
        Q(status=AIJob.Status.PROCESSING)
        & ~Q(input_file="")
        & (
            Q(updated_at__lt=now - timedelta(seconds=settings.AI_JOB_HEARTBEAT_STALE_SECONDS))
            | Q(started_at__lt=_stale_before(now))
        )
    )


def ai_job_abandon(*, job_id: uuid.UUID | str, reason: str) -> bool:
    """Fail an unfinished job and refund its quota: its web process or worker died, or staff
    stopped it. Conditional on the status, so a job that finished meanwhile keeps its result;
    False if there was nothing to stop."""
    now = timezone.now()
    with transaction.atomic():
        stopped = AIJob.objects.filter(id=job_id, status__in=UNFINISHED).update(
            status=AIJob.Status.FAILED,
            error=reason,
            error_code="abandoned",
            units_charged=0,
            completed_at=now,
            updated_at=now,
        )
        if not stopped:
            return False
        job = AIJob.objects.get(id=job_id)
        reservation = Reservation.objects.filter(pk=job.reservation_id).first() if job.reservation_id else None
        if reservation is not None:
            reservation_refund(reservation=reservation)
    pending_file_delete(job)
    _record_metric(job)
    return True


def ai_job_delete(*, job: AIJob) -> None:
    """Remove a job from the history; an unfinished one is stopped and refunded first (which also
    removes its queued upload: a finished job has none left)."""
    if job.status in UNFINISHED:
        ai_job_abandon(job_id=job.id, reason="Deleted by staff.")
    job.delete()


@dataclass
class AIReapReport:
    failed: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)


def ai_jobs_reap(*, now: datetime | None = None) -> AIReapReport:
    """The periodic safety net for jobs nothing will finish.

    - `processing` since before the stale window: whatever ran it died (a web process killed
      during a stream, a worker killed during a transcription). A queued transcription with
      attempts left goes back to the queue; anything else is failed and refunded.
    - `pending` transcriptions untouched for the window: their task may have been lost (a broker
      outage); sent again. A duplicate is harmless: only one delivery can claim the job.
    """
    from ai_services.tasks import transcription_job_run

    now = now or timezone.now()
    stale_before = _stale_before(now)
    report = AIReapReport()
    stale = AIJob.objects.filter(
        Q(status=AIJob.Status.PROCESSING, input_file="", started_at__lt=stale_before) | transcription_lost(now)
    )
    for job in stale.only("id", "attempts", "input_file", "started_at", "updated_at"):
        if job.input_file and job.attempts < settings.AI_JOB_MAX_ATTEMPTS:
            # Conditional on the start and heartbeat we saw: a worker that claimed it in the
            # meantime (or beat) keeps it, and of several reapers only one re-queues it.
            requeued = AIJob.objects.filter(
                id=job.id, status=AIJob.Status.PROCESSING, started_at=job.started_at, updated_at=job.updated_at
            )
            if requeued.update(status=AIJob.Status.PENDING, updated_at=now):
                _transcription_resend(transcription_job_run, job.id)
                report.requeued.append(str(job.id))
        elif ai_job_abandon(job_id=job.id, reason="The job was interrupted and not charged; please try again."):
            report.failed.append(str(job.id))
    waiting = AIJob.objects.filter(status=AIJob.Status.PENDING, updated_at__lt=stale_before).exclude(input_file="")
    for job in waiting.only("id", "updated_at"):
        if AIJob.objects.filter(id=job.id, updated_at=job.updated_at).update(updated_at=now):
            _transcription_resend(transcription_job_run, job.id)
            report.resent.append(str(job.id))
    if report.failed or report.requeued or report.resent:
        logger.warning("AI reaper: failed %s, requeued %s, resent %s", report.failed, report.requeued, report.resent)
    return report


def _transcription_resend(task: Any, job_id: uuid.UUID) -> None:
    # With the broker down the job stays pending and is sent again after the stale window.
    try:
        task.delay(str(job_id))
    except BROKER_ERRORS as exc:
        logger.warning("Could not re-send transcription %s: %s", job_id, exc)


def ai_files_delete_for_user(*, user: User) -> None:
    """Account-deletion clean-up (settings.ACCOUNT_DELETION_CLEANUPS): uploads still waiting in
    the queue. The rows go by cascade; the files are removed once the deletion commits."""
    names = list(AIJob.objects.filter(user=user).exclude(input_file="").values_list("input_file", flat=True))
    if names:
        transaction.on_commit(lambda: _files_delete(names))


def _files_delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)
