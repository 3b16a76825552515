"""The video app's services, one concern per module: `upload` (accept and queue), `lifecycle`
(claim, fail, cancel, retry, reap, delete), `metadata` (what the probe tells), `processing` (the
worker's pipeline), `assets` (frames, thumbnails, storyboard, preview) and `cleanup` (the storage
sweep). Storage names and paths live in `video.storage`.

The public functions are re-exported here, so callers (views, tasks, admin, commands, settings'
`ACCOUNT_DELETION_CLEANUPS`) keep using `video.services.<name>`."""

from __future__ import annotations

from video.services.assets import (
    ASSET_BUILDERS,
    ASSET_RETRY_AFTER,
    AssetFailed,
    StoredFile,
    VideoNotReady,
    asset_file,
    frame_file,
    video_asset_build,
    video_asset_request,
    video_thumbnail_get,
)
from video.services.cleanup import CleanupReport, video_files_cleanup
from video.services.lifecycle import (
    video_files_delete_for_user,
    video_job_cancel,
    video_job_claim,
    video_job_delete,
    video_job_fail,
    video_job_is_owned,
    video_job_release,
    video_job_requeue,
    video_jobs_reap,
)
from video.services.metadata import VideoMetadata, clamp_timestamp, container_name, metadata_from_info
from video.services.processing import JobCancelled, failure_code, failure_message, video_job_process
from video.services.upload import UploadOptions, video_job_create, video_job_find_by_idempotency_key

__all__ = [
    "ASSET_BUILDERS",
    "ASSET_RETRY_AFTER",
    "AssetFailed",
    "CleanupReport",
    "JobCancelled",
    "StoredFile",
    "UploadOptions",
    "VideoMetadata",
    "VideoNotReady",
    "asset_file",
    "clamp_timestamp",
    "container_name",
    "failure_code",
    "failure_message",
    "frame_file",
    "metadata_from_info",
    "video_asset_build",
    "video_asset_request",
    "video_files_cleanup",
    "video_files_delete_for_user",
    "video_job_cancel",
    "video_job_claim",
    "video_job_create",
    "video_job_delete",
    "video_job_fail",
    "video_job_find_by_idempotency_key",
    "video_job_is_owned",
    "video_job_process",
    "video_job_release",
    "video_job_requeue",
    "video_jobs_reap",
    "video_thumbnail_get",
]
