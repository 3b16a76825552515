"""Output serializers of the job event stream: each event's `data` (camelCased by the view)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from video.events.stream import StatusEvent


class JobProgressEventSerializer(serializers.Serializer):
    """`event: progress`: the job is processing and this far along (0-100)."""

    job_id = serializers.UUIDField(source="state.job_id")
    status = serializers.CharField(source="state.status")
    progress = serializers.IntegerField(source="state.progress")


class JobStatusEventSerializer(JobProgressEventSerializer):
    """`event: status`: the job's state (the first event, and each change of status); after a
    terminal one (`completed`, `failed`, `cancelled`) the stream closes."""

    error = serializers.SerializerMethodField()
    error_code = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField(source="state.updated_at")

    @extend_schema_field(OpenApiTypes.STR)
    def get_error(self, event: StatusEvent) -> str | None:
        return event.state.error or None

    @extend_schema_field(OpenApiTypes.STR)
    def get_error_code(self, event: StatusEvent) -> str | None:
        return event.state.error_code or None
