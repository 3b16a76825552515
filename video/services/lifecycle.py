"""The video job's lifecycle outside the pipeline itself: claim, release, fail, cancel, retry
(requeue), reap and delete, each a call into the billable-job core over the video kind."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction

from accounts.models import User
from core.jobs import lifecycle
from core.jobs.lifecycle import Claim, ReapReport
from video import storage
from video.jobs import VIDEO_JOBS
from video.models import VideoJob
from video.search.indexing import video_moments_delete

logger = logging.getLogger(__name__)


def video_job_claim(*, job_id: uuid.UUID | str, task_id: str = "") -> Claim[VideoJob]:
    """Take the job for this worker: at most `VIDEO_MAX_ATTEMPTS` starts in all; a job processing
    with a fresh heartbeat is someone else's (`retry_in` says when to look again)."""
    claim = lifecycle.job_claim(kind=VIDEO_JOBS, job_id=job_id, task_id=task_id)
    if claim.reason == "deleted":
        logger.error(
            "Video job %s is not in this worker's database (instance %s): deleted since it was queued, or "
            "sent by an instance of another database sharing this broker, whose reaper will send it again",
            job_id,
            Path(settings.INSTANCE_DIR).name,
        )
    return claim


def video_job_fail(*, job_id: uuid.UUID | str, error: str, code: str = "failed", token: str = "") -> bool:
    """Mark an active job failed (only this run's, when `token` is given) and refund its units."""
    return lifecycle.job_fail(kind=VIDEO_JOBS, job_id=job_id, error=error, code=code, token=token)


def video_job_is_owned(*, job_id: uuid.UUID | str, token: str) -> bool:
    """Whether the run holding `token` still owns the job (not cancelled, deleted or taken over)."""
    return lifecycle.job_is_owned(kind=VIDEO_JOBS, job_id=job_id, token=token)


def video_job_release(*, job_id: uuid.UUID | str, token: str) -> bool:
    """Give a claimed job back to the queue after a transient error (the task retries it)."""
    return lifecycle.job_release(kind=VIDEO_JOBS, job_id=job_id, token=token)


def video_jobs_reap(*, now: datetime | None = None) -> ReapReport:
    """The periodic safety net for video jobs no worker will finish: stale runs are re-queued
    (or failed and refunded when out of attempts), lost tasks are sent again."""
    return lifecycle.jobs_reap(kind=VIDEO_JOBS, now=now)


def video_job_requeue(*, job: VideoJob) -> bool:
    """Process the job again (an operator's action). A job being processed right now is left alone."""
    if job.status == VideoJob.Status.PROCESSING:
        return False
    return lifecycle.job_requeue(kind=VIDEO_JOBS, job_id=job.id)


def video_job_cancel(*, job: VideoJob) -> bool:
    """Stop an active job and refund it: the worker notices at its next progress checkpoint and
    cleans up."""
    return lifecycle.job_cancel(kind=VIDEO_JOBS, job_id=job.id)


def video_job_delete(*, job: VideoJob) -> None:
    """Delete the job, its frames and assets, and every file under its folders."""
    if job.is_active:
        video_job_cancel(job=job)
    prefixes = storage.JobPaths(user_id=job.user_id, job_id=job.id).prefixes
    extra = [job.video_path]
    with transaction.atomic():
        VideoJob.objects.filter(id=job.id).delete()
        video_moments_delete(job=job)  # its moments in the owner's embeddings go with it
        transaction.on_commit(lambda: storage.delete_files(prefixes, extra))


def video_files_delete_for_user(*, user: User) -> None:
    """Account-deletion clean-up (settings.ACCOUNT_DELETION_CLEANUPS): stops the user's running
    jobs and removes every video file of the user once the deletion commits."""
    for job in VideoJob.objects.filter(user=user, status__in=VideoJob.ACTIVE_STATUSES).select_related("reservation"):
        video_job_cancel(job=job)
    prefixes = storage.user_prefixes(user_id=user.pk)
    transaction.on_commit(lambda: storage.delete_files(prefixes, []))
