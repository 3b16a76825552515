from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from rest_framework import serializers

from ai_services.models import AIJob, Conversation, Message
from ai_services.providers.base import AUDIO_FORMATS, IMAGE_DETAILS
from ai_services.selectors import LAST_MESSAGE_PREVIEW_CHARS

FILTER_MAX_KEYS = 20
_DATETIME = serializers.DateTimeField()  # renders like a declared DateTimeField (current zone)


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, booleans and objects instead of turning them into text."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- Input -----------------------------------------------------------------------------------


class ChatInputSerializer(serializers.Serializer):
    message = StrictCharField()
    conversation_id = serializers.UUIDField(required=False, allow_null=True)
    model = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=100)
    system_prompt = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=8000)
    stream = serializers.BooleanField(required=False, default=False)
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0.0, max_value=2.0)
    max_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    use_documents = serializers.BooleanField(
        required=False, default=False, help_text="Answer from the user's own documents (their embeddings)."
    )
    document_ids = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        max_length=100,
        help_text="With `useDocuments`: only these documents (ids of other users' documents find nothing).",
    )
    filter = serializers.JSONField(
        required=False,
        default=dict,
        help_text="With `useDocuments`: only chunks whose metadata has every key with exactly this value.",
    )

    def validate_filter(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict) or len(value) > FILTER_MAX_KEYS:
            raise serializers.ValidationError(f"Must be a JSON object of at most {FILTER_MAX_KEYS} metadata keys.")
        for key, item in value.items():
            if not key or not (item is None or isinstance(item, str | int | float | bool)):
                raise serializers.ValidationError(
                    "Keys must not be empty; values must be a string, number, boolean or null (exact match)."
                )
        return value

    def validate_message(self, value: str) -> str:
        limit = settings.AI_CHAT_MAX_MESSAGE_CHARS
        if len(value) > limit:
            raise serializers.ValidationError(f"Ensure this field has no more than {limit} characters.")
        return value

    def validate_max_tokens(self, value: int | None) -> int | None:
        limit = settings.AI_CHAT_MAX_TOKENS_LIMIT
        if value is not None and value > limit:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {limit}.")
        return value


class ConversationUpdateSerializer(serializers.Serializer):
    title = StrictCharField(max_length=200)


class _SpeechToTextBase(serializers.Serializer):
    audio = serializers.FileField()
    language = StrictCharField(required=False, allow_blank=True, max_length=8)
    prompt = StrictCharField(required=False, allow_blank=True, max_length=1000)

    def validate_language(self, value: str) -> str:
        value = value.strip().lower()
        if value and not (value.isascii() and value.isalpha() and 2 <= len(value) <= 3):
            raise serializers.ValidationError("Use an ISO 639-1 code such as 'en' or 'fr'.")
        return value


# `async` is a Python keyword, so the field is declared by name.
SpeechToTextSerializer = type(
    "SpeechToTextSerializer",
    (_SpeechToTextBase,),
    {"async": serializers.BooleanField(required=False, default=False), "__module__": __name__},
)


class TextToSpeechSerializer(serializers.Serializer):
    text = StrictCharField()
    voice = StrictCharField(required=False, default="alloy", max_length=32)
    format = serializers.ChoiceField(choices=AUDIO_FORMATS, required=False, default="mp3")
    speed = serializers.FloatField(required=False, default=1.0, min_value=0.25, max_value=4.0)

    def validate_text(self, value: str) -> str:
        limit = settings.AI_TTS_MAX_CHARS
        if len(value) > limit:
            raise serializers.ValidationError(f"Ensure this field has no more than {limit} characters.")
        return value


class AnalyzeImageSerializer(serializers.Serializer):
    image = serializers.FileField()
    prompt = StrictCharField(required=False, allow_blank=True, max_length=2000)
    detail = serializers.ChoiceField(choices=IMAGE_DETAILS, required=False, default="auto")


# --- Output ----------------------------------------------------------------------------------


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ["id", "role", "content", "created_at"]


class ConversationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = ["id", "title", "model", "system_prompt", "message_count", "created_at", "updated_at"]


class ConversationListSerializer(serializers.ModelSerializer):
    last_message = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = ["id", "title", "model", "message_count", "last_message", "created_at", "updated_at"]

    def get_last_message(self, conversation: Conversation) -> dict[str, Any] | None:
        # The annotations of `selectors.conversation_list`, which the model does not declare.
        annotated: Any = conversation
        content = getattr(annotated, "last_message_content", None)
        if content is None:
            return None
        if len(content) > LAST_MESSAGE_PREVIEW_CHARS:
            content = content[: LAST_MESSAGE_PREVIEW_CHARS - 1] + "…"
        return {
            "role": annotated.last_message_role,
            "content": content,
            "created_at": serializers.DateTimeField().to_representation(annotated.last_message_at),
        }


class AIJobSerializer(serializers.ModelSerializer):
    processing_time = serializers.IntegerField(source="processing_time_ms", allow_null=True)
    conversation_id = serializers.UUIDField(allow_null=True)
    # null rather than "" when there was no error, as on video jobs.
    error = serializers.SerializerMethodField()
    error_code = serializers.SerializerMethodField()

    class Meta:
        model = AIJob
        fields = [
            "id",
            "type",
            "status",
            "provider",
            "model",
            "input",
            "output",
            "tokens_used",
            "units_charged",
            "processing_time",
            "error",
            "error_code",
            "conversation_id",
            "created_at",
            "started_at",
            "completed_at",
        ]
        read_only_fields = fields

    def get_error(self, job: AIJob) -> str | None:
        return job.error or None

    def get_error_code(self, job: AIJob) -> str | None:
        return job.error_code or None


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class CitationSerializer(serializers.Serializer):
    """A chunk of the user's documents the answer was grounded in."""

    embedding_id = serializers.IntegerField()
    document_id = serializers.UUIDField()
    text = serializers.CharField(help_text="The chunk.")
    score = serializers.FloatField(help_text="Cosine similarity to the message (higher is closer).")
    job_id = serializers.UUIDField(
        allow_null=True, help_text="A moment of one of the user's videos: its video job (null for a document)."
    )
    start = serializers.FloatField(
        allow_null=True, help_text="A moment of one of the user's videos: where its words start, in seconds."
    )


class ChatResultSerializer(serializers.Serializer):
    """The answer of `POST /api/ai/chat`, also the `done` event of a stream (schema only)."""

    # The docstring is the published schema's description (kept as it was); this renders the body too.

    conversation_id = serializers.UUIDField(source="conversation.id")
    message = MessageSerializer()
    model = serializers.CharField()
    usage = UsageSerializer()
    job_id = serializers.UUIDField(source="job.id")
    citations = CitationSerializer(
        many=True, help_text="With `useDocuments`: the chunks used, best first (empty when none was relevant)."
    )

    def to_representation(self, outcome: Any) -> dict[str, Any]:
        # Written directly: deep-copying the nested serializers' fields for every answer cost
        # half a millisecond of the request. The declared fields describe the body (the schema
        # reads them); tests/ai_services/test_chat_result_body.py holds the two equal.
        message, usage = outcome.message, outcome.usage
        return {
            "conversation_id": str(outcome.conversation.id),
            "message": {
                "id": str(message.id),
                "role": message.role,
                "content": message.content,
                "created_at": _DATETIME.to_representation(message.created_at),
            },
            "model": outcome.model,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
            "job_id": str(outcome.job.id),
            "citations": CitationSerializer(outcome.citations, many=True).data if outcome.citations else [],
        }


class TranscriptSegmentSerializer(serializers.Serializer):
    start = serializers.FloatField()
    end = serializers.FloatField()
    text = serializers.CharField()


class TranscriptionSerializer(serializers.Serializer):
    """The answer of a synchronous `POST /api/ai/speech-to-text` (schema only)."""

    # The docstring is the published schema's description (kept as it was); this renders the body too.

    text = serializers.CharField(source="output.text")
    language = serializers.CharField(source="output.language")
    duration = serializers.FloatField(source="output.duration", help_text="Seconds.")
    segments = TranscriptSegmentSerializer(source="output.segments", many=True)
    job_id = serializers.UUIDField(source="id")


class QueuedJobSerializer(AIJobSerializer):
    """A queued job as `POST /api/ai/speech-to-text` with `async` answers it (schema only)."""

    # The docstring is the published schema's description (kept as it was); this renders the body too.

    # A plain string: the job's status choices used by a second component would give the
    # schema's AIJob status enum a hash for a name.
    status = serializers.CharField(help_text="Always `pending` here.")
    job_id = serializers.UUIDField(source="id", help_text="The same as `id`: poll `/api/ai/jobs/{jobId}`.")

    class Meta(AIJobSerializer.Meta):
        fields = [*AIJobSerializer.Meta.fields, "job_id"]
        read_only_fields = fields


class ImageAnalysisSerializer(serializers.Serializer):
    """The answer of `POST /api/ai/analyze-image` (schema only)."""

    # The docstring is the published schema's description (kept as it was); this renders the body too.

    analysis = serializers.CharField()
    model = serializers.CharField()
    usage = UsageSerializer()
    job_id = serializers.UUIDField(source="job.id")
    # Absent from the body when the provider gave none (a missing optional field is skipped).
    text = serializers.CharField(
        source="details.text", required=False, help_text="The local engine only: the text read in the image."
    )
    facts = serializers.DictField(
        source="details.facts", required=False, help_text="The local engine only: what it measured."
    )


# --- Chat stream events (Server-Sent Events; not in the schema, which describes `done` above) ---


class EventDateTimeField(serializers.DateTimeField):
    """A time as the event stream has always written it: ECMA-262, to the millisecond."""

    def to_representation(self, value: datetime) -> str:
        return str(DjangoJSONEncoder().default(value))


class EventMessageSerializer(MessageSerializer):
    created_at = EventDateTimeField()


class ChatStartEventSerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField()
    job_id = serializers.UUIDField()
    model = serializers.CharField()


class ChatDeltaEventSerializer(serializers.Serializer):
    content = serializers.CharField()


class ChatDoneEventSerializer(serializers.Serializer):
    """The answer's body (`ChatResultSerializer`), from a `StreamDone`."""

    conversation_id = serializers.UUIDField(source="outcome.conversation.id")
    message = EventMessageSerializer(source="outcome.message")
    model = serializers.CharField(source="outcome.model")
    usage = UsageSerializer(source="outcome.usage")
    job_id = serializers.UUIDField(source="outcome.job.id")
    citations = CitationSerializer(source="outcome.citations", many=True)


class ChatCitationsEventSerializer(serializers.Serializer):
    """A grounded chat's sources, before the first token (`StreamCitations`)."""

    citations = CitationSerializer(many=True)


class ChatErrorEventSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    code = serializers.CharField()
    job_id = serializers.UUIDField()
