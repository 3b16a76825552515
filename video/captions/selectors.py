"""Reading a job's caption cues, scoped to the requesting user like every video read."""

from __future__ import annotations

import uuid

from accounts.models import User
from core.exceptions import NotFound
from video.models import VideoCaptionCue, VideoJob


def video_caption_cues(*, user: User, job_id: uuid.UUID | str) -> list[VideoCaptionCue]:
    """The job's cues in order; 404 for another user's job and for a job without captions (none
    asked for, no audio track, not transcribed yet, or nothing was said)."""
    if not VideoJob.objects.filter(user=user, id=job_id).exists():
        raise NotFound("Video job not found.")
    cues = list(VideoCaptionCue.objects.filter(job__user=user, job__id=job_id).order_by("index"))
    if not cues:
        raise NotFound("This video has no captions.", code="captions_not_found")
    return cues
