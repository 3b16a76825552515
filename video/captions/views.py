"""`GET /api/video/jobs/{id}/captions.vtt`: a job's captions as WebVTT."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.authentication import request_user
from core import ratelimit
from video.captions.selectors import video_caption_cues
from video.captions.webvtt import captions_vtt

VTT_EXAMPLE = "WEBVTT\n\n1\n00:00:00.480 --> 00:00:02.900\nThe river flows past the old mill.\n"


class _AnyAccept(DefaultContentNegotiation):
    """The body is WebVTT whatever the client accepts (`Accept: text/vtt` must not be a 406); errors
    still come as the JSON envelope."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class VideoCaptionsView(APIView):
    rate_category = ratelimit.DOWNLOAD
    content_negotiation_class = _AnyAccept

    @extend_schema(
        tags=["video"],
        responses={
            (200, "text/vtt"): OpenApiResponse(
                OpenApiTypes.STR,
                description="WebVTT captions: one cue per transcribed segment, times in seconds of the video.",
                examples=[OpenApiExample("Captions", value=VTT_EXAMPLE, media_type="text/vtt")],
            ),
            404: OpenApiResponse(description="No such job of yours, or it has no captions."),
        },
    )
    def get(self, request: Request, job_id: uuid.UUID) -> HttpResponse:
        cues = video_caption_cues(user=request_user(request), job_id=job_id)
        response = HttpResponse(captions_vtt(cues), content_type="text/vtt; charset=utf-8")
        response["Content-Disposition"] = 'inline; filename="captions.vtt"'
        # A re-run replaces the cues: revalidate rather than cache for a day.
        response["Cache-Control"] = "private, no-cache"
        return response
