"""Accepting a validated upload: store the file, reserve its quota, create the job and hand it to
a worker, or refuse it whole when the queue is unreachable."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from accounts.models import User
from core.exceptions import QueueUnavailable
from quotas.modalities import TRANSCRIBE, Service
from quotas.pricing import units_for_speech, units_for_video
from quotas.services import quota_reserve, reservation_attach
from video import media, storage
from video.jobs import video_job_enqueue, video_job_record
from video.models import VideoJob
from video.services.lifecycle import video_job_fail
from video.services.metadata import clamp_timestamp, container_name, metadata_from_info, stored_filename


@dataclass(frozen=True)
class UploadOptions:
    extract_frames: bool = True
    frame_interval: float = 1.0
    max_frames: int = 100
    thumbnail_timestamp: float = 1.0
    # None: captions when the video has an audio track; False: none; True: when it has audio.
    captions: bool | None = None


def video_job_find_by_idempotency_key(*, user: User, key: str) -> VideoJob | None:
    if not key:
        return None
    return VideoJob.objects.filter(user=user, idempotency_key=key).first()


def video_job_create(
    *, user: User, upload: UploadedFile, info: media.VideoInfo, options: UploadOptions, idempotency_key: str = ""
) -> tuple[VideoJob, bool]:
    """Store a validated upload, reserve its quota and queue its processing.

    Returns the job and whether it was created; a retried upload with the same idempotency key
    returns the first job instead (also when the two requests race)."""
    job_id = uuid.uuid4()
    container = container_name(info, upload.name or "")
    name = storage.JobPaths(user_id=user.pk, job_id=job_id).upload(stored_filename(upload.name or "video", container))
    thumbnail_timestamp = clamp_timestamp(options.thumbnail_timestamp, duration=info.duration, fps=info.fps)
    stored = ""
    try:
        with transaction.atomic():
            reservation = quota_reserve(
                user=user, service=Service.VIDEO, units=units_for_video(), job_type="video", job_id=str(job_id)
            )
            captions = info.has_audio and options.captions is not False
            # The captions' price is known now, from the probed duration: it is held with the job's.
            captions_reservation = (
                quota_reserve(
                    user=user,
                    service=TRANSCRIBE.service,
                    units=units_for_speech(audio_seconds=info.duration),
                    job_type="video",
                    job_id=str(job_id),
                )
                if captions
                else None
            )
            # Local storages move the temporary upload into place; others stream it up in chunks.
            stored = storage.storage().save(name, upload)
            job = VideoJob.objects.create(
                id=job_id,
                user=user,
                filename=(upload.name or "video")[:255],
                video_path=stored,
                size_bytes=info.size_bytes,
                container=container,
                extract_frames=options.extract_frames,
                frame_interval=options.frame_interval,
                max_frames=options.max_frames,
                thumbnail_timestamp=thumbnail_timestamp,
                metadata=metadata_from_info(info, container=container),
                duration=info.duration,
                idempotency_key=idempotency_key,
                reservation=reservation,
                captions=captions,
                captions_reservation=captions_reservation,
                task_id=uuid.uuid4().hex,
            )
            reservation_attach(reservation=reservation, job_type="video", job_id=str(job.id))
            transaction.on_commit(lambda: _video_job_send_or_refuse(job_id=job.id))
    except IntegrityError:
        storage.delete_quietly(stored)
        existing = video_job_find_by_idempotency_key(user=user, key=idempotency_key)
        if existing is None:
            raise
        return existing, False
    except BaseException:
        storage.delete_quietly(stored)
        raise
    video_job_record(VideoJob.Status.UPLOADED)
    return job, True


def _video_job_send_or_refuse(*, job_id: uuid.UUID) -> None:
    """Queue a new upload, or refuse it: a job the broker never received is not reported as
    queued. The row goes (so a retry with the same Idempotency-Key starts afresh), its
    reservation is refunded, and the caller deletes the stored file."""
    if video_job_enqueue(job_id=job_id):
        return
    with transaction.atomic():
        video_job_fail(job_id=job_id, error="The job queue was unreachable.", code="queue_unavailable")
        VideoJob.objects.filter(id=job_id).delete()
    raise QueueUnavailable("The job queue is unreachable: the video was not kept or charged. Try again shortly.")
