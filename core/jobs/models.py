"""The columns every billable job has: its lifecycle status, the claim of the worker running it,
its progress and its outcome. Apps subclass `BillableJob` and add what their work needs."""

from __future__ import annotations

from django.db import models


class JobStatus(models.TextChoices):
    """The lifecycle's states. The values are the ones video jobs have always stored (and the API
    shows), so the names say the role and the values stay what clients read."""

    QUEUED = "queued", "Queued"
    RUNNING = "processing", "Processing"
    SUCCEEDED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# A finished job never changes state again (only an operator's requeue starts it afresh).
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class BillableJob(models.Model):
    """Abstract: a unit of work a worker claims with a token, reports progress on while it holds
    the claim, and finishes by settling (success) or refunding (failure, cancel) what was reserved.

    Every write of the lifecycle is a conditional UPDATE (on the status and the claim token), never
    a full-row save, so concurrent workers, reapers and cancels can't overwrite one another."""

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    # Machine-readable reason next to `error` (which is for people): interrupted, media_error, ...
    error_code = models.CharField(max_length=64, blank=True)

    # Worker bookkeeping: which delivery owns the job, when it last showed signs of life, and
    # how many times processing was started (bounded, so a poison job cannot loop forever).
    task_id = models.CharField(max_length=64, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When the current (or last) claim started.
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
