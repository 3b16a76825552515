"""Celery entry points of the video pipeline: take ids, claim, call one service.

Tasks run with late acknowledgement and are rejected back to the queue when their worker
process dies (settings), so a killed worker's job is delivered again; the claim in
`video_job_claim` decides whether that delivery may take it over.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import MaxRetriesExceededError
from django.db import DatabaseError, InterfaceError, OperationalError

from video import media, services
from video.resumable.services import resumable_uploads_expire

logger = logging.getLogger(__name__)

# Errors worth another try: the database or the storage backend was briefly unreachable.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
MAX_TRANSIENT_RETRIES = 3


@shared_task(bind=True, name="video.process_job", acks_late=True, reject_on_worker_lost=True, max_retries=5)
def process_video_job(self: Task, job_id: str) -> str:
    claim = services.video_job_claim(job_id=job_id, task_id=self.request.id or "")
    if claim.retry_in is not None:
        # Another delivery holds the job with a fresh heartbeat (or held it until its worker
        # died): look again once that heartbeat would be stale.
        try:
            raise self.retry(countdown=claim.retry_in)
        except MaxRetriesExceededError:
            return "busy"
    if claim.job is None:
        return claim.reason or "skipped"
    try:
        services.video_job_process(job=claim.job, token=claim.token)
    except services.JobCancelled:
        logger.info("Video job %s stopped: cancelled, deleted or taken over", job_id)
        return "cancelled"
    except TRANSIENT_ERRORS as exc:
        retries = self.request.retries or 0
        if retries < MAX_TRANSIENT_RETRIES:
            logger.warning("Video job %s hit a transient error (%s); retrying", job_id, exc)
            try:
                services.video_job_release(job_id=job_id, token=claim.token)
            except DatabaseError:
                logger.warning("Could not release video job %s; it will be claimed once stale", job_id)
            raise self.retry(exc=exc, countdown=5 * 2**retries) from exc
        services.video_job_fail(
            job_id=job_id, token=claim.token, error=services.failure_message(exc), code=services.failure_code(exc)
        )
        return "failed"
    except Exception as exc:
        if not services.video_job_is_owned(job_id=job_id, token=claim.token):
            # Deleted or cancelled under the running ffmpeg (its output folder can vanish before
            # the next progress checkpoint): that is a stop, not a failure.
            logger.info("Video job %s stopped: cancelled, deleted or taken over (%s)", job_id, exc)
            return "cancelled"
        if not isinstance(exc, media.MediaError):
            logger.exception("Video job %s failed", job_id)
        services.video_job_fail(
            job_id=job_id, token=claim.token, error=services.failure_message(exc), code=services.failure_code(exc)
        )
        return "failed"
    return "completed"


@shared_task(name="video.build_asset", acks_late=True, reject_on_worker_lost=True)
def build_video_asset(asset_id: str) -> str:
    asset = services.video_asset_build(asset_id=asset_id)
    return asset.status if asset is not None else "skipped"


@shared_task(name="video.reap_stale_jobs")
def reap_stale_video_jobs() -> dict[str, list[str]]:
    report = services.video_jobs_reap()
    return {"requeued": report.requeued, "failed": report.failed, "resent": report.resent}


@shared_task(name="video.cleanup_files")
def cleanup_video_files() -> dict[str, int]:
    report = services.video_files_cleanup()
    return {"orphanFiles": len(report.orphan_files), "vanishedJobs": len(report.vanished_jobs)}


@shared_task(name="video.expire_resumable_uploads")
def expire_resumable_uploads() -> dict[str, int]:
    return {"expired": resumable_uploads_expire()}
