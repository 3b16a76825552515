"""Input and output serializers of the voice turn (`POST /api/ai/voice`), its stream's events and
nothing else: the chat's own serializers stay in `ai_services.serializers`."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ai_services.providers.base import AUDIO_FORMATS
from ai_services.serializers import ChatInputSerializer, CitationSerializer, StrictCharField
from ai_services.services.voice import VoiceAudio


class VoiceInputSerializer(serializers.Serializer):
    audio = serializers.FileField(help_text="The spoken question: WAV, MP3, M4A or OGG.")
    conversation_id = serializers.UUIDField(required=False, allow_null=True)
    voice = StrictCharField(required=False, default="alloy", max_length=32)
    format = serializers.ChoiceField(
        choices=AUDIO_FORMATS, required=False, default="mp3", help_text="Of the spoken reply, as text-to-speech."
    )
    use_documents = serializers.BooleanField(required=False, default=False)
    document_ids = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=100)
    # A JSON text in a multipart form.
    filter = serializers.JSONField(required=False, default=dict, binary=True)
    stream = serializers.BooleanField(
        required=False, default=False, help_text="Server-Sent Events: transcript, delta..., audio."
    )

    validate_filter = ChatInputSerializer.validate_filter


class VoiceJobsSerializer(serializers.Serializer):
    transcribe = serializers.UUIDField()
    chat = serializers.UUIDField()
    speak = serializers.UUIDField()


class VoiceResultSerializer(serializers.Serializer):
    """The answer of `POST /api/ai/voice`, also the `audio` event of its stream."""

    transcript = serializers.CharField(help_text="What was heard.")
    reply = serializers.CharField(help_text="The assistant's answer, as spoken.")
    conversation_id = serializers.UUIDField()
    citations = CitationSerializer(many=True, help_text="With `useDocuments`: the chunks used, best first.")
    audio_url = serializers.CharField(help_text="GET it (authenticated) for the spoken reply, until `audioExpiresAt`.")
    audio_expires_at = serializers.DateTimeField()
    job_ids = VoiceJobsSerializer(help_text="The AI job of each stage, in the job history.")


class VoiceTranscriptEventSerializer(serializers.Serializer):
    transcript = serializers.CharField()
    conversation_id = serializers.UUIDField(allow_null=True)
    job_id = serializers.UUIDField()


class VoiceAudioEventSerializer(serializers.Serializer):
    """The `audio` event: the whole result (`VoiceResultSerializer`), from a `VoiceAudio`."""

    def to_representation(self, instance: VoiceAudio) -> dict[str, Any]:
        return dict(VoiceResultSerializer(instance.outcome).data)


class VoiceErrorEventSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    stage = serializers.ChoiceField(choices=["transcribe", "chat", "speak"])
    message = serializers.CharField()
    code = serializers.CharField()
