"""Output serializers of resumable uploads (the body of a creation answer)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from video.resumable.models import ResumableUpload


class ResumableUploadSerializer(serializers.ModelSerializer):
    """A resumable upload: where to send its bytes, how many arrived, when it expires."""

    url = serializers.SerializerMethodField()
    upload_length = serializers.IntegerField(source="length")
    upload_offset = serializers.IntegerField(source="offset")
    job_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = ResumableUpload
        fields = ["id", "url", "filename", "upload_length", "upload_offset", "expires_at", "job_id", "created_at"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, upload: ResumableUpload) -> str:
        path = reverse("video-resumable-upload", kwargs={"upload_id": upload.id})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path
