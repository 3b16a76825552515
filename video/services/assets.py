"""Files served from a job: frames, thumbnails (stored or made on demand and cached), and the
derived assets (storyboard, animated preview) the worker makes on first request.

Each asset kind has its builder in `ASSET_BUILDERS`; a kind without one is refused at start-up
(`asset_builders_check`, a system check) and by `video_asset_build`, never built as another kind."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import checks
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.exceptions import Conflict, InvalidInput
from video import media, storage
from video.jobs import VIDEO_JOBS
from video.models import VideoAsset, VideoFrame, VideoJob
from video.services.metadata import clamp_timestamp
from video.services.processing import THUMBNAIL_MAX_SIDE, failure_message

logger = logging.getLogger(__name__)

# Seconds a client is told to wait before asking again for an asset the worker is making.
ASSET_RETRY_AFTER = 2
PREVIEW_GIF_SECONDS = 3.0
PREVIEW_GIF_FPS = 8
PREVIEW_GIF_WIDTH = 240


class AssetFailed(Conflict):
    code = "asset_failed"


class VideoNotReady(Conflict):
    code = "video_not_ready"


class UnknownAssetKind(LookupError):
    """An asset kind with no builder: a programming error, not something to build as another kind."""


@dataclass(frozen=True)
class AssetBuilder:
    """How one kind of asset is made: its file name in the job's thumbnails folder, and the media
    call that writes it from a local video (returning the data stored with the asset)."""

    filename: str
    build: Callable[[str, str], dict[str, Any]]


def _storyboard(video: str, out: str) -> dict[str, Any]:
    data = media.make_storyboard(video, out_path=out)
    data.pop("sprite", None)  # a local path of the worker, meaningless to anyone else
    return data


def _preview_gif(video: str, out: str) -> dict[str, Any]:
    media.make_preview_gif(
        video, out_path=out, seconds=PREVIEW_GIF_SECONDS, fps=PREVIEW_GIF_FPS, width=PREVIEW_GIF_WIDTH
    )
    return {}


ASSET_BUILDERS: dict[str, AssetBuilder] = {
    VideoAsset.Kind.STORYBOARD: AssetBuilder("storyboard.jpg", _storyboard),
    VideoAsset.Kind.PREVIEW_GIF: AssetBuilder("preview.gif", _preview_gif),
}


def asset_builder(kind: str, builders: Mapping[str, AssetBuilder] = ASSET_BUILDERS) -> AssetBuilder:
    try:
        return builders[kind]
    except KeyError:
        raise UnknownAssetKind(f"No builder for video asset kind {str(kind)!r}; add one to ASSET_BUILDERS.") from None


def asset_builders_check(
    kinds: Iterable[str] = VideoAsset.Kind.values, builders: Mapping[str, AssetBuilder] = ASSET_BUILDERS
) -> list[checks.CheckMessage]:
    """System check: every `VideoAsset.Kind` has its builder (a new kind without one stops start-up)."""
    return [
        checks.Error(
            f"Video asset kind {str(kind)!r} has no builder.", hint="Add it to ASSET_BUILDERS.", id="video.E001"
        )
        for kind in kinds
        if kind not in builders
    ]


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


def asset_file(*, asset: VideoAsset, content_type: str) -> StoredFile:
    return StoredFile(asset.path, asset.size_bytes, content_type, _etag(asset.pk, asset.path, asset.size_bytes))


def _display_size(job: VideoJob) -> tuple[int, int]:
    return int(job.metadata.get("width") or 0), int(job.metadata.get("height") or 0)


def video_thumbnail_get(*, job: VideoJob, timestamp: float | None = None, width: int | None = None) -> StoredFile:
    """The stored thumbnail, or one made now for another time/width and cached in storage."""
    if job.status in (VideoJob.Status.FAILED, VideoJob.Status.CANCELLED):
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
            size = storage.storage().size(job.thumbnail_path)
            return StoredFile(job.thumbnail_path, size, "image/jpeg", _etag(job.thumbnail_path, size))
    paths = storage.JobPaths(user_id=job.user_id, job_id=job.id)
    name = paths.cached_thumbnail(at=at, max_side=max_side)
    if storage.storage().exists(name):
        size = storage.storage().size(name)
        return StoredFile(name, size, "image/jpeg", _etag(name, size))
    return _thumbnail_make(job=job, paths=paths, name=name, at=at, max_side=max_side)


def _thumbnail_make(*, job: VideoJob, paths: storage.JobPaths, name: str, at: float, max_side: int) -> StoredFile:
    cached = sum(1 for _ in storage.walk(paths.thumbnail_cache))
    keep = cached < settings.VIDEO_THUMBNAIL_CACHE_MAX
    with tempfile.TemporaryDirectory(prefix="video-thumb-") as tmp:
        out = os.path.join(tmp, "thumbnail.jpg")
        with storage.local_video(job.video_path) as path:
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
        saved = storage.save_file(out, name)
        if saved != name:
            # Another request made the same thumbnail first; serve theirs, drop ours.
            storage.delete_quietly(saved)
            saved = name
    return StoredFile(saved, size, "image/jpeg", _etag(saved, size))


def video_asset_request(*, job: VideoJob, kind: str) -> VideoAsset:
    """The asset, asked of the worker on first request. A pending asset whose worker went quiet
    is asked for again."""
    if job.status != VideoJob.Status.COMPLETED:
        raise VideoNotReady(
            f"The video is {job.status}; previews are made once it is completed.",
            extra={"status": job.status},
        )
    asset_builder(kind)  # an unknown kind fails here, in the request, not later in a worker
    asset, created = VideoAsset.objects.get_or_create(job=job, kind=kind)
    stale = timezone.now() - timedelta(seconds=VIDEO_JOBS.stale_seconds)
    if created or (
        asset.status in (VideoAsset.Status.PENDING, VideoAsset.Status.PROCESSING) and asset.updated_at < stale
    ):
        if not created:
            VideoAsset.objects.filter(pk=asset.pk).update(status=VideoAsset.Status.PENDING, updated_at=timezone.now())
        asset_id = asset.pk
        transaction.on_commit(lambda: _asset_enqueue(asset_id=asset_id))
    if asset.status == VideoAsset.Status.FAILED:
        raise AssetFailed(f"The {asset.get_kind_display().lower()} could not be made: {asset.error}")
    return asset


def _asset_enqueue(*, asset_id: uuid.UUID) -> None:
    from video.tasks import build_video_asset  # the tasks module imports the services

    try:
        build_video_asset.delay(str(asset_id))
    except Exception:
        logger.exception("Could not queue video asset %s", asset_id)


def video_asset_build(*, asset_id: uuid.UUID | str) -> VideoAsset | None:
    """Worker side: claim a pending asset and make it with its kind's builder."""
    stale_before = timezone.now() - timedelta(seconds=VIDEO_JOBS.stale_seconds)
    claimable = Q(status=VideoAsset.Status.PENDING) | Q(
        status=VideoAsset.Status.PROCESSING, updated_at__lt=stale_before
    )
    claimed = VideoAsset.objects.filter(claimable, pk=asset_id, attempts__lt=VIDEO_JOBS.max_attempts).update(
        status=VideoAsset.Status.PROCESSING, attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    if not claimed:
        return None
    asset = VideoAsset.objects.select_related("job").get(pk=asset_id)
    job = asset.job
    try:
        builder = asset_builder(asset.kind)
        name = storage.JobPaths(user_id=job.user_id, job_id=job.id).thumbnails_file(builder.filename)
        with tempfile.TemporaryDirectory(prefix="video-asset-") as tmp:
            out = os.path.join(tmp, builder.filename)
            with storage.local_video(job.video_path) as path:
                data = builder.build(path, out)
            size = os.path.getsize(out)
            storage.delete_quietly(name)
            stored = storage.save_file(out, name)
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
        storage.delete_quietly(stored)  # the job was deleted meanwhile
    return VideoAsset.objects.filter(pk=asset.pk).first()
