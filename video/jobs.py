"""Video jobs as a kind of the billable-job core: the `VIDEO_*` settings, billing through the
quota reservation, and how a job's task is sent to a worker."""

from __future__ import annotations

import logging
import uuid

from core.jobs.kinds import JobKind
from core.metrics import record_video_job
from quotas.billing import ReservationBilling
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


def _send(job_id: uuid.UUID) -> bool:
    return video_job_enqueue(job_id=job_id)


VIDEO_JOBS: JobKind[VideoJob] = JobKind(
    name="video",
    model=VideoJob,
    settings_prefix="VIDEO",
    billing=ReservationBilling(),
    # An upload whose task was not confirmed sent is resent after one stale window; a queued job
    # may be waiting behind others, so it gets five.
    waiting={Status.UPLOADED: 1, Status.QUEUED: 5},
    send=_send,
    on_event=video_job_record,
    select_related=("reservation",),
)
