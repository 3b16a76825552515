"""`/api/video/...`: thin views over `video.services` and `video.selectors`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, HttpResponseNotModified
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.http import quote_etag
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.serializer_helpers import ReturnDict
from rest_framework.views import APIView

from accounts.authentication import request_user
from core import ratelimit
from core.api.envelope import counted, ok
from core.api.pagination import paginate
from core.api.parsers import CamelCaseMultiPartParser
from core.exceptions import InvalidUpload, NotFound, UploadTooLarge
from video import media, selectors, services, uploads
from video import openapi_examples as examples
from video.models import VideoAsset, VideoJob
from video.serializers import (
    AssetPendingSerializer,
    StoryboardQuerySerializer,
    StoryboardSerializer,
    ThumbnailQuerySerializer,
    VideoJobDeletedSerializer,
    VideoJobSerializer,
    VideoUploadSchemaSerializer,
    VideoUploadSerializer,
)

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255
# Frames and thumbnails never change under a given URL+ETag for a run; a re-run changes the ETag.
FILE_CACHE_CONTROL = "private, max-age=86400"


def _job_data(request: Request, job: VideoJob) -> ReturnDict[str, Any]:
    return VideoJobSerializer(job, context={"request": request}).data


def _file_response(request: Request, stored: services.StoredFile, *, filename: str) -> HttpResponseBase:
    """Stream a stored file with its type, length and validators; 304 when the client has it."""
    if_none_match = request.headers.get("If-None-Match", "")
    if stored.etag and stored.etag in {tag.strip() for tag in if_none_match.split(",")}:
        not_modified = HttpResponseNotModified()
        not_modified["ETag"] = stored.etag
        not_modified["Cache-Control"] = FILE_CACHE_CONTROL
        return not_modified
    response: HttpResponseBase
    if stored.content is not None:
        response = HttpResponse(stored.content, content_type=stored.content_type)
    else:
        try:
            handle = default_storage.open(stored.name, "rb")
        except FileNotFoundError:
            raise NotFound("The file is no longer available.", code="file_missing") from None
        response = FileResponse(handle, content_type=stored.content_type)
    response["Content-Length"] = str(stored.size)
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = FILE_CACHE_CONTROL
    response["ETag"] = quote_etag(stored.etag)
    return response


def _asset_pending(asset: VideoAsset) -> Response:
    retry_after = services.ASSET_RETRY_AFTER
    return ok(
        AssetPendingSerializer({"status": "processing", "retry_after": retry_after}).data,
        message=f"The {asset.get_kind_display().lower()} is being made; ask again in {counted(retry_after, 'second')}",
        status=status.HTTP_202_ACCEPTED,
        headers={"Retry-After": str(retry_after)},
    )


class VideoUploadView(APIView):
    rate_category = ratelimit.UPLOAD
    body_limit_setting = "VIDEO_MAX_UPLOAD_BYTES"
    upload_field = "video"
    parser_classes = [CamelCaseMultiPartParser]

    @extend_schema(
        tags=["video"],
        request={"multipart/form-data": VideoUploadSchemaSerializer},
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="A retried upload with the same key returns the first job.",
            )
        ],
        responses={202: VideoJobSerializer, **examples.UPLOAD_ERRORS},
        examples=[examples.UPLOAD_REQUEST, examples.UPLOADED, examples.UPLOAD_REPLAYED],
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
        # Printable only: the key is stored and looked up, and a NUL is a 500 on PostgreSQL.
        if len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
            uploads.drain(request._request)
            raise InvalidUpload(f"{IDEMPOTENCY_HEADER} must be at most {MAX_IDEMPOTENCY_KEY} printable characters.")
        user = request_user(request)
        existing = services.video_job_find_by_idempotency_key(user=user, key=key)
        if existing is not None:
            # The first upload with this key already made the job: the body is read and dropped.
            uploads.drain(request._request)
            return ok(
                _job_data(request, existing),
                message="Video already uploaded",
                status=status.HTTP_202_ACCEPTED,
                headers={"Idempotent-Replayed": "true"},
            )
        # A declared length over the limit never gets here (core.api.body_limits answers 413 first).
        handler = uploads.install_upload_handler(request._request)
        try:
            options = VideoUploadSerializer(data=request.data)
            upload = request.FILES.get(uploads.VIDEO_FIELD)
            if handler.too_large:
                raise UploadTooLarge(
                    uploads.too_large_message(), errors={uploads.VIDEO_FIELD: [uploads.too_large_message()]}
                )
            options.is_valid(raise_exception=True)
            info = uploads.validate_video(upload)
            job, _created = services.video_job_create(
                user=user,
                upload=upload,
                info=info,
                options=services.UploadOptions(**options.validated_data),
                idempotency_key=key,
            )
        finally:
            # The temporary file is gone after this (moved into storage, or deleted if refused).
            if handler.accepted is not None:
                handler.accepted.close()
        return ok(_job_data(request, job), message="Video uploaded; processing queued", status=202)


class VideoJobListView(APIView):
    @extend_schema(
        tags=["video"],
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=list(VideoJob.Status.values)),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("limit", OpenApiTypes.INT),
        ],
        responses={200: VideoJobSerializer(many=True)},
        examples=[examples.JOBS],
    )
    def get(self, request: Request) -> Response:
        jobs = selectors.video_job_list(user=request_user(request), status=request.query_params.get("status") or None)
        return paginate(request=request, queryset=jobs, serializer_class=VideoJobSerializer)


class VideoJobDetailView(APIView):
    @extend_schema(tags=["video"], responses={200: VideoJobSerializer}, examples=[examples.JOB])
    def get(self, request: Request, job_id: uuid.UUID) -> Response:
        job = selectors.video_job_get(user=request_user(request), job_id=job_id, with_frames=True)
        return ok(_job_data(request, job))

    @extend_schema(tags=["video"], responses={200: VideoJobDeletedSerializer}, examples=[examples.JOB_DELETED])
    def delete(self, request: Request, job_id: uuid.UUID) -> Response:
        job = selectors.video_job_get(user=request_user(request), job_id=job_id)
        services.video_job_delete(job=job)
        return ok(VideoJobDeletedSerializer({"id": job_id}).data, message="Video job deleted")


class VideoFrameView(APIView):
    rate_category = ratelimit.DOWNLOAD

    @extend_schema(tags=["video"], responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 304: None, 404: None})
    def get(self, request: Request, job_id: uuid.UUID, index: int) -> HttpResponseBase:
        frame = selectors.video_frame_get(user=request_user(request), job_id=job_id, index=index)
        stored = services.frame_file(frame=frame)
        return _file_response(request, stored, filename=stored.name.rsplit("/", 1)[-1])


class VideoThumbnailView(APIView):
    rate_category = ratelimit.DOWNLOAD

    @extend_schema(
        tags=["video"],
        parameters=[ThumbnailQuerySerializer],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 304: None, 404: None, 409: None},
    )
    def get(self, request: Request, job_id: uuid.UUID) -> HttpResponseBase:
        query = ThumbnailQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        job = selectors.video_job_get(user=request_user(request), job_id=job_id)
        stored = services.video_thumbnail_get(job=job, **query.validated_data)
        return _file_response(request, stored, filename="thumbnail.jpg")


class _FormatIsOurs(DefaultContentNegotiation):
    """`?format=` chooses the storyboard's representation (json, jpg, vtt) here; DRF would
    otherwise take it as a renderer name and answer 404 for anything but json."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class VideoStoryboardView(APIView):
    rate_category = ratelimit.DOWNLOAD
    content_negotiation_class = _FormatIsOurs

    @extend_schema(
        tags=["video"],
        parameters=[StoryboardQuerySerializer],
        responses={
            (200, "application/json"): OpenApiResponse(
                StoryboardSerializer,
                description="The tile map (`format=json`, the default), the sprite (`format=jpg`) or WebVTT "
                "thumbnails (`format=vtt`).",
            ),
            (200, "image/jpeg"): OpenApiTypes.BINARY,
            (200, "text/vtt"): OpenApiTypes.STR,
            (202, "application/json"): AssetPendingSerializer,
            404: None,
            409: None,
        },
        examples=[examples.STORYBOARD, examples.STORYBOARD_PENDING],
    )
    def get(self, request: Request, job_id: uuid.UUID) -> HttpResponseBase:
        query = StoryboardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        job = selectors.video_job_get(user=request_user(request), job_id=job_id)
        asset = services.video_asset_request(job=job, kind=VideoAsset.Kind.STORYBOARD)
        if asset.status != VideoAsset.Status.READY:
            return _asset_pending(asset)
        fmt = query.validated_data["format"]
        sprite_url = request.build_absolute_uri(reverse("video-storyboard", kwargs={"job_id": job.id})) + "?format=jpg"
        if fmt == "jpg":
            return _file_response(
                request, services.asset_file(asset=asset, content_type="image/jpeg"), filename="storyboard.jpg"
            )
        if fmt == "vtt":
            body = media.storyboard_vtt(asset.data, sprite_url)
            response = HttpResponse(body, content_type="text/vtt; charset=utf-8")
            response["Cache-Control"] = FILE_CACHE_CONTROL
            return response
        return ok(StoryboardSerializer({**asset.data, "sprite_url": sprite_url, "status": "ready"}).data)


class VideoPreviewView(APIView):
    rate_category = ratelimit.DOWNLOAD

    @extend_schema(
        tags=["video"],
        responses={
            (200, "image/gif"): OpenApiTypes.BINARY,
            (202, "application/json"): AssetPendingSerializer,
            404: None,
            409: None,
        },
        examples=[examples.PREVIEW_PENDING],
    )
    def get(self, request: Request, job_id: uuid.UUID) -> HttpResponseBase:
        job = selectors.video_job_get(user=request_user(request), job_id=job_id)
        asset = services.video_asset_request(job=job, kind=VideoAsset.Kind.PREVIEW_GIF)
        if asset.status != VideoAsset.Status.READY:
            return _asset_pending(asset)
        return _file_response(
            request, services.asset_file(asset=asset, content_type="image/gif"), filename="preview.gif"
        )
