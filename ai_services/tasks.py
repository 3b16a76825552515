"""Celery entry points for AI work that does not fit in a request (long transcriptions)."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from core.exceptions import ProviderTimeout, ProviderUnavailable

logger = logging.getLogger(__name__)

TRANSIENT = (ProviderUnavailable, ProviderTimeout)
MAX_RETRIES = 3


@shared_task(name="ai_services.transcription_job_run", bind=True, max_retries=MAX_RETRIES, acks_late=True)
def transcription_job_run(self: Task, job_id: str) -> None:
    """Claim and run a queued transcription. A provider that is down or slow is retried with
    backoff (the job goes back to pending meanwhile); any other failure marks the job failed."""
    from ai_services import services

    try:
        services.transcription_job_process(
            job_id=job_id, keep_on=TRANSIENT if self.request.retries < MAX_RETRIES else ()
        )
    except TRANSIENT as exc:
        if self.request.retries >= MAX_RETRIES:
            return
        raise self.retry(exc=exc, countdown=min(60, 5 * 2**self.request.retries)) from None
    except Exception as exc:
        logger.exception("Transcription job %s failed", job_id)
        services.transcription_job_fail(job_id=job_id, error=exc)


@shared_task(name="ai_services.reap_stale_jobs")
def reap_stale_ai_jobs() -> dict[str, list[str]]:
    from ai_services import services

    report = services.ai_jobs_reap()
    return {"failed": report.failed, "requeued": report.requeued, "resent": report.resent}


@shared_task(name="ai_services.purge_voice_audio")
def purge_voice_audio() -> int:
    """Beat: delete the spoken replies of voice turns past their expiry; returns how many."""
    from ai_services.services.voice import voice_audio_purge

    return voice_audio_purge()
