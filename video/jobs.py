"""Video jobs as a kind of the billable-job core: the `VIDEO_*` settings, billing through the
quota reservation, and how a job's task is sent to a worker."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from django.db import models

from core.jobs.kinds import JobKind
from core.metrics import record_video_job
from quotas.billing import ReservationBilling
from quotas.pricing import units_for_speech
from quotas.services import reservation_refund, reservation_settle
from video.models import VideoJob

logger = logging.getLogger(__name__)

Status = VideoJob.Status


def video_job_enqueue(*, job_id: uuid.UUID) -> bool:
    """Hand the job to a worker; False if the broker could not be reached (the job stays as it
    was, and the reaper sends it again later)."""
    from video.tasks import process_video_job  # the tasks module imports the services, which import this

    job = VideoJob.objects.filter(id=job_id).only("id", "task_id", "status").first()
    if job is None or job.status not in (Status.UPLOADED, Status.QUEUED):
        return True
    task_id = job.task_id or uuid.uuid4().hex
    try:
        process_video_job.apply_async(args=(str(job_id),), task_id=task_id)
    except Exception as exc:  # any broker failure: the caller decides between refusing and retrying
        logger.warning("Could not queue video job %s: %s", job_id, exc)
        return False
    VideoJob.objects.filter(id=job_id, status=Status.UPLOADED).update(status=Status.QUEUED, task_id=task_id)
    return True


def video_job_record(status: str, seconds: float | None = None) -> None:
    try:
        record_video_job(status=status, seconds=seconds)
    except Exception:  # metrics must never break the pipeline
        logger.debug("Recording the video metric failed", exc_info=True)


class VideoBilling(ReservationBilling):
    """The job's reservation, plus its captions' (speech-to-text units) when it asked for them:
    both settle when the job completes and both are refunded when it fails or is cancelled.

    The captions settle at the price of the audio actually transcribed (`usage["audio_seconds"]`);
    a completed job without it (the provider failed, or there was nothing to transcribe) gets its
    captions' units back."""

    def settle(self, job: models.Model, *, units: int | None = None, usage: Mapping[str, float] | None = None) -> None:
        usage = dict(usage or {})
        audio_seconds = usage.pop("audio_seconds", None)
        super().settle(job, units=units, usage=usage)
        captions = getattr(job, "captions_reservation", None)
        if captions is None:
            return
        if audio_seconds is None:
            reservation_refund(reservation=captions)
        else:
            reservation_settle(
                reservation=captions,
                units=units_for_speech(audio_seconds=audio_seconds),
                usage={"audio_seconds": audio_seconds},
            )

    def refund(self, job: models.Model) -> None:
        super().refund(job)
        captions = getattr(job, "captions_reservation", None)
        if captions is not None:
            reservation_refund(reservation=captions)


def _send(job_id: uuid.UUID) -> bool:
    return video_job_enqueue(job_id=job_id)


VIDEO_JOBS: JobKind[VideoJob] = JobKind(
    name="video",
    model=VideoJob,
    settings_prefix="VIDEO",
    billing=VideoBilling(),
    # An upload whose task was not confirmed sent is resent after one stale window; a queued job
    # may be waiting behind others, so it gets five.
    waiting={Status.UPLOADED: 1, Status.QUEUED: 5},
    send=_send,
    on_event=video_job_record,
    select_related=("reservation", "captions_reservation"),
)
