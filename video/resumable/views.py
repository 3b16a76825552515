"""`/api/video/uploads/`: the tus 1.0 endpoints (OPTIONS, POST; HEAD, PATCH, DELETE of one upload).

Not drf-tus: it reads each chunk into memory (`request.body`), keeps its own upload model and
temporary files outside our storage names, and ends in a save handler of its own, so it could
not reuse the multipart upload's validation, quota, idempotency and job creation or answer in
our error envelope. The protocol is small; it is written here on `video.storage`.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_user
from core import ratelimit
from core.api.envelope import ok
from core.exceptions import InvalidInput
from video.resumable import openapi_examples as examples
from video.resumable import protocol, selectors, services
from video.resumable.models import ResumableUpload
from video.resumable.serializers import ResumableUploadSerializer

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255
UPLOAD_CHUNK = "upload_chunk"

TUS_HEADER = OpenApiParameter(
    "Tus-Resumable", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True, enum=[protocol.TUS_VERSION]
)


def _upload_headers(upload: ResumableUpload) -> dict[str, str]:
    headers = {
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Upload-Expires": protocol.expires_header(upload.expires_at),
        "Cache-Control": "no-store",
    }
    if upload.job_id is not None:
        headers["Video-Job-Id"] = str(upload.job_id)
    return headers


class _TusView(APIView):
    """Every answer says which tus version it speaks; every request but OPTIONS must speak it."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method != "OPTIONS":
            protocol.check_version(request.headers.get("Tus-Resumable"))

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = protocol.TUS_VERSION
        return response


class VideoResumableUploadsView(_TusView):
    rate_categories = {"POST": ratelimit.UPLOAD}

    def get_permissions(self) -> list[BasePermission]:
        # Discovery (OPTIONS) needs no account, as with any tus server.
        return [AllowAny()] if self.request.method == "OPTIONS" else [IsAuthenticated()]

    # DRF's own stubs narrow View.options' HttpRequest to a DRF Request and ignore it the same way.
    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        """Tus discovery in the headers; the body is the envelope every OPTIONS answers with."""
        response = super().options(request, *args, **kwargs)
        response["Tus-Version"] = protocol.TUS_VERSION
        response["Tus-Extension"] = protocol.TUS_EXTENSIONS
        response["Tus-Max-Size"] = str(settings.VIDEO_MAX_UPLOAD_BYTES)
        return response

    @extend_schema(
        tags=["video"],
        summary="Create a resumable upload (tus 1.0)",
        description="The tus creation extension. `Upload-Metadata` carries `filename` (required), `filetype` and "
        "the multipart upload's options (`extractFrames`, `frameInterval`, `maxFrames`, `thumbnailTimestamp`), each "
        "base64 encoded. The answer's `Location` is where the bytes go (`PATCH`), `HEAD` tells how many arrived. "
        "When the last byte is in, the upload becomes a video job exactly as a multipart upload does "
        "(`Video-Job-Id`). `OPTIONS` reports `Tus-Version`, `Tus-Extension` and `Tus-Max-Size`.",
        request=None,
        parameters=[
            TUS_HEADER,
            OpenApiParameter("Upload-Length", OpenApiTypes.INT, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(
                "Upload-Metadata",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="Comma-separated `key base64(value)` pairs, e.g. `filename aG9saWRheS5tcDQ=`.",
            ),
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="A retried creation with the same key returns the first upload.",
            ),
        ],
        responses={201: ResumableUploadSerializer, **examples.CREATE_ERRORS},
        examples=[examples.CREATED],
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
        if len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
            raise InvalidInput(f"{IDEMPOTENCY_HEADER} must be at most {MAX_IDEMPOTENCY_KEY} printable characters.")
        length = protocol.parse_int_header("Upload-Length", request.headers.get("Upload-Length"))
        metadata = protocol.parse_metadata(request.headers.get("Upload-Metadata"))
        upload, created = services.resumable_upload_create(
            user=request_user(request), length=length, metadata=metadata, idempotency_key=key
        )
        data = ResumableUploadSerializer(upload, context={"request": request}).data
        location = request.build_absolute_uri(reverse("video-resumable-upload", kwargs={"upload_id": upload.id}))
        headers = {"Location": location, **_upload_headers(upload)}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return ok(data, message="Upload created; PATCH its bytes to the Location", status=201, headers=headers)


class VideoResumableUploadView(_TusView):
    rate_categories = {"PATCH": UPLOAD_CHUNK}
    # A chunk may be the whole video (core.api.body_limits checks the declared length first).
    body_limit_setting = "VIDEO_MAX_UPLOAD_BYTES"

    def head(self, request: Request, upload_id: uuid.UUID) -> Response:
        upload = selectors.resumable_upload_get(user=request_user(request), upload_id=upload_id)
        return Response(status=200, headers=_upload_headers(upload))

    @extend_schema(
        tags=["video"],
        summary="Append a chunk to a resumable upload (tus 1.0)",
        description="`Upload-Offset` must be the upload's offset (`HEAD` tells it); the body is "
        "`application/offset+octet-stream`. The answer's `Upload-Offset` is where the next chunk starts. On the "
        "last chunk the video is validated and queued; `Video-Job-Id` names the job.",
        parameters=[TUS_HEADER, OpenApiParameter("Upload-Offset", OpenApiTypes.INT, OpenApiParameter.HEADER)],
        request={protocol.OFFSET_CONTENT_TYPE: OpenApiTypes.BINARY},
        responses={204: OpenApiResponse(description="Stored; see `Upload-Offset`."), **examples.APPEND_ERRORS},
    )
    def patch(self, request: Request, upload_id: uuid.UUID) -> Response:
        protocol.check_content_type(request.META.get("CONTENT_TYPE"))
        upload = selectors.resumable_upload_get(user=request_user(request), upload_id=upload_id)
        offset = protocol.parse_int_header("Upload-Offset", request.headers.get("Upload-Offset"))
        content_length = protocol.parse_int_header("Content-Length", request.META.get("CONTENT_LENGTH") or "0")
        upload = services.resumable_upload_append(
            upload=upload, offset=offset, read=request._request.read, content_length=content_length
        )
        return Response(status=204, headers=_upload_headers(upload))

    @extend_schema(
        tags=["video"],
        summary="Terminate a resumable upload (tus 1.0)",
        parameters=[TUS_HEADER],
        responses={
            204: OpenApiResponse(description="The upload and its bytes are gone."),
            404: examples.APPEND_ERRORS[404],
            412: examples.TUS_VERSION_ERROR,
        },
    )
    def delete(self, request: Request, upload_id: uuid.UUID) -> Response:
        upload = selectors.resumable_upload_get(user=request_user(request), upload_id=upload_id)
        services.resumable_upload_terminate(upload=upload)
        return Response(status=204)
