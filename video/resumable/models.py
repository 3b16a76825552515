"""A resumable upload in progress (or just finished): what was declared, how much has arrived,
where its bytes are, and the video job it became."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ResumableUpload(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="resumable_uploads")
    length = models.BigIntegerField(help_text="Upload-Length: the size of the whole video in bytes.")
    offset = models.BigIntegerField(default=0, help_text="Bytes received and stored so far.")
    filename = models.CharField(max_length=255)
    filetype = models.CharField(max_length=100, blank=True)
    # The multipart upload's options (video.services.UploadOptions fields), validated at creation.
    options = models.JSONField(default=dict, blank=True)
    path = models.CharField(max_length=500, blank=True, help_text="Storage name of the partial file.")
    idempotency_key = models.CharField(max_length=255, blank=True)
    job = models.ForeignKey("video.VideoJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "video"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="resumable_upload_idempotency_key_per_user",
            ),
            models.CheckConstraint(
                condition=models.Q(offset__gte=0) & models.Q(offset__lte=models.F("length")),
                name="resumable_upload_offset_within_length",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.offset}/{self.length})"

    @property
    def is_complete(self) -> bool:
        return self.offset >= self.length
