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
from collections.abc import Iterator
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
from core.jobs import lifecycle
from core.jobs.lifecycle import Claim, ReapReport
from core.jobs.progress import JobLost, ProgressReporter
from quotas.pricing import Service, units_for_video
from quotas.services import quota_reserve, reservation_attach
from video import media
from video.jobs import VIDEO_JOBS, video_job_enqueue, video_job_record
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


# The name the pipeline and its tasks have always used for the core's stop signal.
JobCancelled = JobLost


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
    video_job_record(Status.UPLOADED)
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


# --- Processing ----------------------------------------------------------------------------------


def video_job_claim(*, job_id: uuid.UUID | str, task_id: str = "") -> Claim[VideoJob]:
    """Take the job for this worker (`core.jobs.lifecycle.job_claim`): at most `VIDEO_MAX_ATTEMPTS`
    starts in all; a job processing with a fresh heartbeat is someone else's."""
    claim = lifecycle.job_claim(kind=VIDEO_JOBS, job_id=job_id, task_id=task_id)
    if claim.reason == "deleted":
        logger.error(
            "Video job %s is not in this worker's database (instance %s): deleted since it was queued, or "
            "sent by an instance of another database sharing this broker, whose reaper will send it again",
            job_id,
            Path(settings.INSTANCE_DIR).name,
        )
    return claim


def video_job_process(*, job: VideoJob, token: str) -> VideoJob:
    """Run the pipeline for a claimed job: metadata, frames, thumbnail, then commit the results.

    Raises JobCancelled if the job stops being this run's; any other exception means failure
    (the task marks the job failed and refunds)."""
    started = time.monotonic()
    progress = ProgressReporter(kind=VIDEO_JOBS, job_id=job.id, token=token)
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
        processing_ms = int((time.monotonic() - started) * 1000)
        with transaction.atomic():
            completed = lifecycle.job_complete(
                kind=VIDEO_JOBS,
                job_id=job.id,
                token=token,
                fields={
                    "metadata": metadata,
                    "duration": info.duration,
                    "thumbnail_path": thumbnail,
                    "thumbnail_timestamp": thumbnail_at,
                },
                usage={"processing_ms": processing_ms},
            )
            if not completed:
                raise JobCancelled(str(job.id))
            # The previous run's rows go in the same transaction as this run's come in (the job
            # row is locked by the update above): readers see either the old frames or the new
            # ones, never both and never none.
            VideoFrame.objects.filter(job_id=job.id).delete()
            VideoFrame.objects.bulk_create(frames)
    except BaseException:
        # Whatever stopped this run, its own files are not referenced by anything.
        storage_delete_tree(frames_prefix)
        storage_delete_quietly(thumbnail_name)
        raise
    _delete_other_runs(job=job, keep_run=run)
    video_job_record(Status.COMPLETED, time.monotonic() - started)
    job.refresh_from_db()
    return job


def _extract(
    *,
    job: VideoJob,
    path: str,
    info: media.VideoInfo,
    progress: ProgressReporter,
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


def video_job_fail(*, job_id: uuid.UUID | str, error: str, code: str = "failed", token: str = "") -> bool:
    """Mark an active job failed (only this run's, when `token` is given) and refund its units."""
    return lifecycle.job_fail(kind=VIDEO_JOBS, job_id=job_id, error=error, code=code, token=token)


def video_job_is_owned(*, job_id: uuid.UUID | str, token: str) -> bool:
    """Whether the run holding `token` still owns the job (not cancelled, deleted or taken over)."""
    return lifecycle.job_is_owned(kind=VIDEO_JOBS, job_id=job_id, token=token)


def video_job_release(*, job_id: uuid.UUID | str, token: str) -> bool:
    """Give a claimed job back to the queue after a transient error (the task retries it)."""
    return lifecycle.job_release(kind=VIDEO_JOBS, job_id=job_id, token=token)


def failure_message(exc: BaseException) -> str:
    """What the client reads in `error`: media errors verbatim, anything else generically."""
    if isinstance(exc, media.MediaError):
        return str(exc)
    if isinstance(exc, ApplicationError):
        return exc.message
    return "Processing failed because of an internal error."


def failure_code(exc: BaseException) -> str:
    """The machine-readable `error_code` next to `failure_message`."""
    if isinstance(exc, media.MediaError):
        return "media_error"
    if isinstance(exc, ApplicationError):
        return exc.code
    return "internal_error"


def video_jobs_reap(*, now: datetime | None = None) -> ReapReport:
    """The periodic safety net for video jobs no worker will finish (`lifecycle.jobs_reap`)."""
    return lifecycle.jobs_reap(kind=VIDEO_JOBS, now=now)


def video_job_requeue(*, job: VideoJob) -> bool:
    """Process the job again (an operator's action). A job being processed right now is left alone."""
    if job.status == Status.PROCESSING:
        return False
    return lifecycle.job_requeue(kind=VIDEO_JOBS, job_id=job.id)


# --- Cancelling and deleting ---------------------------------------------------------------------


def video_job_cancel(*, job: VideoJob) -> bool:
    """Stop an active job and refund it: the worker notices at its next progress checkpoint and
    cleans up."""
    return lifecycle.job_cancel(kind=VIDEO_JOBS, job_id=job.id)


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
    stale_before = timezone.now() - timedelta(seconds=VIDEO_JOBS.stale_seconds)
    claimable = Q(status=VideoAsset.Status.PENDING) | Q(
        status=VideoAsset.Status.PROCESSING, updated_at__lt=stale_before
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
