"""AI jobs on the billable-job core (`core.jobs`): their kind, and the one entry the modality
modules have to the lifecycle (`ai_job_begin`, `ai_job_succeed`, `ai_job_fail`,
`ai_job_failures_recorded`, `ai_job_resume`, `ai_job_abandon`, `ai_jobs_reap`).

Every provider call is an `AIJob` paid for by a quota reservation: settled when it succeeds (in
the transaction that completes it) and refunded when it fails. A call made in a request is
created running, with a claim token of its own, and finished there; a queued transcription is
claimed by a worker, which beats while it runs.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
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
from core.compiled_queries import row_insert
from core.exceptions import ApplicationError
from core.jobs.kinds import JobKind
from core.jobs.lifecycle import ReapReport, job_complete_stored, job_fail, jobs_reap
from quotas.billing import ReservationBilling
from quotas.modalities import Modality
from quotas.models import Reservation
from quotas.services import quota_reserve

logger = logging.getLogger(__name__)

JOB_RESERVATION_TYPE = "ai_job"
SUMMARY_CHARS = 500
UNFINISHED = (AIJob.Status.PENDING, AIJob.Status.PROCESSING)
ABANDONED = "abandoned"
INTERRUPTED = "The job was interrupted and not charged; please try again."

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


def _given_up(attempts: int) -> tuple[str, str]:
    # What AI job histories have always said of a job nothing would finish.
    return INTERRUPTED, ABANDONED


def _transcription_send(job_id: uuid.UUID) -> bool:
    """Hand a queued transcription to a worker; with the broker down it stays pending and the
    reaper sends it again after AI_JOB_STALE_SECONDS."""
    from ai_services.tasks import transcription_job_run  # the tasks module imports the services

    try:
        transcription_job_run.delay(str(job_id))
    except BROKER_ERRORS as exc:
        logger.warning("Could not send transcription %s: %s", job_id, exc)
        return False
    return True


AI_JOBS: JobKind[AIJob] = JobKind(
    name="ai",
    model=AIJob,
    settings_prefix="AI_JOB",
    billing=ReservationBilling(),
    # Only queued transcriptions wait; one untouched for AI_JOB_STALE_SECONDS lost its task.
    waiting={AIJob.Status.PENDING: "STALE_SECONDS"},
    queued_status=AIJob.Status.PENDING,
    give_up=_given_up,
    # A refunded job says so in the history.
    refunded_fields={"units_charged": 0},
    send=_transcription_send,
    select_related=("reservation",),
    # Queued transcriptions carry their upload; the other pending rows are the later stages of a
    # voice turn, which its request runs and no worker may take.
    worker_rows=~Q(input_file=""),
)


@dataclass
class JobCall:
    """A job in flight with the quota reservation that pays for it and the claim token of the
    run finishing it (none while a queued job waits)."""

    job: AIJob
    reservation: Reservation
    started: float
    token: str = ""


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
    slots, and is created running, claimed by this request (it never beats: the reaper gives it
    up after AI_JOB_STALE_SECONDS)."""
    job_id = uuid.uuid4()
    runs_now = status == AIJob.Status.PROCESSING
    token = uuid.uuid4().hex if runs_now else ""
    with transaction.atomic():
        if runs_now:  # a call that runs in this request holds a web thread
            ai_call_slot_take(user=user)
        reservation = quota_reserve(
            user=user, service=modality.service, units=units, job_type=JOB_RESERVATION_TYPE, job_id=str(job_id)
        )
        # In the same transaction: a job that cannot be created takes its reservation with it.
        job = AIJob(
            id=job_id,
            user=user,
            type=modality.value,
            status=status,
            provider=provider,
            model=model,
            input=summary,
            units_charged=units,
            conversation=conversation,
            reservation=reservation,
            claim_token=token,
            started_at=timezone.now() if runs_now else None,
        )
        row_insert(job)  # compiled once per connection: every AI call makes one
    return JobCall(job=job, reservation=reservation, started=time.perf_counter(), token=token)


def ai_job_resume(*, job: AIJob, token: str = "") -> JobCall:
    """A queued job taken up by a worker (holding `token`), with the reservation made when it
    was queued."""
    if job.reservation is None:  # every job is created with its reservation
        raise Reservation.DoesNotExist(f"AI job {job.id} has no reservation")
    return JobCall(job=job, reservation=job.reservation, started=time.perf_counter(), token=token)


def ai_job_succeed(
    call: JobCall,
    *,
    output: dict[str, Any],
    tokens: int = 0,
    units: int | None = None,
    usage: dict[str, Any] | None = None,
    **fields: Any,
) -> AIJob:
    """Complete the job and settle its reservation (at `units`, or what was reserved), at once."""
    elapsed_ms = int((time.perf_counter() - call.started) * 1000)
    tokens = max(int(tokens), 0)
    values: dict[str, Any] = {
        "output": output,
        "tokens_used": tokens,
        "units_charged": call.reservation.units if units is None else max(units, 0),
        "processing_time_ms": elapsed_ms,
        **fields,
    }
    job = call.job
    stored = job_complete_stored(
        kind=AI_JOBS,
        job_id=job.pk,
        token=call.token,
        fields=values,
        units=units,
        usage={"tokens": tokens, "processing_ms": elapsed_ms, **(usage or {})},
        job=job,
    )
    if stored is None:
        # Given up for lost (and refunded) while it ran, by staff or the reaper: the answer that
        # came after all is delivered, free.
        values["units_charged"] = 0
        now = timezone.now()
        AIJob.objects.filter(pk=job.pk, status=AIJob.Status.FAILED, error_code=ABANDONED).update(
            **values, status=AIJob.Status.COMPLETED, error="", error_code="", completed_at=now, updated_at=now
        )
        _reload(job, status=AIJob.Status.COMPLETED, error="", error_code="", **values)
    _record_metric(job)
    return job


def _reload(job: AIJob, **values: Any) -> None:
    """The job as stored; as the run saw it (`values`) if staff deleted it meanwhile, so the
    caller still answers its client."""
    for name, value in values.items():
        setattr(job, name, value)
    with suppress(AIJob.DoesNotExist):
        job.refresh_from_db()


def _error_of(error: BaseException, *, job_id: uuid.UUID | str) -> tuple[str, str]:
    if isinstance(error, ApplicationError):
        return error.message, error.code
    logger.error("AI job %s failed unexpectedly", job_id, exc_info=error)
    return "Internal error.", "server_error"


def ai_job_fail(call: JobCall, error: BaseException) -> AIJob:
    """Refund and record the failure; the caller re-raises `error`. A job already given up (and
    refunded) keeps what it says."""
    job = call.job
    message, code = _error_of(error, job_id=job.pk)
    elapsed_ms = int((time.perf_counter() - call.started) * 1000)
    job_fail(
        kind=AI_JOBS,
        job_id=job.pk,
        error=message,
        code=code,
        token=call.token,
        fields={"processing_time_ms": elapsed_ms},
    )
    _reload(job, status=AIJob.Status.FAILED, error=message, error_code=code, units_charged=0)
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


def ai_job_given_up(*, job_id: uuid.UUID | str) -> None:
    """What follows a job failed and refunded without its runner: its upload goes, its outcome
    is counted."""
    job = AIJob.objects.filter(pk=job_id).first()
    if job is not None:
        pending_file_delete(job)
        _record_metric(job)


def ai_job_stop(*, job_id: uuid.UUID | str, error: BaseException) -> bool:
    """Fail an unfinished job with `error` (refunded, its upload removed), whoever runs it."""
    message, code = _error_of(error, job_id=job_id)
    stopped = job_fail(kind=AI_JOBS, job_id=job_id, error=message, code=code)
    if stopped:
        ai_job_given_up(job_id=job_id)
    return stopped


# --- Jobs nothing will finish ----------------------------------------------------------------


def ai_job_abandon(*, job_id: uuid.UUID | str, reason: str) -> bool:
    """Fail an unfinished job and refund its quota: its web process or worker died, or staff
    stopped it. Conditional on the status, so a job that finished meanwhile keeps its result;
    False if there was nothing to stop."""
    stopped = job_fail(kind=AI_JOBS, job_id=job_id, error=reason, code=ABANDONED)
    if stopped:
        ai_job_given_up(job_id=job_id)
    return stopped


def ai_job_delete(*, job: AIJob) -> None:
    """Remove a job from the history; an unfinished one is stopped and refunded first (which also
    removes its queued upload: a finished job has none left)."""
    if job.status in UNFINISHED:
        ai_job_abandon(job_id=job.id, reason="Deleted by staff.")
    job.delete()


def ai_jobs_reap(*, now: datetime | None = None) -> ReapReport:
    """The periodic safety net for jobs nothing will finish.

    Queued transcriptions go through the core's reaper (`core.jobs.lifecycle.jobs_reap`): one
    whose heartbeat stopped is re-queued while it has attempts left, else failed and refunded;
    one whose task was lost is sent again. A call made in a request has no heartbeat: still
    running (or, a later stage of a voice turn, still waiting its turn) after
    AI_JOB_STALE_SECONDS, its web process died (killed during a stream), and it is failed and
    refunded."""
    now = now or timezone.now()
    report = jobs_reap(kind=AI_JOBS, now=now)
    for job_id in report.failed:
        ai_job_given_up(job_id=job_id)
    stale_before = now - timedelta(seconds=settings.AI_JOB_STALE_SECONDS)
    in_request = AIJob.objects.filter(
        Q(status=AIJob.Status.PROCESSING, heartbeat_at__isnull=True, started_at__lt=stale_before)
        | Q(status=AIJob.Status.PENDING, updated_at__lt=stale_before),
        input_file="",
    )
    for lost in in_request.values_list("id", flat=True):
        if ai_job_abandon(job_id=lost, reason=INTERRUPTED):
            report.failed.append(str(lost))
    return report


def ai_files_delete_for_user(*, user: User) -> None:
    """Account-deletion clean-up (settings.ACCOUNT_DELETION_CLEANUPS): uploads still waiting in
    the queue. The rows go by cascade; the files are removed once the deletion commits."""
    names = list(AIJob.objects.filter(user=user).exclude(input_file="").values_list("input_file", flat=True))
    if names:
        transaction.on_commit(lambda: _files_delete(names))


def _files_delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)
