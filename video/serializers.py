from __future__ import annotations

import math
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

from core.api.casing import to_camel
from video.models import VideoFrame, VideoJob
from video.services.metadata import VideoMetadata

MIN_FRAME_INTERVAL = 0.1
MAX_FRAME_INTERVAL = 60.0
MAX_FRAMES_LIMIT = 300


def _finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise serializers.ValidationError(f"{name} must be a finite number.")
    return value


class VideoUploadSerializer(serializers.Serializer):
    """The multipart fields next to the `video` file (the file itself is validated by probing)."""

    extract_frames = serializers.BooleanField(default=True)
    frame_interval = serializers.FloatField(
        default=1.0, min_value=MIN_FRAME_INTERVAL, max_value=MAX_FRAME_INTERVAL, help_text="Seconds between frames."
    )
    max_frames = serializers.IntegerField(default=100, min_value=1, max_value=MAX_FRAMES_LIMIT)
    thumbnail_timestamp = serializers.FloatField(
        default=1.0, min_value=0.0, help_text="Seconds; clamped into the video."
    )
    captions = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Transcribe the audio into WebVTT captions (billed in speech-to-text units). "
        "Default: on when the video has an audio track.",
    )

    def validate_frame_interval(self, value: float) -> float:
        return _finite(value, "frameInterval")

    def validate_thumbnail_timestamp(self, value: float) -> float:
        return _finite(value, "thumbnailTimestamp")


class VideoUploadSchemaSerializer(VideoUploadSerializer):
    """Only for the API schema: the multipart body including the file."""

    video = serializers.FileField(help_text="MP4, MOV, AVI, WMV, MKV or WebM; at most 100 MB and 5 minutes.")


class ThumbnailQuerySerializer(serializers.Serializer):
    timestamp = serializers.FloatField(required=False, min_value=0.0)
    width = serializers.IntegerField(required=False, min_value=16, max_value=3840)

    def validate_timestamp(self, value: float) -> float:
        return _finite(value, "timestamp")


class StoryboardQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["json", "jpg", "vtt"], required=False, default="json")


def _absolute(request: Request | None, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


class VideoFrameSerializer(serializers.ModelSerializer):
    filename = serializers.SerializerMethodField()
    file_path = serializers.CharField(source="path")
    size = serializers.IntegerField(source="size_bytes")
    url = serializers.SerializerMethodField()

    class Meta:
        model = VideoFrame
        fields = ["index", "timestamp", "width", "height", "filename", "file_path", "size", "url"]

    def get_filename(self, frame: VideoFrame) -> str:
        return frame.path.rsplit("/", 1)[-1]

    def get_url(self, frame: VideoFrame) -> str:
        path = reverse("video-frame", kwargs={"job_id": frame.job_id, "index": frame.index})
        return _absolute(self.context.get("request"), path)


class VideoOptionsSerializer(serializers.Serializer):
    extract_frames = serializers.BooleanField()
    frame_interval = serializers.FloatField()
    max_frames = serializers.IntegerField()
    thumbnail_timestamp = serializers.FloatField()


class VideoMetadataField(serializers.JSONField):
    """`VideoJob.metadata`, stored snake_case (`VideoMetadata`), rendered with the camelCase keys
    clients read (`hasAudio`) in the shape's order. The envelope leaves `metadata` values as they
    are (elsewhere they are the user's own JSON), so the keys are converted here."""

    def to_representation(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        known = [key for key in VideoMetadata.__annotations__ if key in value]
        ordered = known + [key for key in value if key not in VideoMetadata.__annotations__]
        return {to_camel(key): value[key] for key in ordered}


class VideoJobSerializer(serializers.ModelSerializer):
    """The job as the mobile app reads it (upload answer, list items and details)."""

    options = serializers.SerializerMethodField()
    metadata = VideoMetadataField()
    frames = VideoFrameSerializer(many=True, read_only=True)
    frame_count = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    storyboard_url = serializers.SerializerMethodField()
    preview_url = serializers.SerializerMethodField()
    size = serializers.IntegerField(source="size_bytes")

    class Meta:
        model = VideoJob
        fields = [
            "id",
            "filename",
            "status",
            "progress",
            "error",
            "options",
            "metadata",
            "duration",
            "size",
            "container",
            "frame_count",
            "frames",
            "thumbnail_url",
            "storyboard_url",
            "preview_url",
            "attempts",
            "created_at",
            "updated_at",
            "started_at",
            "completed_at",
        ]

    @extend_schema_field(VideoOptionsSerializer)
    def get_options(self, job: VideoJob) -> dict[str, Any]:
        return {
            "extract_frames": job.extract_frames,
            "frame_interval": job.frame_interval,
            "max_frames": job.max_frames,
            "thumbnail_timestamp": job.thumbnail_timestamp,
        }

    def get_frame_count(self, job: VideoJob) -> int:
        return len(job.frames.all())

    @extend_schema_field(OpenApiTypes.STR)
    def get_error(self, job: VideoJob) -> str | None:
        return job.error or None

    def _url(self, name: str, job: VideoJob) -> str:
        return _absolute(self.context.get("request"), reverse(name, kwargs={"job_id": job.id}))

    def get_thumbnail_url(self, job: VideoJob) -> str:
        return self._url("video-thumbnail", job)

    def get_storyboard_url(self, job: VideoJob) -> str:
        return self._url("video-storyboard", job)

    def get_preview_url(self, job: VideoJob) -> str:
        return self._url("video-preview", job)


class AssetPendingSerializer(serializers.Serializer):
    status = serializers.CharField()
    retry_after = serializers.IntegerField()


class VideoJobDeletedSerializer(serializers.Serializer):
    """The answer of `DELETE /api/video/jobs/{id}` (schema only)."""

    id = serializers.UUIDField()


class StoryboardTileSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    time = serializers.FloatField(help_text="Seconds into the video.")
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    w = serializers.IntegerField()
    h = serializers.IntegerField()


class StoryboardSerializer(serializers.Serializer):
    """The storyboard's tile map (`format=json`, schema only): where each moment is in the sprite."""

    width = serializers.IntegerField()
    height = serializers.IntegerField()
    columns = serializers.IntegerField()
    rows = serializers.IntegerField()
    interval = serializers.FloatField(help_text="Seconds between tiles.")
    duration = serializers.FloatField()
    tile_width = serializers.IntegerField()
    tile_height = serializers.IntegerField()
    tiles = StoryboardTileSerializer(many=True)
    sprite_url = serializers.URLField()
    status = serializers.CharField()
