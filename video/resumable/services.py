"""Resumable uploads: create, append a chunk, complete into a video job, terminate, expire.

Bytes are appended to one file per upload (`video.storage.resumable_upload`), read from the
request 64 KB at a time, so memory stays bounded whatever the chunk size. A completed upload goes
through the multipart upload's own validation (`video.uploads.validate_video`) and job creation
(`video.services.video_job_create`): size, duration, content, virus scan, quota, idempotency and
queueing are the same code.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import IO

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from core.api.casing import to_snake
from core.api.envelope import counted
from core.exceptions import Conflict, InvalidInput, InvalidUpload, NotFound, QuotaExceeded, UploadTooLarge
from core.timestamps import iso_z
from quotas.pricing import units_for_video
from quotas.selectors import quota_summary
from quotas.services import quota_account_ensure
from video import storage, uploads
from video.models import VideoJob
from video.resumable.models import ResumableUpload
from video.resumable.protocol import ChunkTooLarge, OffsetMismatch
from video.serializers import VideoUploadSerializer
from video.services.upload import UploadOptions, video_job_create, video_job_find_by_idempotency_key

logger = logging.getLogger(__name__)

READ_BYTES = 64 * 1024
OPTION_KEYS = ("extract_frames", "frame_interval", "max_frames", "thumbnail_timestamp")


class _AssembledUpload(TemporaryUploadedFile):
    """The finished upload as the multipart path's temporary file: validated by probing its
    path, and moved (not copied) into place by a local storage."""

    def __init__(self, path: str, *, name: str, content_type: str, size: int) -> None:
        # Skips TemporaryUploadedFile.__init__, which would create a new empty temporary file.
        UploadedFile.__init__(self, open(path, "rb"), name, content_type, size, None)  # noqa: SIM115


def _expiry() -> datetime:
    return timezone.now() + timedelta(seconds=settings.VIDEO_RESUMABLE_EXPIRY_SECONDS)


def _options(metadata: dict[str, str]) -> dict[str, object]:
    """The multipart upload's option fields, sent as Upload-Metadata keys (camelCase or snake)."""
    fields = {to_snake(key): value for key, value in metadata.items() if to_snake(key) in OPTION_KEYS}
    serializer = VideoUploadSerializer(data=fields)
    if not serializer.is_valid():
        errors = {key: [str(message) for message in messages] for key, messages in serializer.errors.items()}
        field, messages = next(iter(errors.items()))
        raise InvalidInput(f"Upload-Metadata {field}: {messages[0]}", errors=errors)
    return dict(serializer.validated_data)


def _quota_check(*, user: User) -> None:
    """Refuse at creation what the job could not be charged at the end (the charge itself is
    made by the job creation, once, when the last byte is in), with the quota refusal's body."""
    quota_account_ensure(user=user)
    summary = quota_summary(user=user)
    units = units_for_video()
    if summary["remaining"] >= units:
        return
    reset = summary["reset_date"]
    raise QuotaExceeded(
        f"Quota exceeded: this request needs {counted(units, 'unit')} and {summary['remaining']} of your "
        f"{summary['limit']} remain until {reset:%Y-%m-%d}.",
        extra={
            "units_needed": units,
            "remaining": summary["remaining"],
            "used": summary["used"],
            "limit": summary["limit"],
            "reset_date": iso_z(reset),
        },
        headers={"Retry-After": str(max(1, int((reset - timezone.now()).total_seconds())))},
    )


def resumable_upload_create(
    *, user: User, length: int, metadata: dict[str, str], idempotency_key: str = ""
) -> tuple[ResumableUpload, bool]:
    """Declare an upload of `length` bytes; returns it and whether it was created. A retried
    creation with the same Idempotency-Key returns the first upload (or, when that key already
    made a job, an upload that is already complete and names the job)."""
    if idempotency_key:
        existing = ResumableUpload.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    limit = settings.VIDEO_MAX_UPLOAD_BYTES
    if length > limit:
        raise UploadTooLarge(uploads.too_large_message(), errors={"Upload-Length": [uploads.too_large_message()]})
    if length == 0:
        raise InvalidUpload("The video file is empty.", code="invalid_video", errors={"Upload-Length": ["Empty file."]})
    filename = metadata.get("filename", "").strip()
    if not filename:
        message = "Upload-Metadata must name the file: `filename <base64 name>`."
        raise InvalidInput(message, errors={"filename": [message]})
    options = _options(metadata)
    job = video_job_find_by_idempotency_key(user=user, key=idempotency_key)
    if job is None:
        _quota_check(user=user)
    upload = ResumableUpload(
        user=user,
        length=length,
        offset=length if job is not None else 0,
        filename=filename[:255],
        filetype=metadata.get("filetype", "")[:100],
        options=options,
        idempotency_key=idempotency_key,
        job=job,
        expires_at=_expiry(),
    )
    upload.path = "" if job is not None else storage.resumable_upload(user_id=user.pk, upload_id=upload.id)
    try:
        with transaction.atomic():
            upload.save()
    except IntegrityError:
        raced = ResumableUpload.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if raced is None:
            raise
        return raced, False
    if upload.path:
        open(storage.appendable_path(upload.path), "wb").close()
    return upload, job is None


@contextmanager
def _locked_file(upload: ResumableUpload) -> Iterator[IO[bytes] | None]:
    """The upload's file, held exclusively: a second PATCH of the same upload at the same time
    is refused with 409 rather than interleaving its bytes. None when the file is gone (the upload
    was completed, terminated or expired by another request meanwhile)."""
    try:
        handle: IO[bytes] = open(storage.appendable_path(upload.path), "r+b")  # noqa: SIM115
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("Another request is appending to this upload.", code="upload_locked") from None
        yield handle
    finally:
        handle.close()


def _check_chunk(upload: ResumableUpload, *, offset: int, content_length: int) -> None:
    if offset != upload.offset:
        raise OffsetMismatch(f"Upload-Offset is {offset}, but the upload is at {upload.offset}.")
    if offset + content_length > upload.length:
        raise ChunkTooLarge(
            f"The chunk ({content_length} bytes at {offset}) goes past Upload-Length ({upload.length} bytes)."
        )


def _reload(upload: ResumableUpload) -> None:
    try:
        upload.refresh_from_db(fields=["offset", "job", "path"])
    except ResumableUpload.DoesNotExist:
        raise NotFound("Upload not found.", code="upload_not_found") from None


def _write(handle: IO[bytes], upload: ResumableUpload, *, read: Callable[[int], bytes], content_length: int) -> None:
    # Bytes a killed server wrote after its last recorded offset are not trusted: cut them.
    handle.truncate(upload.offset)
    handle.seek(upload.offset)
    written = 0
    try:
        while written < content_length:
            try:
                data = read(min(READ_BYTES, content_length - written))
            except OSError:  # the client went away mid-chunk: keep what arrived
                break
            if not data:
                break
            handle.write(data)
            written += len(data)
    finally:
        handle.flush()
        upload.offset += written
        ResumableUpload.objects.filter(pk=upload.pk).update(
            offset=upload.offset, expires_at=_expiry(), updated_at=timezone.now()
        )


def resumable_upload_append(
    *, upload: ResumableUpload, offset: int, read: Callable[[int], bytes], content_length: int
) -> ResumableUpload:
    """Append a chunk read with `read` at `offset` (which must be where the upload is), and turn
    the upload into a video job once its last byte is in (an empty PATCH at the end retries that).
    The bytes that arrived are kept even if the connection breaks mid-chunk: the client resumes
    from there."""
    _check_chunk(upload, offset=offset, content_length=content_length)
    if upload.job_id is not None:
        return upload
    with _locked_file(upload) as handle:
        # Another request may have moved the upload on while this one waited for its body.
        _reload(upload)
        _check_chunk(upload, offset=offset, content_length=content_length)
        if upload.job_id is not None:
            return upload
        if handle is None:
            raise NotFound("The upload's bytes are gone; start a new upload.", code="upload_not_found")
        if not upload.is_complete:
            _write(handle, upload, read=read, content_length=content_length)
        if upload.is_complete:
            resumable_upload_complete(upload=upload)
    return upload


def resumable_upload_complete(*, upload: ResumableUpload) -> VideoJob:
    """Turn a complete upload into a video job through the multipart upload's validation and job
    creation. A refused video (not a video, too long, infected) is removed with its bytes; a
    refusal that may pass later (quota, queue) keeps them, and an empty PATCH at the final offset
    tries again."""
    if upload.job is not None:
        return upload.job
    path = storage.appendable_path(upload.path)
    assembled = _AssembledUpload(path, name=upload.filename, content_type=upload.filetype, size=upload.length)
    try:
        info = uploads.validate_video(assembled)
        job, _created = video_job_create(
            user=upload.user,
            upload=assembled,
            info=info,
            options=UploadOptions(**{key: upload.options[key] for key in OPTION_KEYS if key in upload.options}),
            idempotency_key=upload.idempotency_key,
        )
    except InvalidUpload:
        resumable_upload_terminate(upload=upload)
        raise
    finally:
        assembled.close()
    storage.delete_appendable(upload.path)  # gone already where the storage moved the file
    ResumableUpload.objects.filter(pk=upload.pk).update(job=job, path="", updated_at=timezone.now())
    upload.job, upload.path = job, ""
    return job


def resumable_upload_terminate(*, upload: ResumableUpload) -> None:
    """The termination extension: the upload and its bytes go (a job it became stays)."""
    if upload.path:
        storage.delete_appendable(upload.path)
    ResumableUpload.objects.filter(pk=upload.pk).delete()


def resumable_uploads_expire(*, now: datetime | None = None) -> int:
    """Remove expired uploads and their bytes; returns how many."""
    expired = list(ResumableUpload.objects.filter(expires_at__lte=now or timezone.now()))
    for upload in expired:
        try:
            resumable_upload_terminate(upload=upload)
        except OSError:
            logger.warning("Could not remove the expired upload %s", upload.pk, exc_info=True)
    return len(expired)
