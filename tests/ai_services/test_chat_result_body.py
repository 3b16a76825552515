"""The chat answer's body written directly is what its declared fields render."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from rest_framework import serializers

from ai_services.models import AIJob, Conversation, Message
from ai_services.providers import Usage
from ai_services.serializers import ChatResultSerializer
from ai_services.services.chat import ChatOutcome
from ai_services.services.grounding import RetrievedChunk
from quotas.modalities import CHAT

pytestmark = pytest.mark.django_db


def _outcome(user, citations: list[RetrievedChunk]) -> ChatOutcome:
    conversation = Conversation.objects.create(user=user, title="Hi", message_count=2)
    asked = Message.objects.create(conversation=conversation, role=Message.Role.USER, content="Hi", position=1)
    answer = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, content="Hello — ça va?", position=2
    )
    answer.created_at = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    job = AIJob.objects.create(id=uuid.uuid4(), user=user, type=CHAT.value, status=AIJob.Status.COMPLETED)
    return ChatOutcome(
        conversation=conversation,
        user_message=asked,
        message=answer,
        model="gpt-4o-mini",
        usage=Usage(prompt_tokens=12, completion_tokens=7),
        job=job,
        citations=citations,
    )


@pytest.mark.parametrize("grounded", [False, True], ids=["plain", "grounded"])
def test_direct_body_matches_the_declared_fields(user, settings, grounded) -> None:
    settings.TIME_ZONE = "Europe/Paris"  # DateTimeField renders in the current zone: keep that
    citations = [
        RetrievedChunk(embedding_id=4, document_id=uuid.uuid4(), text="A chunk.", score=0.81),
        RetrievedChunk(
            embedding_id=9, document_id=uuid.uuid4(), text="Words.", score=0.5, job_id=uuid.uuid4(), start=12.5
        ),
    ]
    outcome = _outcome(user, citations if grounded else [])

    direct = ChatResultSerializer(outcome).data
    by_fields = serializers.Serializer.to_representation(ChatResultSerializer(outcome), outcome)

    assert dict(direct) == dict(by_fields)
    assert direct["message"]["created_at"] == "2026-03-01T13:30:15.123456+01:00"
    assert direct["usage"] == {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
    assert len(direct["citations"]) == (2 if grounded else 0)
