"""Reads of resumable uploads, scoped to the requesting user (another user's upload is a 404)."""

from __future__ import annotations

import uuid

from django.utils import timezone

from accounts.models import User
from core.exceptions import NotFound
from video.resumable.models import ResumableUpload
from video.resumable.protocol import UploadGone


def resumable_upload_get(*, user: User, upload_id: uuid.UUID | str) -> ResumableUpload:
    """The user's upload; 404 for none (or another user's), 410 once it has expired."""
    upload = ResumableUpload.objects.filter(user=user, id=upload_id).select_related("job").first()
    if upload is None:
        raise NotFound("Upload not found.", code="upload_not_found")
    if upload.expires_at <= timezone.now():
        raise UploadGone()
    return upload
