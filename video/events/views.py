"""`GET /api/video/jobs/{id}/events`: the job's progress as Server-Sent Events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from accounts.authentication import request_user
from core.api.casing import camelize
from video import selectors
from video.events.serializers import JobProgressEventSerializer, JobStatusEventSerializer
from video.events.stream import JobEvent, KeepAlive, ProgressEvent, StatusEvent, job_state_of, video_job_events

EVENT_STREAM = "text/event-stream"
# How long a client waits before reconnecting after the stream ends early (milliseconds).
RETRY_MS = 2000

_EVENT_SERIALIZERS: dict[type[Any], tuple[str, type[BaseSerializer[Any]]]] = {
    StatusEvent: ("status", JobStatusEventSerializer),
    ProgressEvent: ("progress", JobProgressEventSerializer),
}

STREAM_EXAMPLE = OpenApiExample(
    "Events",
    media_type=EVENT_STREAM,
    response_only=True,
    value=(
        "retry: 2000\n\n"
        "id: queued-0\nevent: status\n"
        'data: {"jobId": "34e08505-e2ba-4533-8fd3-45616472020d", "status": "queued", "progress": 0, '
        '"error": null, "errorCode": null, "updatedAt": "2026-12-06T10:00:00Z"}\n\n'
        "id: processing-0\nevent: status\n"
        'data: {"jobId": "34e08505-e2ba-4533-8fd3-45616472020d", "status": "processing", "progress": 0, '
        '"error": null, "errorCode": null, "updatedAt": "2026-12-06T10:00:01Z"}\n\n'
        "id: processing-40\nevent: progress\n"
        'data: {"jobId": "34e08505-e2ba-4533-8fd3-45616472020d", "status": "processing", "progress": 40}\n\n'
        ": keep-alive\n\n"
        "id: completed-100\nevent: status\n"
        'data: {"jobId": "34e08505-e2ba-4533-8fd3-45616472020d", "status": "completed", "progress": 100, '
        '"error": null, "errorCode": null, "updatedAt": "2026-12-06T10:00:09Z"}\n\n'
    ),
)


class _AnyAccepted(DefaultContentNegotiation):
    """`Accept: text/event-stream` is what an EventSource sends; errors still answer JSON."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def _sse(events: Iterator[JobEvent]) -> Iterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    for event in events:
        if isinstance(event, KeepAlive):
            yield ": keep-alive\n\n"
            continue
        name, serializer_class = _EVENT_SERIALIZERS[type(event)]
        data = json.dumps(camelize(serializer_class(event).data), cls=DjangoJSONEncoder)
        yield f"id: {event.state.event_id}\nevent: {name}\ndata: {data}\n\n"


class VideoJobEventsView(APIView):
    content_negotiation_class = _AnyAccepted

    @extend_schema(
        tags=["video"],
        summary="Live progress of a video job (Server-Sent Events)",
        description="`status` events (the first one at once: the current state, also after a reconnect with "
        "`Last-Event-ID`) and `progress` events while the job runs; the stream closes after a terminal status "
        "(`completed`, `failed`, `cancelled`). Comments (`: keep-alive`) keep idle connections open. A stream "
        "is closed after a few minutes; reconnect (EventSource does) to go on.",
        parameters=[
            OpenApiParameter(
                "Last-Event-ID",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="The last event id seen: the stream starts with the current state.",
            )
        ],
        responses={
            (200, EVENT_STREAM): OpenApiResponse(
                JobStatusEventSerializer,
                description="`data` of a `status` event (`progress` events carry `jobId`, `status`, `progress`).",
                examples=[STREAM_EXAMPLE],
            ),
            404: OpenApiResponse(description="No such job (or another user's)."),
        },
    )
    def get(self, request: Request, job_id: uuid.UUID) -> StreamingHttpResponse:
        job = selectors.video_job_get(user=request_user(request), job_id=job_id)
        response = StreamingHttpResponse(_sse(video_job_events(first=job_state_of(job))), content_type=EVENT_STREAM)
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx would otherwise hold the events back
        return response
