"""Video jobs, their frames and the derived assets (storyboard, animated preview).

Files live in the default storage under per-user, per-job folders; rows hold storage names,
never absolute paths, so the same data works on a local disk and on S3.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from core.jobs.models import BillableJob


class VideoJob(BillableJob):
    """An uploaded video and its processing: a billable job (`core.jobs`) whose extra first state,
    `uploaded`, is waiting like `queued` (stored, its task not yet confirmed sent)."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    # States a worker may still pick the job up from (or is working on).
    ACTIVE_STATUSES = (Status.UPLOADED, Status.QUEUED, Status.PROCESSING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="video_jobs")
    filename = models.CharField(max_length=255, help_text="The name the file was uploaded with.")
    video_path = models.CharField(max_length=500, help_text="Storage name of the uploaded video.")
    size_bytes = models.BigIntegerField(default=0)
    container = models.CharField(max_length=16, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED, db_index=True)

    # Options as the client sent them (thumbnail_timestamp already clamped into the video).
    extract_frames = models.BooleanField(default=True)
    frame_interval = models.FloatField(default=1.0)
    max_frames = models.PositiveSmallIntegerField(default=100)
    thumbnail_timestamp = models.FloatField(default=1.0)

    # A `video.services.metadata.VideoMetadata` (snake_case); the API renders it camelCase.
    metadata = models.JSONField(default=dict, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds, from the upload probe.")
    thumbnail_path = models.CharField(max_length=500, blank=True)

    idempotency_key = models.CharField(max_length=255, blank=True)
    reservation = models.ForeignKey(
        "quotas.Reservation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Captions (upload option `captions`, on by default for a video with audio): billed apart, in
    # speech-to-text units, reserved with the job and settled or refunded together with it.
    captions = models.BooleanField(default=False, help_text="Whether the worker transcribes the audio.")
    captions_reservation = models.ForeignKey(
        "quotas.Reservation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="video_job_idempotency_key_per_user",
            ),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="video_job_progress_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class VideoFrame(models.Model):
    job = models.ForeignKey(VideoJob, on_delete=models.CASCADE, related_name="frames")
    index = models.PositiveIntegerField()
    timestamp = models.FloatField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    path = models.CharField(max_length=500)
    size_bytes = models.PositiveIntegerField()

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="video_frame_unique_index")]

    def __str__(self) -> str:
        return f"frame {self.index} @ {self.timestamp:.3f}s"


class VideoAsset(models.Model):
    """A derived file made by the worker on first request (storyboard sprite, GIF preview)."""

    class Kind(models.TextChoices):
        STORYBOARD = "storyboard", "Storyboard"
        PREVIEW_GIF = "preview_gif", "Preview GIF"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(VideoJob, on_delete=models.CASCADE, related_name="assets")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    path = models.CharField(max_length=500, blank=True)
    size_bytes = models.PositiveIntegerField(default=0)
    data = models.JSONField(default=dict, blank=True, help_text="The storyboard's tile map.")
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "kind"], name="video_asset_one_per_kind")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.job_id} ({self.status})"


class VideoCaptionCue(models.Model):
    """One caption cue: a segment of the transcribed audio track, times in seconds of the video."""

    job = models.ForeignKey(VideoJob, on_delete=models.CASCADE, related_name="caption_cues")
    index = models.PositiveIntegerField()
    start = models.FloatField()
    end = models.FloatField()
    text = models.TextField()

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="video_caption_cue_unique_index")]

    def __str__(self) -> str:
        return f"cue {self.index} {self.start:.2f}-{self.end:.2f}s"


# Resumable uploads live in their own package; imported here so the app registers the model.
from video.resumable.models import ResumableUpload  # noqa: E402

__all__ = ["ResumableUpload", "VideoAsset", "VideoCaptionCue", "VideoFrame", "VideoJob"]
