"""`/api/ai/voice`: a whole voice turn (speech in, answer, speech out), and its spoken reply."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.http import FileResponse, HttpResponseBase, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from accounts.authentication import request_user
from ai_services import openapi_examples as examples
from ai_services.providers.base import AUDIO_MIME
from ai_services.serializers import ChatCitationsEventSerializer, ChatDeltaEventSerializer
from ai_services.services.grounding import GroundingRequest
from ai_services.services.voice import (
    VoiceAudio,
    VoiceCitations,
    VoiceDelta,
    VoiceEvent,
    VoiceFailed,
    VoiceTranscript,
    voice_audio_get,
    voice_turn_begin,
    voice_turn_events,
    voice_turn_run,
)
from ai_services.views import EVENT_STREAM, JSONWhateverAccepted, wants_stream
from ai_services.voice_serializers import (
    VoiceAudioEventSerializer,
    VoiceErrorEventSerializer,
    VoiceInputSerializer,
    VoiceResultSerializer,
    VoiceTranscriptEventSerializer,
)
from core import ratelimit
from core.api.casing import camelize
from core.api.envelope import ok
from core.api.parsers import CamelCaseFormParser, CamelCaseMultiPartParser

_EVENT_SERIALIZERS: dict[type[Any], tuple[str, type[BaseSerializer[Any]]]] = {
    VoiceTranscript: ("transcript", VoiceTranscriptEventSerializer),
    VoiceCitations: ("citations", ChatCitationsEventSerializer),
    VoiceDelta: ("delta", ChatDeltaEventSerializer),
    VoiceAudio: ("audio", VoiceAudioEventSerializer),
    VoiceFailed: ("error", VoiceErrorEventSerializer),
}


def _sse(events: Iterator[VoiceEvent]) -> Iterator[str]:
    for event in events:
        name, serializer_class = _EVENT_SERIALIZERS[type(event)]
        data = json.dumps(camelize(serializer_class(event).data), cls=DjangoJSONEncoder)
        yield f"event: {name}\ndata: {data}\n\n"


class VoiceView(APIView):
    rate_category = ratelimit.AI
    body_limit_setting = "AI_AUDIO_MAX_BYTES"
    upload_field = "audio"
    parser_classes = [CamelCaseMultiPartParser, CamelCaseFormParser]
    content_negotiation_class = JSONWhateverAccepted

    @extend_schema(
        tags=["ai"],
        request={"multipart/form-data": VoiceInputSerializer},
        responses={
            200: OpenApiResponse(
                VoiceResultSerializer,
                description="Speech-to-text, chat with memory (grounded with `useDocuments`), then text-to-speech; "
                "each stage an AI job, the quota of all three reserved up front. A failed stage refunds its own "
                "and the later stages' units; the error's `stage` names it. With `stream: true` or "
                "`Accept: text/event-stream`, Server-Sent Events instead: `transcript`, `citations` (grounded), "
                "`delta` (`{content}`), then `audio` (this same object) or `error` (`{stage, message, code}`).",
            ),
            **examples.AUDIO_ERRORS,
            **examples.AI_ERRORS,
        },
        examples=[examples.VOICE_REQUEST, examples.VOICE_ANSWER],
    )
    def post(self, request: Request) -> HttpResponseBase:
        body = VoiceInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        turn = voice_turn_begin(
            user=request_user(request),
            upload=data["audio"],
            conversation_id=data.get("conversation_id"),
            voice=data["voice"],
            fmt=data["format"],
            grounding=GroundingRequest(document_ids=data.get("document_ids"), metadata_filter=data["filter"])
            if data["use_documents"]
            else None,
        )
        if wants_stream(request, data["stream"]):
            response = StreamingHttpResponse(_sse(voice_turn_events(turn=turn, stream=True)), content_type=EVENT_STREAM)
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response
        outcome = voice_turn_run(turn=turn)
        return ok(VoiceResultSerializer(outcome).data, message="Voice turn answered")


class VoiceAudioView(APIView):
    @extend_schema(
        tags=["ai"],
        responses={
            **{
                (200, mime): OpenApiResponse(OpenApiTypes.BINARY, description=f"The spoken reply ({fmt}).")
                for fmt, mime in AUDIO_MIME.items()
            },
            404: examples.VOICE_AUDIO_GONE,
        },
        description="The spoken reply of one of your voice turns, until its `audioExpiresAt` "
        "(`AI_VOICE_AUDIO_TTL_SECONDS`, an hour by default); 404 after that, or for anyone else's.",
    )
    def get(self, request: Request, job_id: UUID) -> HttpResponseBase:
        found = voice_audio_get(user=request_user(request), job_id=job_id)
        response = FileResponse(default_storage.open(found.name, "rb"), content_type=found.content_type)
        response["Content-Disposition"] = f'inline; filename="reply.{found.format}"'
        response["Cache-Control"] = "private, no-store"
        return response
