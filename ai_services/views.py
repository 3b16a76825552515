"""`/api/ai/...`: thin views over `ai_services.services`.

Endpoints that call a provider are in the AI rate-limit category; reads of conversations and
jobs (which apps poll) are in the general one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from accounts.authentication import request_user
from ai_services import openapi_examples as examples
from ai_services import selectors, services
from ai_services.models import AIJob
from ai_services.providers.base import AUDIO_MIME
from ai_services.serializers import (
    AIJobSerializer,
    AnalyzeImageSerializer,
    ChatCitationsEventSerializer,
    ChatDeltaEventSerializer,
    ChatDoneEventSerializer,
    ChatErrorEventSerializer,
    ChatInputSerializer,
    ChatResultSerializer,
    ChatStartEventSerializer,
    ConversationListSerializer,
    ConversationSerializer,
    ConversationUpdateSerializer,
    ImageAnalysisSerializer,
    MessageSerializer,
    QueuedJobSerializer,
    SpeechToTextSerializer,
    TextToSpeechSerializer,
    TranscriptionSerializer,
)
from ai_services.services.grounding import GroundingRequest
from ai_services.services.streaming import (
    StreamCitations,
    StreamDelta,
    StreamDone,
    StreamEvent,
    StreamFailed,
    StreamIdle,
    StreamStart,
)
from core import ratelimit
from core.api.casing import camelize
from core.api.envelope import ok
from core.api.pagination import PagePagination, paginate
from core.api.parsers import CamelCaseFormParser, CamelCaseMultiPartParser

EVENT_STREAM = "text/event-stream"


class JSONWhateverAccepted(DefaultContentNegotiation):
    """Answers JSON even to `Accept: text/event-stream`: a chat that streams returns its own
    event-stream response, and its errors are JSON envelopes like everywhere else."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def wants_stream(request: Request, stream: bool) -> bool:
    return stream or EVENT_STREAM in request.headers.get("Accept", "")


_EVENT_SERIALIZERS: dict[type[Any], tuple[str, type[BaseSerializer[Any]]]] = {
    StreamStart: ("start", ChatStartEventSerializer),
    StreamCitations: ("citations", ChatCitationsEventSerializer),
    StreamDelta: ("delta", ChatDeltaEventSerializer),
    StreamDone: ("done", ChatDoneEventSerializer),
    StreamFailed: ("error", ChatErrorEventSerializer),
}


def _sse(events: Iterator[StreamEvent]) -> Iterator[str]:
    """The chat stream as Server-Sent Events, each event's data from its serializer."""
    for event in events:
        if isinstance(event, StreamIdle):
            yield ": keep-alive\n\n"  # an SSE comment keeps proxies from closing an idle stream
            continue
        name, serializer_class = _EVENT_SERIALIZERS[type(event)]
        data = json.dumps(camelize(serializer_class(event).data), cls=DjangoJSONEncoder)
        yield f"event: {name}\ndata: {data}\n\n"


class ChatView(APIView):
    rate_category = ratelimit.AI
    content_negotiation_class = JSONWhateverAccepted

    @extend_schema(
        tags=["ai"],
        request=ChatInputSerializer,
        responses={
            200: OpenApiResponse(
                ChatResultSerializer,
                description="With `stream: true` or `Accept: text/event-stream`, Server-Sent Events instead: "
                "`start`, with `useDocuments` `citations` (`{citations}`), `delta` (`{content}`), then `done` "
                "(this same object) or `error`.",
            ),
            **examples.AI_ERRORS,
        },
        examples=[
            examples.CHAT_REQUEST,
            examples.CHAT_FOLLOW_UP_REQUEST,
            examples.CHAT_DOCUMENTS_REQUEST,
            examples.CHAT_ANSWER,
            examples.CHAT_GROUNDED_ANSWER,
        ],
    )
    def post(self, request: Request) -> HttpResponseBase:
        body = ChatInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        plan = services.chat_plan(
            user=request_user(request),
            message=data["message"],
            conversation_id=data.get("conversation_id"),
            model=data.get("model") or None,
            system_prompt=data.get("system_prompt"),
            temperature=data.get("temperature"),
            max_tokens=data.get("max_tokens"),
            grounding=GroundingRequest(document_ids=data.get("document_ids"), metadata_filter=data["filter"])
            if data["use_documents"]
            else None,
        )
        if wants_stream(request, data["stream"]):
            response = StreamingHttpResponse(_sse(services.chat_stream(plan=plan)), content_type=EVENT_STREAM)
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"  # nginx would otherwise hold the events back
            return response
        outcome = services.chat_send(plan=plan)
        return ok(ChatResultSerializer(outcome).data, message="Chat response generated")


class ConversationListView(APIView):
    @extend_schema(
        tags=["ai"], responses={200: ConversationListSerializer(many=True)}, examples=[examples.CONVERSATIONS]
    )
    def get(self, request: Request) -> Response:
        return paginate(
            request=request,
            queryset=selectors.conversation_list(user=request_user(request)),
            serializer_class=ConversationListSerializer,
        )


class ConversationDetailView(APIView):
    @extend_schema(
        tags=["ai"],
        parameters=[
            OpenApiParameter("page", OpenApiTypes.INT, description="Page of messages (oldest first)."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="Messages per page (1-100, default 20)."),
        ],
        responses={200: ConversationSerializer},
        examples=[examples.CONVERSATION],
    )
    def get(self, request: Request, conversation_id: UUID) -> Response:
        conversation = selectors.conversation_get(user=request_user(request), conversation_id=conversation_id)
        paginator = PagePagination()
        page = paginator.paginate_queryset(selectors.conversation_messages(conversation=conversation), request)
        data = {**ConversationSerializer(conversation).data, "messages": MessageSerializer(page, many=True).data}
        return ok(data, meta=paginator.get_meta())

    @extend_schema(
        tags=["ai"],
        request=ConversationUpdateSerializer,
        responses={200: ConversationSerializer},
        examples=[examples.CONVERSATION_UPDATE_REQUEST, examples.CONVERSATION_UPDATED],
    )
    def patch(self, request: Request, conversation_id: UUID) -> Response:
        conversation = selectors.conversation_get(user=request_user(request), conversation_id=conversation_id)
        body = ConversationUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation = services.conversation_update(conversation=conversation, title=body.validated_data["title"])
        return ok(ConversationSerializer(conversation).data, message="Conversation updated")

    @extend_schema(tags=["ai"], request=None, responses={200: examples.CONVERSATION_DELETED})
    def delete(self, request: Request, conversation_id: UUID) -> Response:
        conversation = selectors.conversation_get(user=request_user(request), conversation_id=conversation_id)
        services.conversation_delete(conversation=conversation)
        return ok(None, message="Conversation deleted")


class SpeechToTextView(APIView):
    rate_category = ratelimit.AI
    body_limit_setting = "AI_AUDIO_MAX_BYTES"
    upload_field = "audio"
    parser_classes = [CamelCaseMultiPartParser, CamelCaseFormParser]

    @extend_schema(
        tags=["ai"],
        request={"multipart/form-data": SpeechToTextSerializer},
        responses={
            200: TranscriptionSerializer,
            202: OpenApiResponse(QueuedJobSerializer, description="With `async`: poll `/api/ai/jobs/{jobId}`."),
            **examples.AUDIO_ERRORS,
            **examples.AI_ERRORS,
        },
        examples=[
            examples.TRANSCRIBE_REQUEST,
            examples.TRANSCRIBE_ASYNC_REQUEST,
            examples.TRANSCRIBED,
            examples.TRANSCRIPTION_QUEUED,
        ],
    )
    def post(self, request: Request) -> Response:
        body = SpeechToTextSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        job = services.speech_transcribe(
            user=request_user(request),
            upload=data["audio"],
            language=data.get("language") or None,
            prompt=data.get("prompt") or None,
            run_async=data["async"],
        )
        if data["async"]:
            return ok(QueuedJobSerializer(job).data, message="Transcription queued", status=status.HTTP_202_ACCEPTED)
        return ok(TranscriptionSerializer(job).data, message="Audio transcribed")


class TextToSpeechView(APIView):
    rate_category = ratelimit.AI

    @extend_schema(
        tags=["ai"],
        request=TextToSpeechSerializer,
        responses={
            **{
                (200, mime): OpenApiResponse(OpenApiTypes.BINARY, description=f"The speech audio ({fmt}).")
                for fmt, mime in AUDIO_MIME.items()
            },
            **examples.AI_ERRORS,
        },
        examples=[examples.SPEAK_REQUEST, examples.SPEAK_OPTIONS_REQUEST],
    )
    def post(self, request: Request) -> HttpResponse:
        body = TextToSpeechSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        outcome = services.speech_synthesize(
            user=request_user(request), text=data["text"], voice=data["voice"], fmt=data["format"], speed=data["speed"]
        )
        response = HttpResponse(outcome.audio, content_type=outcome.content_type)
        response["Content-Length"] = str(len(outcome.audio))
        response["Content-Disposition"] = f'inline; filename="speech.{outcome.format}"'
        # Generated for this request only: nothing for a shared cache to keep.
        response["Cache-Control"] = "private, no-store"
        response["X-AI-Job-Id"] = str(outcome.job.id)
        return response


class AnalyzeImageView(APIView):
    rate_category = ratelimit.AI
    body_limit_setting = "AI_IMAGE_MAX_BYTES"
    upload_field = "image"
    parser_classes = [CamelCaseMultiPartParser, CamelCaseFormParser]

    @extend_schema(
        tags=["ai"],
        request={"multipart/form-data": AnalyzeImageSerializer},
        responses={200: ImageAnalysisSerializer, **examples.IMAGE_ERRORS, **examples.AI_ERRORS},
        examples=[examples.ANALYZE_IMAGE_REQUEST, examples.IMAGE_ANALYZED],
    )
    def post(self, request: Request) -> Response:
        body = AnalyzeImageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        outcome = services.image_analyze(
            user=request_user(request), upload=data["image"], prompt=data.get("prompt"), detail=data["detail"]
        )
        return ok(ImageAnalysisSerializer(outcome).data, message="Image analyzed")


class JobListView(APIView):
    @extend_schema(
        tags=["ai"],
        parameters=[
            OpenApiParameter("type", OpenApiTypes.STR, enum=AIJob.Type.values),
            OpenApiParameter("status", OpenApiTypes.STR, enum=["pending", "processing", "completed", "failed"]),
        ],
        responses={200: AIJobSerializer(many=True)},
        examples=[examples.JOBS],
    )
    def get(self, request: Request) -> Response:
        jobs = selectors.job_list(
            user=request_user(request),
            job_type=request.query_params.get("type") or None,
            status=request.query_params.get("status") or None,
        )
        return paginate(request=request, queryset=jobs, serializer_class=AIJobSerializer)


class JobDetailView(APIView):
    @extend_schema(tags=["ai"], responses={200: AIJobSerializer}, examples=[examples.JOB])
    def get(self, request: Request, job_id: UUID) -> Response:
        return ok(AIJobSerializer(selectors.job_get(user=request_user(request), job_id=job_id)).data)
