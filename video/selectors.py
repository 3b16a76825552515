"""Reads of the video app, always scoped to the requesting user (another user's job is a 404)."""

from __future__ import annotations

import uuid

from django.db.models import Prefetch, QuerySet

from accounts.models import User
from core.exceptions import InvalidInput, NotFound
from video.models import VideoFrame, VideoJob


def video_job_list(*, user: User, status: str | None = None) -> QuerySet[VideoJob]:
    """The user's jobs, newest first, optionally of one status."""
    jobs = VideoJob.objects.filter(user=user).prefetch_related(
        Prefetch("frames", queryset=VideoFrame.objects.order_by("index"))
    )
    if status:
        if status not in VideoJob.Status.values:
            choices = ", ".join(VideoJob.Status.values)
            raise InvalidInput(f"status must be one of: {choices}.", errors={"status": [f"One of: {choices}."]})
        jobs = jobs.filter(status=status)
    return jobs.order_by("-created_at", "-id")


def video_job_get(*, user: User, job_id: uuid.UUID | str, with_frames: bool = False) -> VideoJob:
    jobs = VideoJob.objects.filter(user=user, id=job_id).select_related("reservation")
    if with_frames:
        jobs = jobs.prefetch_related(Prefetch("frames", queryset=VideoFrame.objects.order_by("index")))
    job = jobs.first()
    if job is None:
        raise NotFound("Video job not found.")
    return job


def video_frame_get(*, user: User, job_id: uuid.UUID | str, index: int) -> VideoFrame:
    frame = VideoFrame.objects.filter(job__user=user, job__id=job_id, index=index).select_related("job").first()
    if frame is None:
        # Same answer for a missing job and an index out of range, and for another user's job.
        if not VideoJob.objects.filter(user=user, id=job_id).exists():
            raise NotFound("Video job not found.")
        count = VideoFrame.objects.filter(job__id=job_id).count()
        has = f"{count} frames (indexes 0 to {count - 1})" if count else "no frames"
        raise NotFound(f"Frame {index} does not exist; this job has {has}.", code="frame_not_found")
    return frame
