r"""The one lifecycle of a billable job, as plain functions over its `JobKind`.

waiting (queued) --claim--> running --complete--> succeeded (settled in the same transaction)
                               |  \--fail-------> failed (refunded)
                               \--release / reap (stale heartbeat)--> queued again
any active state --cancel--> cancelled (refunded)

Every write is a conditional UPDATE on the state it expects (status, claim token, the heartbeat
the reaper saw); 0 rows means someone else changed the job first and the caller backs off. No
function saves a whole row, so concurrent workers, reapers and cancels never undo each other.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic

from celery import current_app
from django.db import transaction
from django.db.models import F, ForeignKey, Model, Q, QuerySet
from django.utils import timezone

from core.compiled_queries import rows_update
from core.jobs.kinds import J, JobKind
from core.jobs.models import JobStatus

logger = logging.getLogger(__name__)

JobId = uuid.UUID | str
ERROR_MAX_LENGTH = 2000


@dataclass
class Claim(Generic[J]):
    """The outcome of a claim: the job and this run's token, or why not (`reason`), and for a job
    another worker holds with a fresh heartbeat, when it may be looked at again (`retry_in`)."""

    job: J | None = None
    token: str = ""
    retry_in: float | None = None
    reason: str = ""


@dataclass
class ReapReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.requeued or self.failed or self.resent)


def _stale_before(kind: JobKind[Any], now: datetime) -> datetime:
    return now - timedelta(seconds=kind.stale_seconds)


def _owned(kind: JobKind[J], job_id: JobId, token: str) -> QuerySet[J]:
    return kind.rows().filter(pk=job_id, status=JobStatus.RUNNING, claim_token=token)


def job_claim(*, kind: JobKind[J], job_id: JobId, task_id: str = "") -> Claim[J]:
    """Take the job for this run: waiting -> running in one conditional UPDATE, with a new token.

    A running job whose heartbeat went stale belonged to a worker that died; it may be claimed
    again, at most `max_attempts` starts in all (a waiting job out of attempts is failed and
    refunded). A running job with a fresh heartbeat is someone else's: `retry_in` says when its
    heartbeat would be stale."""
    now = timezone.now()
    token = uuid.uuid4().hex
    max_attempts = kind.max_attempts
    claimable = Q(status__in=kind.waiting_statuses) | Q(
        status=JobStatus.RUNNING, heartbeat_at__lt=_stale_before(kind, now)
    )
    rows = (
        kind.rows()
        .filter(claimable, kind.worker_rows, pk=job_id, attempts__lt=max_attempts)
        .update(
            status=JobStatus.RUNNING,
            claim_token=token,
            task_id=task_id or F("task_id"),
            attempts=F("attempts") + 1,
            heartbeat_at=now,
            started_at=now,
            progress=0,
            error="",
            error_code="",
            updated_at=now,
        )
    )
    if rows:
        job = kind.rows().select_related(*kind.select_related).get(pk=job_id)
        kind.event(JobStatus.RUNNING)
        return Claim(job=job, token=token)
    current = kind.rows().filter(pk=job_id).first()
    if current is None:
        return Claim(reason="deleted")
    if current.status == JobStatus.RUNNING and current.attempts < max_attempts:
        stale_at = (current.heartbeat_at or now) + timedelta(seconds=kind.stale_seconds)
        return Claim(retry_in=max((stale_at - now).total_seconds(), 1.0), reason="busy")
    if current.status in kind.waiting_statuses:
        error, code = kind.give_up(current.attempts)
        job_fail(kind=kind, job_id=current.pk, error=error, code=code)
        return Claim(reason="attempts exhausted")
    return Claim(reason=current.status)


def job_heartbeat(*, kind: JobKind[Any], job_id: JobId, token: str, progress: int | None = None) -> bool:
    """Record a sign of life (and the progress) of the run holding `token`; False if it no longer
    owns the job (cancelled, deleted or taken over)."""
    values: dict[str, Any] = {"heartbeat_at": timezone.now()}
    if progress is not None:
        values["progress"] = progress
    return bool(_owned(kind, job_id, token).update(**values))


def job_is_owned(*, kind: JobKind[Any], job_id: JobId, token: str) -> bool:
    """Whether the run holding `token` still owns the job (not cancelled, deleted or taken over)."""
    return _owned(kind, job_id, token).exists()


def job_release(*, kind: JobKind[Any], job_id: JobId, token: str) -> bool:
    """Give a claimed job back to the queue (a transient error; the task retries it)."""
    return bool(
        _owned(kind, job_id, token).update(status=kind.queued_status, claim_token="", updated_at=timezone.now())
    )


def job_complete(
    *,
    kind: JobKind[Any],
    job_id: JobId,
    token: str,
    fields: Mapping[str, Any] | None = None,
    units: int | None = None,
    usage: Mapping[str, float] | None = None,
) -> bool:
    """Finish the run holding `token` with its results (`fields`) and settle its billing, in one
    transaction: nobody ever sees the job completed while its reservation is still open. False
    (nothing written, nothing settled) if the run no longer owns the job.

    Call it inside the caller's transaction when other rows must appear together with the
    result: the UPDATE locks the job row, and the settlement rolls back with it."""
    stored = job_complete_stored(kind=kind, job_id=job_id, token=token, fields=fields, units=units, usage=usage)
    return stored is not None


def job_complete_stored(
    *,
    kind: JobKind[J],
    job_id: JobId,
    token: str,
    fields: Mapping[str, Any] | None = None,
    units: int | None = None,
    usage: Mapping[str, float] | None = None,
    job: J | None = None,
) -> J | None:
    """`job_complete`, returning the job as stored once completed, or None if the run no longer
    owns it.

    Without `job` the row is read back in the same transaction. With `job` (the caller's copy of
    the row, the one it claimed or created) it is not read again: the UPDATE matched the run's
    token, and while a run holds its token nothing else writes the row, so the row is that copy
    with the values just written, which are set on it. Its billing relation is settled as loaded,
    then dropped from the returned job (as reading the row again would), so whoever asks for it
    next reads it as settled."""
    now = timezone.now()
    values: dict[str, Any] = {
        "progress": 100,
        "error": "",
        "error_code": "",
        "heartbeat_at": now,
        **(fields or {}),
        "status": JobStatus.SUCCEEDED,
        "completed_at": now,
        "updated_at": now,
    }
    # No savepoint inside a caller's transaction: nothing here raises but the database, and then
    # the caller's transaction (which stores the job's results) must fail as a whole anyway.
    with transaction.atomic(savepoint=False):
        # `_owned(...).update(**values)`, compiled once per connection: every job's completion runs it.
        owned = {"pk": job_id, "status": JobStatus.RUNNING, "claim_token": token}
        rows = rows_update(kind.model, where=owned, values=values)
        if not rows:
            return None
        # A value computed by the database (an expression) is only known by reading the row.
        if job is None or any(hasattr(value, "resolve_expression") for value in values.values()):
            job = kind.rows().select_related(*kind.select_related).get(pk=job_id)
        else:
            for name, value in values.items():
                setattr(job, name, value)
        kind.billing.settle(job, units=units, usage=usage)
    _relations_forget(job)
    return job


def _relations_forget(job: Model) -> None:
    """Drop the related rows cached on `job`, as `refresh_from_db` does."""
    for model_field in job._meta.concrete_fields:
        if isinstance(model_field, ForeignKey) and model_field.is_cached(job):
            model_field.delete_cached_value(job)


def job_fail(
    *,
    kind: JobKind[Any],
    job_id: JobId,
    error: str,
    code: str = "failed",
    token: str = "",
    fields: Mapping[str, Any] | None = None,
) -> bool:
    """Mark an active job failed (only the run's own, when `token` is given), with `fields`
    besides, and refund it."""
    rows = kind.rows().filter(pk=job_id, status__in=kind.active_statuses)
    if token:
        rows = rows.filter(claim_token=token)
    return _fail(kind, rows, job_id=job_id, error=error, code=code, fields=fields)


def _fail(
    kind: JobKind[Any],
    rows: QuerySet[Any],
    *,
    job_id: JobId,
    error: str,
    code: str,
    fields: Mapping[str, Any] | None = None,
) -> bool:
    now = timezone.now()
    with transaction.atomic():
        failed = rows.update(
            **kind.refunded_fields,
            **(fields or {}),
            status=JobStatus.FAILED,
            error=error[:ERROR_MAX_LENGTH],
            error_code=code[:64],
            claim_token="",
            completed_at=now,
            updated_at=now,
        )
        if failed:
            kind.billing.refund(kind.rows().select_related(*kind.select_related).get(pk=job_id))
    if failed:
        logger.info("%s job %s failed: %s", kind.name, job_id, error)
        kind.event(JobStatus.FAILED)
    return bool(failed)


def job_cancel(*, kind: JobKind[Any], job_id: JobId) -> bool:
    """Stop an active job and refund it. A worker running it notices at its next heartbeat (its
    token no longer matches) and cleans up; its task is also revoked, best effort."""
    now = timezone.now()
    with transaction.atomic():
        job = kind.rows().select_related(*kind.select_related).filter(pk=job_id).first()
        if job is None:
            return False
        rows = (
            kind.rows()
            .filter(pk=job_id, status__in=kind.active_statuses)
            .update(
                **kind.refunded_fields, status=JobStatus.CANCELLED, claim_token="", completed_at=now, updated_at=now
            )
        )
        if rows:
            kind.billing.refund(job)
    if rows:
        task_id = job.task_id
        transaction.on_commit(lambda: task_revoke(task_id=task_id))
        kind.event(JobStatus.CANCELLED)
    return bool(rows)


def task_revoke(*, task_id: str) -> None:
    if not task_id:
        return
    try:
        current_app.control.revoke(task_id)
    except Exception:  # best effort: the cancelled status is what actually stops the worker
        logger.info("Could not revoke task %s", task_id, exc_info=True)


def job_requeue(*, kind: JobKind[Any], job_id: JobId) -> bool:
    """Run a finished job again from scratch (an operator's action); a running job is left alone.
    Attempts start over: the operator decided the job deserves them."""
    rows = (
        kind.rows()
        .filter(pk=job_id)
        .exclude(status=JobStatus.RUNNING)
        .update(
            status=kind.queued_status,
            progress=0,
            error="",
            error_code="",
            attempts=0,
            claim_token="",
            task_id=uuid.uuid4().hex,
            updated_at=timezone.now(),
        )
    )
    if rows:
        transaction.on_commit(lambda: _send(kind, job_id))
    return bool(rows)


def _send(kind: JobKind[Any], job_id: JobId) -> None:
    kind.send(uuid.UUID(str(job_id)))


def jobs_reap(*, kind: JobKind[Any], now: datetime | None = None) -> ReapReport:
    """The periodic safety net for jobs no worker will finish.

    - running with a stale heartbeat: its worker died. Re-queued while it has attempts left,
      otherwise failed and refunded.
    - waiting longer than its status allows (`kind.waiting`, in stale windows): its task was lost
      (a broker outage, a worker killed on a broker without redelivery); sent again. A duplicate
      is harmless: only one delivery can claim the job.
    Each step is conditional on the row as the reaper saw it, so of several reapers running at
    once only one acts on a given job."""
    now = now or timezone.now()
    stale_before = _stale_before(kind, now)
    max_attempts = kind.max_attempts
    report = ReapReport()
    stale = kind.rows().filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before)
    for job in stale.only("attempts", "heartbeat_at", "claim_token"):
        # Conditional on the heartbeat and token seen: a worker that beat meanwhile keeps its job.
        seen = kind.rows().filter(
            pk=job.pk, status=JobStatus.RUNNING, heartbeat_at=job.heartbeat_at, claim_token=job.claim_token
        )
        if job.attempts >= max_attempts:
            error, code = kind.give_up(job.attempts)
            if _fail(kind, seen, job_id=job.pk, error=error, code=code):
                report.failed.append(str(job.pk))
            continue
        with transaction.atomic():
            if seen.update(status=kind.queued_status, claim_token="", task_id=uuid.uuid4().hex, updated_at=now):
                transaction.on_commit(functools.partial(_send, kind, job.pk))
                report.requeued.append(str(job.pk))
    # An empty Q() would match every row: a kind with no waiting states has nothing to resend.
    waiting = Q(pk__in=[])
    for status in kind.waiting:
        waiting |= Q(status=status, updated_at__lt=now - timedelta(seconds=kind.waiting_seconds(status)))
    for job in kind.rows().filter(waiting, kind.worker_rows).only("attempts", "updated_at"):
        if job.attempts >= max_attempts:
            error, code = kind.give_up(job.attempts)
            if job_fail(kind=kind, job_id=job.pk, error=error, code=code):
                report.failed.append(str(job.pk))
            continue
        # Claimed by the touch: of several reapers seeing the same row, one sends it.
        if kind.rows().filter(pk=job.pk, updated_at=job.updated_at).update(updated_at=now):
            _send(kind, job.pk)
            report.resent.append(str(job.pk))
    if report:
        logger.warning(
            "%s reaper: requeued %s, failed %s, resent %s", kind.name, report.requeued, report.failed, report.resent
        )
    return report
