"""The storage sweep: files no job references, and jobs whose uploaded video has vanished."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from video import storage
from video.models import VideoAsset, VideoFrame, VideoJob
from video.resumable.models import ResumableUpload
from video.resumable.services import resumable_uploads_expire
from video.services.lifecycle import video_job_cancel, video_job_delete


@dataclass
class CleanupReport:
    orphan_files: list[str] = field(default_factory=list)
    vanished_jobs: list[str] = field(default_factory=list)
    expired_uploads: int = 0
    dry_run: bool = False


def _referenced_names() -> set[str]:
    names: set[str] = set()
    for video_path, thumbnail_path in VideoJob.objects.values_list("video_path", "thumbnail_path"):
        names.update(name for name in (video_path, thumbnail_path) if name)
    names.update(VideoFrame.objects.values_list("path", flat=True))
    names.update(VideoAsset.objects.exclude(path="").values_list("path", flat=True))
    return names


def video_files_cleanup(*, dry_run: bool = False, grace_seconds: int | None = None) -> CleanupReport:
    """Remove stored files no job references, and jobs whose uploaded video has vanished.

    Files younger than the grace period are kept (an upload stores its file a moment before its
    row commits), as is everything of a job that is being processed right now (its frames have
    no rows until the run commits). Thumbnails cached on demand belong to their job's folder."""
    grace = settings.VIDEO_CLEANUP_GRACE_SECONDS if grace_seconds is None else grace_seconds
    cutoff = timezone.now() - timedelta(seconds=grace)
    report = CleanupReport(dry_run=dry_run)
    files = storage.storage()

    for job in VideoJob.objects.exclude(status=VideoJob.Status.PROCESSING).select_related("reservation"):
        if job.video_path and not files.exists(job.video_path) and job.created_at < cutoff:
            report.vanished_jobs.append(str(job.id))
            if not dry_run:
                if job.is_active:
                    video_job_cancel(job=job)
                video_job_delete(job=job)

    jobs = {str(job_id): status for job_id, status in VideoJob.objects.values_list("id", "status")}
    referenced = _referenced_names()
    for root in storage.ROOTS:
        for name in list(storage.walk(root)):
            status = jobs.get(storage.job_id_of(name))
            if status == VideoJob.Status.PROCESSING:
                continue
            if status is not None and storage.is_cached_thumbnail(name):
                continue
            if name in referenced:
                continue
            try:
                if files.get_modified_time(name) >= cutoff:
                    continue
            except (FileNotFoundError, NotImplementedError):
                continue
            report.orphan_files.append(name)
            if not dry_run:
                storage.delete_quietly(name)
    # Resumable uploads past Upload-Expires, with their bytes (the beat task does this more often).
    if dry_run:
        report.expired_uploads = ResumableUpload.objects.filter(expires_at__lte=timezone.now()).count()
    else:
        report.expired_uploads = resumable_uploads_expire()
        storage.prune_empty_dirs()
    return report
