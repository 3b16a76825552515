"""The video pipeline: upload, processing by a worker, derived assets, deletion and clean-up.

Files go through the default storage under per-user, per-job folders:

    videos/<user>/<job>/<name>                      the upload
    frames/<user>/<job>/<run>/frame_00000.jpg        frames of one processing run
    thumbnails/<user>/<job>/thumbnail-<run>.jpg      the thumbnail of that run
    thumbnails/<user>/<job>/cache/...                thumbnails made on demand
    thumbnails/<user>/<job>/storyboard.jpg, preview.gif

Every processing run writes into its own `<run>` folder (the claim token), so a worker that was
presumed dead and comes back can never overwrite or delete the files of the run that replaced
it; the previous run's files are removed once the new run's rows are committed.

The media layer (`video.media`) works on local paths. With a storage that has local paths
(FileSystemStorage) it reads the upload in place and writes straight into the storage folders;
with any other storage (S3) the video is downloaded to a temporary file first and the results
are uploaded afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import get_valid_filename

from core.exceptions import ApplicationError, Conflict, InvalidInput, InvalidUpload, QueueUnavailable
from core.metrics import record_video_job
from quotas.pricing import Service, units_for_video
from quotas.services import quota_reserve, reservation_attach, reservation_refund, reservation_settle
from video import media
from video.models import VideoAsset, VideoFrame, VideoJob

logger = logging.getLogger(__name__)

THUMBNAIL_MAX_SIDE = 320
FRAME_JPEG_QUALITY = 85
ROOTS = ("videos", "frames", "thumbnails")
ASSET_FILENAMES = {VideoAsset.Kind.STORYBOARD: "storyboard.jpg", VideoAsset.Kind.PREVIEW_GIF: "preview.gif"}
# Seconds a client is told to wait before asking again for an asset the worker is making.
ASSET_RETRY_AFTER = 2
PREVIEW_GIF_SECONDS = 3.0
PREVIEW_GIF_FPS = 8
PREVIEW_GIF_WIDTH = 240

Status = VideoJob.Status


class JobCancelled(Exception):
    """The job was cancelled, deleted or taken over while this worker was processing it."""


class AssetFailed(Conflict):
    code = "asset_failed"


class VideoNotReady(Conflict):
    code = "video_not_ready"


# --- Storage helpers -----------------------------------------------------------------------------


def _storage() -> Storage:
    return default_storage


def _local_path(name: str) -> str | None:
    """The file's path on this machine, or None for storages without local files (S3, memory).

    Only FileSystemStorage (and subclasses) count: other backends may implement `path()` for
    names that are not files on this disk."""
    storage = _storage()
    if not isinstance(storage, FileSystemStorage):  # a LazyObject reports its target's class
        return None
    try:
        return storage.path(name)
    except NotImplementedError:
        return None


def job_prefixes(*, user_id: int, job_id: uuid.UUID | str) -> list[str]:
    return [f"{root}/{user_id}/{job_id}" for root in ROOTS]


def _walk(prefix: str) -> Iterator[str]:
    """Every file name under `prefix` (recursively); nothing if the folder does not exist."""
    storage = _storage()
    try:
        dirs, files = storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        yield f"{prefix}/{name}"
    for sub in dirs:
        yield from _walk(f"{prefix}/{sub}")


def storage_delete_tree(prefix: str) -> int:
    """Delete every file under `prefix`; returns how many. Empty local folders go too."""
    local = _local_path(prefix)
    if local is not None:
        count = sum(len(files) for _root, _dirs, files in os.walk(local))
        shutil.rmtree(local, ignore_errors=True)
        _prune_empty_parents(Path(local))
        return count
    count = 0
    for name in list(_walk(prefix)):
        _storage().delete(name)
        count += 1
    return count


def _prune_empty_parents(path: Path) -> None:
    """Remove now-empty parent folders up to (not including) the storage root."""
    root = Path(_storage().path("")).resolve()
    parent = path.parent.resolve()
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def storage_delete_quietly(name: str) -> None:
    if not name:
        return
    try:
        _storage().delete(name)
    except OSError:
        logger.warning("Could not delete %s from storage", name, exc_info=True)


@contextlib.contextmanager
def local_video(name: str) -> Iterator[str]:
    """A local path to a stored video: in place for local storages, else a temporary download."""
    local = _local_path(name)
    if local is not None:
        if not os.path.exists(local):
            raise media.MediaError("The uploaded video is no longer in storage.")
        yield local
        return
    suffix = Path(name).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix, prefix="video-") as tmp:
        try:
            source = _storage().open(name, "rb")
        except FileNotFoundError:
            raise media.MediaError("The uploaded video is no longer in storage.") from None
        with source:
            for chunk in iter(lambda: source.read(1024 * 1024), b""):
                tmp.write(chunk)
        tmp.flush()
        yield tmp.name


@contextlib.contextmanager
def _output_dir(prefix: str) -> Iterator[tuple[str, bool]]:
    """A local folder for results that will live under `prefix`: the storage folder itself when
    the storage is local (no copy), else a temporary folder whose files `_publish` uploads."""
    local = _local_path(prefix)
    if local is not None:
        os.makedirs(local, exist_ok=True)
        yield local, True
        return
    with tempfile.TemporaryDirectory(prefix="video-out-") as tmp:
        yield tmp, False


def _publish(local_file: str, name: str, *, in_place: bool) -> str:
    """Make a result written at `local_file` available in storage as `name`."""
    if in_place:
        return name
    storage = _storage()
    if storage.exists(name):
        storage.delete(name)
    with open(local_file, "rb") as handle:
        return storage.save(name, File(handle, name=os.path.basename(name)))


def _storage_name_for(local_file: str, *, prefix: str, local_dir: str) -> str:
    relative = os.path.relpath(local_file, local_dir).replace(os.sep, "/")
    return f"{prefix}/{relative}"


# --- Upload --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadOptions:
    extract_frames: bool = True
    frame_interval: float = 1.0
    max_frames: int = 100
    thumbnail_timestamp: float = 1.0


# Demuxer names (media.ALLOWED_CONTAINERS) -> the format name clients see. One demuxer reads
# MP4 and MOV, another Matroska and WebM; the file name and the codec tell them apart.
WEBM_CODECS = frozenset({"vp8", "vp9", "av1"})


def container_name(info: media.VideoInfo, filename: str = "") -> str:
    extension = Path(filename).suffix.lower()
    if info.container.startswith("mov,mp4"):
        return "mov" if extension in {".mov", ".qt"} else "mp4"
    if info.container == "asf":
        return "wmv"
    if info.container.startswith("matroska"):
        return "webm" if info.codec in WEBM_CODECS and extension != ".mkv" else "mkv"
    return info.container.split(",")[0]


CONTAINER_EXTENSIONS = {"mp4": ".mp4", "mov": ".mov", "avi": ".avi", "wmv": ".wmv", "webm": ".webm", "mkv": ".mkv"}


def metadata_from_info(info: media.VideoInfo, *, container: str = "") -> dict[str, Any]:
    """The job's `metadata`, with the camelCase keys the API sends unchanged. Width and height are
    the display size (rotation applied)."""
    return {
        "duration": round(float(info.duration), 3),
        "width": info.width,
        "height": info.height,
        "fps": round(float(info.fps), 3) if info.fps else 0.0,
        "codec": info.codec,
        "bitrate": info.bitrate,
        "rotation": info.rotation,
        "hasAudio": bool(info.has_audio),
        "size": info.size_bytes,
        "container": container or container_name(info),
    }


def clamp_timestamp(timestamp: float, *, duration: float, fps: float | None) -> float:
    """Keep a requested time inside the video: the last frame starts one frame before the end."""
    if duration <= 0:
        return 0.0
    frame = 1.0 / fps if fps and fps > 0 else 0.1
    latest = max(duration - frame, 0.0)
    return round(min(max(timestamp, 0.0), latest), 3)


def _stored_filename(original: str, container: str) -> str:
    """A safe name for the stored upload: the client's name cleaned, with the extension of what
    the content really is."""
    try:
        stem = get_valid_filename(Path(original).stem)[:80]
    except Exception:  # get_valid_filename refuses names that clean to nothing
        stem = ""
    return f"{stem or 'video'}{CONTAINER_EXTENSIONS.get(container, '.bin')}"


def video_job_find_by_idempotency_key(*, user, key: str) -> VideoJob | None:
    if not key:
        return None
    return VideoJob.objects.filter(user=user, idempotency_key=key).first()


def video_job_create(
    *, user, upload: UploadedFile, info: media.VideoInfo, options: UploadOptions, idempotency_key: str = ""
) -> tuple[VideoJob, bool]:
    """Store a validated upload, reserve its quota and queue its processing.

    Returns the job and whether it was created; a retried upload with the same idempotency key
    returns the first job instead (also when the two requests race)."""
    job_id = uuid.uuid4()
    container = container_name(info, upload.name or "")
    name = f"videos/{user.pk}/{job_id}/{_stored_filename(upload.name or 'video', container)}"
    thumbnail_timestamp = clamp_timestamp(options.thumbnail_timestamp, duration=info.duration, fps=info.fps)
    stored = ""
    try:
        with transaction.atomic():
            reservation = quota_reserve(
                user=user, service=Service.VIDEO, units=units_for_video(), job_type="video", job_id=str(job_id)
            )
            # Local storages move the temporary upload into place; others stream it up in chunks.
            stored = _storage().save(name, upload)
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
                task_id=uuid.uuid4().hex,
            )
            reservation_attach(reservation=reservation, job_type="video", job_id=str(job.id))
            transaction.on_commit(lambda: _video_job_send_or_refuse(job_id=job.id))
    except IntegrityError:
        storage_delete_quietly(stored)
        existing = video_job_find_by_idempotency_key(user=user, key=idempotency_key)
        if existing is None:
            raise
        return existing, False
    except BaseException:
        storage_delete_quietly(stored)
        raise
    _record_metric(status="uploaded")
    return job, True


def video_job_enqueue(*, job_id: uuid.UUID) -> bool:
    """Hand the job to a worker; False if the broker could not be reached (the job stays as it
    was, and the reaper sends it again later)."""
    from video.tasks import process_video_job

    job = VideoJob.objects.filter(id=job_id).only("id", "task_id", "status").first()
    if job is None or job.status not in (Status.UPLOADED, Status.QUEUED):
        return True
    task_id = job.task_id or uuid.uuid4().hex
    try:
        process_video_job.apply_async(args=[str(job_id)], task_id=task_id)
    except Exception as exc:  # any broker failure: the caller decides between refusing and retrying
        logger.warning("Could not queue video job %s: %s", job_id, exc)
        return False
    VideoJob.objects.filter(id=job_id, status=Status.UPLOADED).update(status=Status.QUEUED, task_id=task_id)
    return True


def _video_job_send_or_refuse(*, job_id: uuid.UUID) -> None:
    """Queue a new upload, or refuse it: a job the broker never received is not reported as
    queued. The row goes (so a retry with the same Idempotency-Key starts afresh), its
    reservation is refunded, and the caller deletes the stored file."""
    if video_job_enqueue(job_id=job_id):
        return
    with transaction.atomic():
        video_job_fail(job_id=job_id, error="The job queue was unreachable.")
        VideoJob.objects.filter(id=job_id).delete()
    raise QueueUnavailable("The job queue is unreachable: the video was not kept or charged. Try again shortly.")


# --- Processing ----------------------------------------------------------------------------------


@dataclass
class Claim:
    job: VideoJob | None = None
    token: str = ""
    retry_in: float | None = None
    reason: str = ""


def _stale_before() -> datetime:
    return timezone.now() - timedelta(seconds=settings.VIDEO_HEARTBEAT_STALE_SECONDS)


def video_job_claim(*, job_id: uuid.UUID | str, task_id: str = "") -> Claim:
    """Take the job for this worker: `uploaded`/`queued` → `processing` in one conditional UPDATE.

    A job still `processing` whose heartbeat has gone stale belonged to a worker that died; it
    may be claimed again, at most `VIDEO_MAX_ATTEMPTS` starts in all. A job processing with a
    fresh heartbeat is someone else's: the caller is told when it may look again."""
    now = timezone.now()
    token = uuid.uuid4().hex
    claimable = Q(status__in=[Status.UPLOADED, Status.QUEUED]) | Q(
        status=Status.PROCESSING, heartbeat_at__lt=_stale_before()
    )
    rows = VideoJob.objects.filter(claimable, id=job_id, attempts__lt=settings.VIDEO_MAX_ATTEMPTS).update(
        status=Status.PROCESSING,
        claim_token=token,
        task_id=task_id or F("task_id"),
        attempts=F("attempts") + 1,
        heartbeat_at=now,
        started_at=now,
        progress=0,
        error="",
        updated_at=now,
    )
    if rows:
        job = VideoJob.objects.select_related("reservation").get(id=job_id)
        _record_metric(status="processing")
        return Claim(job=job, token=token)
    job = VideoJob.objects.filter(id=job_id).first()
    if job is None:
        logger.error(
            "Video job %s is not in this worker's database (instance %s): deleted since it was queued, or "
            "sent by an instance of another database sharing this broker, whose reaper will send it again",
            job_id,
            Path(settings.INSTANCE_DIR).name,
        )
        return Claim(reason="deleted")
    if job.status == Status.PROCESSING and job.attempts < settings.VIDEO_MAX_ATTEMPTS:
        stale_at = (job.heartbeat_at or now) + timedelta(seconds=settings.VIDEO_HEARTBEAT_STALE_SECONDS)
        return Claim(retry_in=max((stale_at - now).total_seconds(), 1.0), reason="busy")
    if job.status in (Status.UPLOADED, Status.QUEUED):
        video_job_fail(job_id=job.id, error=_attempts_message(job.attempts))
        return Claim(reason="attempts exhausted")
    return Claim(reason=job.status)


def _attempts_message(attempts: int) -> str:
    started = "once" if attempts == 1 else f"{attempts} times"
    return f"Processing was interrupted (the worker stopped) after being started {started}; giving up."


class _ProgressReporter:
    """Writes `progress` and the heartbeat, at most every VIDEO_PROGRESS_WRITE_SECONDS, and stops
    the run (JobCancelled) as soon as the job is no longer this run's: cancelled, deleted or
    handed to another worker."""

    def __init__(self, *, job_id: uuid.UUID, token: str) -> None:
        self.job_id = job_id
        self.token = token
        self.percent = 0
        self._written_at = float("-inf")  # the first report is always written
        self._written_percent = -1
        self._min_interval = settings.VIDEO_PROGRESS_WRITE_SECONDS
        # Beat well inside the stale window even when progress does not move.
        self._heartbeat_every = max(settings.VIDEO_HEARTBEAT_STALE_SECONDS / 4, self._min_interval)

    def __call__(self, percent: float, *, force: bool = False) -> None:
        self.percent = max(self.percent, min(int(percent), 100))
        elapsed = time.monotonic() - self._written_at
        changed = self.percent != self._written_percent
        if not force and not (changed and elapsed >= self._min_interval) and elapsed < self._heartbeat_every:
            return
        self.checkpoint()

    def checkpoint(self) -> None:
        now = timezone.now()
        rows = VideoJob.objects.filter(id=self.job_id, status=Status.PROCESSING, claim_token=self.token).update(
            progress=self.percent, heartbeat_at=now
        )
        self._written_at = time.monotonic()
        self._written_percent = self.percent
        if not rows:
            raise JobCancelled(str(self.job_id))

    def scaled(self, start: int, end: int) -> Callable[..., None]:
        """A callback for one step that maps the step's own 0..1 (or done/total) onto start..end."""

        def report(done: float, total: float | None = None) -> None:
            fraction = done / total if total else done
            self(start + (end - start) * min(max(fraction, 0.0), 1.0))

        return report


def video_job_process(*, job: VideoJob, token: str) -> VideoJob:
    """Run the pipeline for a claimed job: metadata, frames, thumbnail, then commit the results.

    Raises JobCancelled if the job stops being this run's; any other exception means failure
    (the task marks the job failed and refunds)."""
    started = time.monotonic()
    progress = _ProgressReporter(job_id=job.id, token=token)
    run = token[:12]
    frames_prefix = f"frames/{job.user_id}/{job.id}/{run}"
    thumbnail_name = f"thumbnails/{job.user_id}/{job.id}/thumbnail-{run}.jpg"
    try:
        progress(1, force=True)  # a job cancelled or deleted since the claim stops here
        with local_video(job.video_path) as path:
            info = media.probe(path)
            metadata = metadata_from_info(info, container=job.container)
            progress(5)
            thumbnail_at = clamp_timestamp(job.thumbnail_timestamp, duration=info.duration, fps=info.fps)
            frames, thumbnail = _extract(
                job=job,
                path=path,
                info=info,
                progress=progress,
                frames_prefix=frames_prefix,
                thumbnail_name=thumbnail_name,
                thumbnail_at=thumbnail_at,
            )
        progress(98, force=True)
        with transaction.atomic():
            owned = (
                VideoJob.objects.select_for_update()
                .filter(id=job.id, status=Status.PROCESSING, claim_token=token)
                .first()
            )
            if owned is None:
                raise JobCancelled(str(job.id))
            # The previous run's rows go in the same transaction as this run's come in: readers
            # see either the old frames or the new ones, never both and never none.
            VideoFrame.objects.filter(job_id=job.id).delete()
            VideoFrame.objects.bulk_create(frames)
            now = timezone.now()
            VideoJob.objects.filter(id=job.id).update(
                status=Status.COMPLETED,
                progress=100,
                metadata=metadata,
                duration=info.duration,
                thumbnail_path=thumbnail,
                thumbnail_timestamp=thumbnail_at,
                error="",
                heartbeat_at=now,
                completed_at=now,
                updated_at=now,
            )
            if owned.reservation_id:
                reservation = owned.reservation
                transaction.on_commit(
                    lambda: reservation_settle(
                        reservation=reservation, usage={"processing_ms": int((time.monotonic() - started) * 1000)}
                    )
                )
    except BaseException:
        # Whatever stopped this run, its own files are not referenced by anything.
        storage_delete_tree(frames_prefix)
        storage_delete_quietly(thumbnail_name)
        raise
    _delete_other_runs(job=job, keep_run=run)
    _record_metric(status="completed", seconds=time.monotonic() - started)
    job.refresh_from_db()
    return job


def _extract(
    *,
    job: VideoJob,
    path: str,
    info: media.VideoInfo,
    progress: _ProgressReporter,
    frames_prefix: str,
    thumbnail_name: str,
    thumbnail_at: float,
) -> tuple[list[VideoFrame], str]:
    """Frames and thumbnail of one run, stored; returns the unsaved frame rows and the thumbnail name."""
    frames: list[VideoFrame] = []
    with _output_dir(frames_prefix) as (out_dir, in_place):
        if job.extract_frames:
            result = media.extract_frames(
                path,
                interval=job.frame_interval,
                max_frames=job.max_frames,
                out_dir=out_dir,
                thumbnail_timestamp=thumbnail_at,
                thumbnail_max_side=THUMBNAIL_MAX_SIDE,
                jpeg_quality=FRAME_JPEG_QUALITY,
                on_progress=progress.scaled(5, 90),
                info=info,
            )
            extracted = result.frames
            thumbnail_local = str(result.thumbnail.path)
        else:
            thumbnail_local = os.path.join(out_dir, "thumbnail.jpg")
            media.make_thumbnail(
                path, timestamp=thumbnail_at, out_path=thumbnail_local, max_side=THUMBNAIL_MAX_SIDE, info=info
            )
            extracted = []
        progress(90, force=True)
        for position, frame in enumerate(extracted):
            name = _storage_name_for(str(frame.path), prefix=frames_prefix, local_dir=out_dir)
            stored = _publish(str(frame.path), name, in_place=in_place)
            frames.append(
                VideoFrame(
                    job_id=job.id,
                    index=frame.index,
                    timestamp=round(float(frame.timestamp), 3),
                    width=frame.width,
                    height=frame.height,
                    path=stored,
                    size_bytes=frame.size_bytes,
                )
            )
            if not in_place:
                progress.scaled(90, 97)(position + 1, len(extracted))
        if in_place:
            # The media layer writes the thumbnail next to the frames; it lives with the thumbnails.
            target = _local_path(thumbnail_name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(thumbnail_local, target)
            thumbnail = thumbnail_name
        else:
            thumbnail = _publish(thumbnail_local, thumbnail_name, in_place=False)
    return frames, thumbnail


def _delete_other_runs(*, job: VideoJob, keep_run: str) -> None:
    """Remove files of earlier runs of this job (a re-run replaces them)."""
    base = f"frames/{job.user_id}/{job.id}"
    try:
        runs, _files = _storage().listdir(base)
    except (FileNotFoundError, NotADirectoryError):
        runs = []
    for run in runs:
        if run != keep_run:
            storage_delete_tree(f"{base}/{run}")
    thumbnails = f"thumbnails/{job.user_id}/{job.id}"
    try:
        _dirs, files = _storage().listdir(thumbnails)
    except (FileNotFoundError, NotADirectoryError):
        files = []
    for name in files:
        if name.startswith("thumbnail-") and name != f"thumbnail-{keep_run}.jpg":
            storage_delete_quietly(f"{thumbnails}/{name}")


def video_job_fail(*, job_id: uuid.UUID | str, error: str, token: str = "") -> bool:
    """Mark an active job failed (only this run's, when `token` is given) and refund its units."""
    rows = VideoJob.objects.filter(id=job_id, status__in=VideoJob.ACTIVE_STATUSES)
    if token:
        rows = rows.filter(claim_token=token)
    now = timezone.now()
    with transaction.atomic():
        failed = rows.update(status=Status.FAILED, error=error[:2000], completed_at=now, updated_at=now)
        if failed:
            job = VideoJob.objects.select_related("reservation").get(id=job_id)
            if job.reservation is not None:
                reservation_refund(reservation=job.reservation)
    if failed:
        logger.info("Video job %s failed: %s", job_id, error)
        _record_metric(status="failed")
    return bool(failed)


def video_job_is_owned(*, job_id: uuid.UUID | str, token: str) -> bool:
    """Whether the run holding `token` still owns the job (not cancelled, deleted or taken over)."""
    return VideoJob.objects.filter(id=job_id, status=Status.PROCESSING, claim_token=token).exists()


def video_job_release(*, job_id: uuid.UUID | str, token: str) -> bool:
    """Give a claimed job back to the queue after a transient error (the task retries it)."""
    return bool(
        VideoJob.objects.filter(id=job_id, status=Status.PROCESSING, claim_token=token).update(
            status=Status.QUEUED, claim_token="", updated_at=timezone.now()
        )
    )


def failure_message(exc: BaseException) -> str:
    """What the client reads in `error`: media errors verbatim, anything else generically."""
    if isinstance(exc, media.MediaError):
        return str(exc)
    if isinstance(exc, ApplicationError):
        return exc.message
    return "Processing failed because of an internal error."


@dataclass
class ReapReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)


def video_jobs_reap(*, now=None) -> ReapReport:
    """The periodic safety net for jobs a worker will never finish.

    - `processing` with a stale heartbeat: its worker died. Re-queued while it has attempts
      left, otherwise failed (and refunded).
    - `uploaded` untouched for the stale window, or `queued` for five of them: its task was lost
      (broker outage at upload, a worker killed on a broker without redelivery); sent again. A
      duplicate is harmless: only one delivery can claim the job.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.VIDEO_HEARTBEAT_STALE_SECONDS)
    report = ReapReport()
    stale = VideoJob.objects.filter(status=Status.PROCESSING, heartbeat_at__lt=stale_before)
    for job in stale.only("id", "attempts", "heartbeat_at"):
        if job.attempts >= settings.VIDEO_MAX_ATTEMPTS:
            if video_job_fail(job_id=job.id, error=_attempts_message(job.attempts)):
                report.failed.append(str(job.id))
            continue
        with transaction.atomic():
            # Conditional on the heartbeat we saw: a worker that beat in the meantime keeps it.
            requeued = VideoJob.objects.filter(
                id=job.id, status=Status.PROCESSING, heartbeat_at=job.heartbeat_at
            ).update(status=Status.QUEUED, claim_token="", task_id=uuid.uuid4().hex, updated_at=now)
            if requeued:
                transaction.on_commit(lambda job_id=job.id: video_job_enqueue(job_id=job_id))
                report.requeued.append(str(job.id))
    # A queued job may just be waiting behind others, so it is resent only after a longer wait
    # (and then once per such wait): duplicates are harmless but need not pile up in the queue.
    queued_before = now - timedelta(seconds=5 * settings.VIDEO_HEARTBEAT_STALE_SECONDS)
    waiting = VideoJob.objects.filter(
        Q(status=Status.UPLOADED, updated_at__lt=stale_before) | Q(status=Status.QUEUED, updated_at__lt=queued_before)
    )
    for job in waiting.only("id", "attempts", "updated_at"):
        if job.attempts >= settings.VIDEO_MAX_ATTEMPTS:
            if video_job_fail(job_id=job.id, error=_attempts_message(job.attempts)):
                report.failed.append(str(job.id))
            continue
        # Claimed by the touch: of several reapers seeing the same row, one sends it.
        if VideoJob.objects.filter(id=job.id, updated_at=job.updated_at).update(updated_at=now):
            video_job_enqueue(job_id=job.id)
            report.resent.append(str(job.id))
    if report.requeued or report.failed or report.resent:
        logger.warning("Video reaper: requeued %s, failed %s, resent %s", report.requeued, report.failed, report.resent)
    return report


def video_job_requeue(*, job: VideoJob) -> bool:
    """Process the job again (an operator's action). A job being processed right now is left alone."""
    if job.status == Status.PROCESSING:
        return False
    now = timezone.now()
    rows = (
        VideoJob.objects.filter(id=job.id)
        .exclude(status=Status.PROCESSING)
        .update(status=Status.QUEUED, progress=0, error="", attempts=0, task_id=uuid.uuid4().hex, updated_at=now)
    )
    if rows:
        transaction.on_commit(lambda: video_job_enqueue(job_id=job.id))
    return bool(rows)


# --- Cancelling and deleting ---------------------------------------------------------------------


def _revoke(task_id: str) -> None:
    if not task_id:
        return
    try:
        from config.celery import app

        app.control.revoke(task_id)
    except Exception:  # best effort: the cancelled status is what actually stops the worker
        logger.info("Could not revoke task %s", task_id, exc_info=True)


def video_job_cancel(*, job: VideoJob) -> bool:
    """Stop an active job: the worker notices at its next progress checkpoint and cleans up."""
    now = timezone.now()
    with transaction.atomic():
        rows = VideoJob.objects.filter(id=job.id, status__in=VideoJob.ACTIVE_STATUSES).update(
            status=Status.CANCELLED, claim_token="", completed_at=now, updated_at=now
        )
        if rows and job.reservation_id:
            reservation_refund(reservation=job.reservation)
    if rows:
        task_id = job.task_id
        transaction.on_commit(lambda: _revoke(task_id))
        _record_metric(status="cancelled")
    return bool(rows)


def video_job_delete(*, job: VideoJob) -> None:
    """Delete the job, its frames and assets, and every file under its folders."""
    if job.is_active:
        video_job_cancel(job=job)
    prefixes = job_prefixes(user_id=job.user_id, job_id=job.id)
    extra = [job.video_path]
    with transaction.atomic():
        VideoJob.objects.filter(id=job.id).delete()
        transaction.on_commit(lambda: _delete_files(prefixes, extra))


def _delete_files(prefixes: list[str], names: list[str]) -> None:
    for prefix in prefixes:
        storage_delete_tree(prefix)
    for name in names:
        if name and not any(name.startswith(prefix + "/") for prefix in prefixes):
            storage_delete_quietly(name)


def video_files_delete_for_user(*, user) -> None:
    """Account-deletion clean-up (settings.ACCOUNT_DELETION_CLEANUPS): stops the user's running
    jobs and removes every video file of the user once the deletion commits."""
    for job in VideoJob.objects.filter(user=user, status__in=VideoJob.ACTIVE_STATUSES).select_related("reservation"):
        video_job_cancel(job=job)
    prefixes = [f"{root}/{user.pk}" for root in ROOTS]
    transaction.on_commit(lambda: _delete_files(prefixes, []))


# --- Frames, thumbnails, assets ------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    name: str
    size: int
    content_type: str
    etag: str
    # Set instead of a stored file for thumbnails served once without being cached.
    content: bytes | None = None


def _etag(*parts: Any) -> str:
    return '"' + hashlib.sha256("|".join(str(part) for part in parts).encode()).hexdigest()[:32] + '"'


def frame_file(*, frame: VideoFrame) -> StoredFile:
    return StoredFile(
        name=frame.path,
        size=frame.size_bytes,
        content_type="image/jpeg",
        etag=_etag(frame.pk, frame.path, frame.size_bytes),
    )


def _display_size(job: VideoJob) -> tuple[int, int]:
    return int(job.metadata.get("width") or 0), int(job.metadata.get("height") or 0)


def video_thumbnail_get(*, job: VideoJob, timestamp: float | None = None, width: int | None = None) -> StoredFile:
    """The stored thumbnail, or one made now for another time/width and cached in storage."""
    if job.status in (Status.FAILED, Status.CANCELLED):
        raise VideoNotReady(f"The video job {job.status}; it has no thumbnail.")
    duration = float(job.duration or job.metadata.get("duration") or 0.0)
    fps = float(job.metadata.get("fps") or 0.0)
    at = job.thumbnail_timestamp if timestamp is None else clamp_timestamp(timestamp, duration=duration, fps=fps)
    display_width, display_height = _display_size(job)
    longest = max(display_width, display_height)
    if width is None:
        max_side = THUMBNAIL_MAX_SIDE
    else:
        if width < 16:
            raise InvalidInput("width must be at least 16.", errors={"width": ["At least 16."]})
        # `width` is the thumbnail's width; the media layer bounds the longest side.
        width = min(width, display_width or width)
        max_side = math.ceil(width * longest / display_width) if display_width else width
    if job.thumbnail_path and abs(at - job.thumbnail_timestamp) < 0.0005 and max_side == THUMBNAIL_MAX_SIDE:
        with contextlib.suppress(FileNotFoundError, OSError):
            size = _storage().size(job.thumbnail_path)
            return StoredFile(job.thumbnail_path, size, "image/jpeg", _etag(job.thumbnail_path, size))
    name = f"thumbnails/{job.user_id}/{job.id}/cache/t{round(at * 1000)}-s{max_side}.jpg"
    storage = _storage()
    if storage.exists(name):
        size = storage.size(name)
        return StoredFile(name, size, "image/jpeg", _etag(name, size))
    return _thumbnail_make(job=job, name=name, at=at, max_side=max_side)


def _thumbnail_make(*, job: VideoJob, name: str, at: float, max_side: int) -> StoredFile:
    storage = _storage()
    cache_prefix = name.rsplit("/", 1)[0]
    cached = sum(1 for _ in _walk(cache_prefix))
    keep = cached < settings.VIDEO_THUMBNAIL_CACHE_MAX
    with tempfile.TemporaryDirectory(prefix="video-thumb-") as tmp:
        out = os.path.join(tmp, "thumbnail.jpg")
        with local_video(job.video_path) as path:
            try:
                media.make_thumbnail(path, timestamp=at, out_path=out, max_side=max_side)
            except media.MediaError as exc:
                raise VideoNotReady(f"No thumbnail could be made: {exc}") from exc
        size = os.path.getsize(out)
        if not keep:
            # Past the per-job cache limit the thumbnail is served once and not kept.
            with open(out, "rb") as handle:
                content = handle.read()
            return StoredFile("", size, "image/jpeg", _etag(name, size), content=content)
        with open(out, "rb") as handle:
            saved = storage.save(name, File(handle, name=os.path.basename(name)))
        if saved != name:
            # Another request made the same thumbnail first; serve theirs, drop ours.
            storage_delete_quietly(saved)
            saved = name
    return StoredFile(saved, size, "image/jpeg", _etag(saved, size))


def video_asset_request(*, job: VideoJob, kind: str) -> VideoAsset:
    """The asset, asked of the worker on first request. A pending asset whose worker went quiet
    is asked for again."""
    if job.status != Status.COMPLETED:
        raise VideoNotReady(
            f"The video is {job.status}; previews are made once it is completed.",
            extra={"status": job.status},
        )
    asset, created = VideoAsset.objects.get_or_create(job=job, kind=kind)
    stale = timezone.now() - timedelta(seconds=settings.VIDEO_HEARTBEAT_STALE_SECONDS)
    if created or (
        asset.status in (VideoAsset.Status.PENDING, VideoAsset.Status.PROCESSING) and asset.updated_at < stale
    ):
        if not created:
            VideoAsset.objects.filter(pk=asset.pk).update(status=VideoAsset.Status.PENDING, updated_at=timezone.now())
        transaction.on_commit(lambda: _asset_enqueue(asset_id=asset.pk))
    if asset.status == VideoAsset.Status.FAILED:
        raise AssetFailed(f"The {asset.get_kind_display().lower()} could not be made: {asset.error}")
    return asset


def _asset_enqueue(*, asset_id: uuid.UUID) -> None:
    from video.tasks import build_video_asset

    try:
        build_video_asset.delay(str(asset_id))
    except Exception:
        logger.exception("Could not queue video asset %s", asset_id)


def video_asset_build(*, asset_id: uuid.UUID | str) -> VideoAsset | None:
    """Worker side: claim a pending asset and make it."""
    claimable = Q(status=VideoAsset.Status.PENDING) | Q(
        status=VideoAsset.Status.PROCESSING, updated_at__lt=_stale_before()
    )
    claimed = VideoAsset.objects.filter(claimable, pk=asset_id, attempts__lt=settings.VIDEO_MAX_ATTEMPTS).update(
        status=VideoAsset.Status.PROCESSING, attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    if not claimed:
        return None
    asset = VideoAsset.objects.select_related("job").get(pk=asset_id)
    job = asset.job
    name = f"thumbnails/{job.user_id}/{job.id}/{ASSET_FILENAMES[asset.kind]}"
    data: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="video-asset-") as tmp:
            out = os.path.join(tmp, ASSET_FILENAMES[asset.kind])
            with local_video(job.video_path) as path:
                if asset.kind == VideoAsset.Kind.STORYBOARD:
                    data = media.make_storyboard(path, out_path=out)
                    data.pop("sprite", None)  # a local path of the worker, meaningless to anyone else
                else:
                    media.make_preview_gif(
                        path, out_path=out, seconds=PREVIEW_GIF_SECONDS, fps=PREVIEW_GIF_FPS, width=PREVIEW_GIF_WIDTH
                    )
            size = os.path.getsize(out)
            storage_delete_quietly(name)
            with open(out, "rb") as handle:
                stored = _storage().save(name, File(handle, name=os.path.basename(name)))
    except Exception as exc:
        VideoAsset.objects.filter(pk=asset.pk).update(
            status=VideoAsset.Status.FAILED, error=failure_message(exc), updated_at=timezone.now()
        )
        if not isinstance(exc, media.MediaError):
            logger.exception("Making %s for video job %s failed", asset.kind, job.id)
        return VideoAsset.objects.get(pk=asset.pk)
    if not VideoAsset.objects.filter(pk=asset.pk).update(
        status=VideoAsset.Status.READY, path=stored, size_bytes=size, data=data, error="", updated_at=timezone.now()
    ):
        storage_delete_quietly(stored)  # the job was deleted meanwhile
    return VideoAsset.objects.filter(pk=asset.pk).first()


def asset_file(*, asset: VideoAsset, content_type: str) -> StoredFile:
    return StoredFile(asset.path, asset.size_bytes, content_type, _etag(asset.pk, asset.path, asset.size_bytes))


# --- Clean-up ------------------------------------------------------------------------------------


@dataclass
class CleanupReport:
    orphan_files: list[str] = field(default_factory=list)
    vanished_jobs: list[str] = field(default_factory=list)
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
    storage = _storage()

    for job in VideoJob.objects.exclude(status=Status.PROCESSING).select_related("reservation"):
        if job.video_path and not storage.exists(job.video_path) and job.created_at < cutoff:
            report.vanished_jobs.append(str(job.id))
            if not dry_run:
                if job.is_active:
                    video_job_cancel(job=job)
                video_job_delete(job=job)

    jobs = {str(job_id): status for job_id, status in VideoJob.objects.values_list("id", "status")}
    referenced = _referenced_names()
    for root in ROOTS:
        for name in list(_walk(root)):
            parts = name.split("/")
            job_id = parts[2] if len(parts) > 3 else ""
            status = jobs.get(job_id)
            if status == Status.PROCESSING:
                continue
            if status is not None and root == "thumbnails" and "/cache/" in name:
                continue
            if name in referenced:
                continue
            try:
                if storage.get_modified_time(name) >= cutoff:
                    continue
            except (FileNotFoundError, NotImplementedError):
                continue
            report.orphan_files.append(name)
            if not dry_run:
                storage_delete_quietly(name)
    if not dry_run:
        _prune_empty_dirs()
    return report


def _prune_empty_dirs() -> None:
    """Remove folders left empty under the video roots (local storages only)."""
    for root in ROOTS:
        local = _local_path(root)
        if local is None or not os.path.isdir(local):
            continue
        for current, _dirs, _files in os.walk(local, topdown=False):
            if current != local and not os.listdir(current):
                with contextlib.suppress(OSError):
                    os.rmdir(current)


# --- Metrics -------------------------------------------------------------------------------------


def _record_metric(*, status: str, seconds: float | None = None) -> None:
    try:
        record_video_job(status=status, seconds=seconds)
    except Exception:  # metrics must never break the pipeline
        logger.debug("Recording the video metric failed", exc_info=True)


__all__ = [
    "AssetFailed",
    "Claim",
    "CleanupReport",
    "InvalidUpload",
    "JobCancelled",
    "ReapReport",
    "StoredFile",
    "UploadOptions",
    "VideoNotReady",
]
