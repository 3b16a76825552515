"""OpenAPI examples of `/api/video/uploads/` (tus 1.0). Success examples hold the `data` part."""

from __future__ import annotations

from core.api.examples import QUOTA_EXCEEDED, RATE_LIMITED, error_example, error_response, success_example

UPLOAD_ID = "5b0e5c29-7a49-4c1e-9d0c-6f3c2f0a8e11"

CREATED = success_example(
    "Created",
    {
        "id": UPLOAD_ID,
        "url": f"https://api.example.com/api/video/uploads/{UPLOAD_ID}",
        "filename": "holiday.mp4",
        "uploadLength": 52_428_800,
        "uploadOffset": 0,
        "expiresAt": "2026-12-07T10:00:00Z",
        "jobId": None,
        "createdAt": "2026-12-06T10:00:00Z",
    },
    message="Upload created; PATCH its bytes to the Location",
    status=201,
)

TUS_VERSION_ERROR = error_response(
    "`Tus-Resumable` is missing or not 1.0.0 (the answer carries `Tus-Version`).",
    error_example(
        "Tus version",
        message="Only tus 1.0.0 is supported: send `Tus-Resumable: 1.0.0`.",
        code="tus_version_unsupported",
    ),
)

CREATE_ERRORS = {
    400: error_response(
        "Upload-Length or Upload-Metadata is missing or invalid (`filename` is required; the other keys are "
        "the multipart upload's options).",
        error_example(
            "No filename",
            message="Upload-Metadata must name the file: `filename <base64 name>`.",
            code="validation_error",
            errors={"filename": ["Upload-Metadata must name the file: `filename <base64 name>`."]},
        ),
    ),
    412: TUS_VERSION_ERROR,
    413: error_response(
        "Upload-Length is over the upload limit.",
        error_example(
            "Too large",
            message="The video is larger than the 100 MB upload limit.",
            code="file_too_large",
            errors={"Upload-Length": ["The video is larger than the 100 MB upload limit."]},
        ),
    ),
    429: error_response(
        "Quota exhausted (a video would not fit) or rate limit hit; see `Retry-After`.",
        QUOTA_EXCEEDED,
        RATE_LIMITED,
    ),
}

APPEND_ERRORS = {
    404: error_response(
        "No such upload (or another user's).",
        error_example("Not found", message="Upload not found.", code="upload_not_found"),
    ),
    409: error_response(
        "Upload-Offset is not where the upload is: HEAD it and resume from `Upload-Offset`.",
        error_example(
            "Wrong offset",
            message="Upload-Offset is 0, but the upload is at 5242880.",
            code="upload_offset_mismatch",
        ),
    ),
    410: error_response(
        "The upload expired (see `Upload-Expires`); its bytes are gone.",
        error_example(
            "Expired",
            message="The upload expired and its bytes were removed; start a new upload.",
            code="upload_expired",
        ),
    ),
    412: TUS_VERSION_ERROR,
    413: error_response(
        "The chunk goes past Upload-Length.",
        error_example(
            "Past the length",
            message="The chunk (1024 bytes at 52428288) goes past Upload-Length (52428800 bytes).",
            code="upload_length_exceeded",
        ),
    ),
    415: error_response(
        "Not `application/offset+octet-stream`, or (on the last chunk) not an accepted video.",
        error_example(
            "Content type",
            message="A PATCH body must be sent as Content-Type: application/offset+octet-stream.",
            code="unsupported_media_type",
        ),
    ),
}
