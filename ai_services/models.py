from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from core.jobs.models import BillableJob
from quotas.modalities import job_type_choices, job_type_members


class Conversation(models.Model):
    """A chat thread: its messages are the memory sent (trimmed) with every new message."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=100, blank=True, help_text="Model of the latest answer.")
    system_prompt = models.TextField(blank=True)
    message_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["user", "-updated_at"])]

    def __str__(self) -> str:
        return self.title or str(self.id)


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField()
    tokens = models.PositiveIntegerField(default=0, help_text="Tokens this message takes in a request (cl100k).")
    # Order within the conversation: timestamps can tie, a question must still precede its answer.
    position = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["conversation", "position"], name="ai_message_position_unique")]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"


class AIJob(BillableJob):
    """One call to an AI provider, successful or not, with what it cost: a billable job
    (`core.jobs`). Calls made in a request are created running and finished there; queued
    transcriptions wait as `pending` until a worker claims them.

    `input` and `output` are summaries (lengths, names, durations, the text of a transcript):
    never raw audio or image bytes, never credentials.
    """

    class Type(models.TextChoices):
        """One per AI modality (`quotas.modalities`), whose value is also its quota service."""

        # The members are made by the loop (Enum's documented `_ignore_` idiom for computed members).
        _ignore_ = ["member", "choice", "members"]
        members = vars()
        for member, choice in job_type_members():
            members[member] = choice

    class Status(models.TextChoices):
        """The core's states with the values AI jobs have always stored (and the API shows):
        waiting is `pending`; AI jobs are never cancelled."""

        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ai_jobs")
    type = models.CharField(max_length=16, choices=job_type_choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=100, blank=True)
    input = models.JSONField(default=dict, blank=True)
    output = models.JSONField(default=dict, blank=True)
    tokens_used = models.PositiveIntegerField(default=0)
    units_charged = models.PositiveIntegerField(default=0)
    processing_time_ms = models.PositiveIntegerField(null=True, blank=True)
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    reservation = models.ForeignKey(
        "quotas.Reservation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Quota reservation paying for this job.",
    )
    # Only for queued transcriptions: the upload waiting for the worker, deleted once processed.
    input_file = models.FileField(upload_to="ai/pending/", blank=True, max_length=255)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times a worker has claimed this queued job.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["user", "type", "status"]),
            # The user's running calls, counted before every call made in a request
            # (ai_services.concurrency): without it the count reads the user's whole history.
            models.Index(fields=["user", "status", "started_at"]),
        ]
        verbose_name = "AI job"

    def __str__(self) -> str:
        return f"{self.type} {self.status} ({self.id})"
