"""Video: upload limits, job heartbeats and attempts, progress writes, thumbnails, file clean-up."""

from __future__ import annotations

from config.settings.base import env
from config.settings.celery import CELERY_BEAT_SCHEDULE

# --- Video -----------------------------------------------------------------------------------
# The seed's upload table: 100 MB, 5 minutes, MP4/MOV/AVI/WMV/WebM (checked by probing the content).
VIDEO_MAX_UPLOAD_BYTES = env.int("VIDEO_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)
VIDEO_MAX_DURATION_SECONDS = env.float("VIDEO_MAX_DURATION_SECONDS", default=300.0)
# A processing job whose heartbeat is older than this is presumed lost with its worker: it is
# claimed again by a re-delivered task or re-queued by the reaper, at most VIDEO_MAX_ATTEMPTS times.
VIDEO_HEARTBEAT_STALE_SECONDS = env.int("VIDEO_HEARTBEAT_STALE_SECONDS", default=120)
VIDEO_MAX_ATTEMPTS = env.int("VIDEO_MAX_ATTEMPTS", default=3)
VIDEO_REAPER_INTERVAL_SECONDS = env.int("VIDEO_REAPER_INTERVAL_SECONDS", default=60)
# Progress is written at most this often (and the heartbeat with it).
VIDEO_PROGRESS_WRITE_SECONDS = env.float("VIDEO_PROGRESS_WRITE_SECONDS", default=0.5)
# Thumbnails made on demand for other timestamps/widths are cached, up to this many per job.
VIDEO_THUMBNAIL_CACHE_MAX = env.int("VIDEO_THUMBNAIL_CACHE_MAX", default=32)
# Files younger than this are never treated as orphans (an upload may not have committed its row yet).
VIDEO_CLEANUP_GRACE_SECONDS = env.int("VIDEO_CLEANUP_GRACE_SECONDS", default=3600)
CELERY_BEAT_SCHEDULE["video-reap-stale-jobs"] = {
    "task": "video.reap_stale_jobs",
    "schedule": VIDEO_REAPER_INTERVAL_SECONDS,
}
_video_cleanup_hours = env.int("VIDEO_CLEANUP_INTERVAL_HOURS", default=24)
if _video_cleanup_hours > 0:
    CELERY_BEAT_SCHEDULE["video-cleanup-files"] = {
        "task": "video.cleanup_files",
        "schedule": _video_cleanup_hours * 3600,
    }

# --- Resumable uploads (tus) and live progress -------------------------------------------------
from corsheaders.defaults import default_headers as default_cors_headers  # noqa: E402

from config.settings.api import CORS_EXPOSE_HEADERS, RATE_LIMITS, _category  # noqa: E402

# A partial upload not touched for this long expires (Upload-Expires); the beat task removes it.
VIDEO_RESUMABLE_EXPIRY_SECONDS = env.int("VIDEO_RESUMABLE_EXPIRY_SECONDS", default=24 * 3600)
CELERY_BEAT_SCHEDULE["video-expire-resumable-uploads"] = {
    "task": "video.expire_resumable_uploads",
    "schedule": env.int("VIDEO_RESUMABLE_SWEEP_SECONDS", default=900),
}
# Chunks of a resumable upload (a 100 MB video in 5 MB chunks is 20 requests); creating one is an upload.
RATE_LIMITS["upload_chunk"] = _category("UPLOAD_CHUNK", "120/1m", "30/10s")
CORS_EXPOSE_HEADERS += [
    "Location",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Idempotent-Replayed",
    "Video-Job-Id",
]
# Live progress (GET /api/video/jobs/{id}/events): how often the stream reads the job row, how
# long a stream may stay open (the client reconnects with Last-Event-ID), and the keep-alive.
VIDEO_EVENTS_POLL_SECONDS = env.float("VIDEO_EVENTS_POLL_SECONDS", default=0.5)
VIDEO_EVENTS_MAX_SECONDS = env.float("VIDEO_EVENTS_MAX_SECONDS", default=300.0)
VIDEO_EVENTS_KEEPALIVE_SECONDS = env.float("VIDEO_EVENTS_KEEPALIVE_SECONDS", default=15.0)
# Request headers a browser's tus client sends cross-origin.
CORS_ALLOW_HEADERS = (
    *default_cors_headers,
    "idempotency-key",
    "tus-resumable",
    "upload-length",
    "upload-offset",
    "upload-metadata",
)
# --- Search inside videos ----------------------------------------------------------------------
# Caption cues and on-screen text become moments in the owner's embeddings (charged as embeddings).
VIDEO_SEARCH_INDEX = env.bool("VIDEO_SEARCH_INDEX", default=True)
# On-screen text is read (OCR) from at most this many of the frames the pipeline extracts.
VIDEO_SEARCH_OCR_MAX_FRAMES = env.int("VIDEO_SEARCH_OCR_MAX_FRAMES", default=20)
# ... and kept when it holds a word of at least this many letters (not a timecode or a number).
VIDEO_SEARCH_OCR_MIN_LETTERS = env.int("VIDEO_SEARCH_OCR_MIN_LETTERS", default=3)
# Moments scoring below this cosine similarity to the query are not returned.
VIDEO_SEARCH_MIN_SCORE = env.float("VIDEO_SEARCH_MIN_SCORE", default=0.2)
