"""OpenAPI examples of `/api/video/...` (the seed's upload fields and video metadata).

Success examples hold the `data` part only; the schema hook wraps them in the envelope. See
`core.api.examples`.
"""

from __future__ import annotations

from core.api.examples import (
    MULTIPART,
    QUOTA_ERRORS,
    error_example,
    error_response,
    request_example,
    success_example,
)

JOB_ID = "34e08505-e2ba-4533-8fd3-45616472020d"
_JOB_URL = f"https://api.example.com/api/video/jobs/{JOB_ID}"
_RUN = f"frames/1/{JOB_ID}/3e373f9a3ad4"


def _frame(index: int) -> dict:
    return {
        "index": index,
        "timestamp": float(index),
        "width": 1920,
        "height": 1080,
        "filename": f"frame_{index:05d}.jpg",
        "filePath": f"{_RUN}/frame_{index:05d}.jpg",
        "size": 184_312 + 1_000 * index,
        "url": f"{_JOB_URL}/frames/{index}",
    }


UPLOAD_REQUEST = request_example(
    "Upload",
    {
        "video": "(binary) MP4, MOV, AVI, WMV, MKV or WebM, at most 100 MB and 5 minutes",
        "extractFrames": True,
        "frameInterval": 1.0,
        "maxFrames": 100,
    },
    media_type=MULTIPART,
)

# Just uploaded: probed, queued, no frames yet.
_UPLOADED_JOB = {
    "id": JOB_ID,
    "filename": "video_123.mp4",
    "status": "uploaded",
    "progress": 0,
    "error": None,
    "options": {"extractFrames": True, "frameInterval": 1.0, "maxFrames": 100, "thumbnailTimestamp": 1.0},
    "metadata": {
        "duration": 120.5,
        "width": 1920,
        "height": 1080,
        "fps": 30.0,
        "codec": "h264",
        "bitrate": 6_000_000,
        "rotation": 0,
        "hasAudio": True,
        "size": 90_412_345,
        "container": "mp4",
    },
    "duration": 120.5,
    "size": 90_412_345,
    "container": "mp4",
    "frameCount": 0,
    "frames": [],
    "thumbnailUrl": f"{_JOB_URL}/thumbnail",
    "storyboardUrl": f"{_JOB_URL}/storyboard",
    "previewUrl": f"{_JOB_URL}/preview.gif",
    "attempts": 0,
    "createdAt": "2026-11-25T08:00:00Z",
    "updatedAt": "2026-11-25T08:00:00Z",
    "startedAt": None,
    "completedAt": None,
}
# Processed: the frames are listed (three shown here; `frameCount` has them all).
_COMPLETED_JOB = {
    **_UPLOADED_JOB,
    "status": "completed",
    "progress": 100,
    "frameCount": 3,
    "frames": [_frame(index) for index in range(3)],
    "attempts": 1,
    "updatedAt": "2026-11-25T08:00:41Z",
    "startedAt": "2026-11-25T08:00:01Z",
    "completedAt": "2026-11-25T08:00:41Z",
}

UPLOADED = success_example("Queued", _UPLOADED_JOB, message="Video uploaded; processing queued", status=202)
UPLOAD_REPLAYED = success_example("Replayed upload", _COMPLETED_JOB, message="Video already uploaded", status=202)
UPLOAD_ERRORS = {
    400: error_response(
        "Not a readable video, too long, or invalid options: `errors` names the field.",
        error_example(
            "Empty file", message="The video file is empty.", code="invalid_video", errors={"video": ["Empty file."]}
        ),
    ),
    413: error_response(
        "Over the upload limit (refused while streaming, before the whole body is read).",
        error_example(
            "Too large",
            message="The video is larger than the 100 MB upload limit.",
            code="file_too_large",
            errors={"video": ["The video is larger than the 100 MB upload limit."]},
        ),
    ),
    415: error_response(
        "Not a video container or codec that is accepted (by content).",
        error_example(
            "Not a video",
            message="Unsupported file format (CompuServe Graphics Interchange Format (GIF)); "
            "upload MP4, MOV, AVI, WMV, MKV or WebM.",
            code="unsupported_video_format",
            errors={
                "video": [
                    "Unsupported file format (CompuServe Graphics Interchange Format (GIF)); "
                    "upload MP4, MOV, AVI, WMV, MKV or WebM."
                ]
            },
        ),
    ),
    **QUOTA_ERRORS,
}

JOBS = success_example("Video jobs", _COMPLETED_JOB)
JOB = success_example("Completed job", _COMPLETED_JOB)
JOB_DELETED = success_example("Deleted", {"id": JOB_ID}, message="Video job deleted")

# --- Storyboard and preview ---------------------------------------------------------------------

_TILE = {"w": 160, "h": 90}
STORYBOARD = success_example(
    "Tile map",
    {
        "width": 800,
        "height": 450,
        "columns": 5,
        "rows": 5,
        "interval": 4.82,
        "duration": 120.5,
        "tileWidth": 160,
        "tileHeight": 90,
        # 25 tiles in all, left to right and top to bottom; the first two shown.
        "tiles": [
            {"index": 0, "time": 0.0, "x": 0, "y": 0, **_TILE},
            {"index": 1, "time": 4.82, "x": 160, "y": 0, **_TILE},
        ],
        "spriteUrl": f"{_JOB_URL}/storyboard?format=jpg",
        "status": "ready",
    },
)
_PENDING = {"status": "processing", "retryAfter": 2}
STORYBOARD_PENDING = success_example(
    "Being made", _PENDING, message="The storyboard is being made; ask again in 2 seconds", status=202
)
PREVIEW_PENDING = success_example(
    "Being made", _PENDING, message="The preview gif is being made; ask again in 2 seconds", status=202
)
