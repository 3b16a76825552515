"""Reads of conversations and AI jobs, always scoped to their owner."""

from __future__ import annotations

from uuid import UUID

from django.db.models import OuterRef, QuerySet, Subquery

from accounts.models import User
from ai_services.models import AIJob, Conversation, Message
from core.exceptions import InvalidInput, NotFound

LAST_MESSAGE_PREVIEW_CHARS = 200


def conversation_list(*, user: User) -> QuerySet[Conversation]:
    """The user's conversations, most recently active first, each with its last message."""
    last = Message.objects.filter(conversation=OuterRef("pk")).order_by("-position")
    return (
        Conversation.objects.filter(user=user)
        .annotate(
            last_message_role=Subquery(last.values("role")[:1]),
            last_message_content=Subquery(last.values("content")[:1]),
            last_message_at=Subquery(last.values("created_at")[:1]),
        )
        .order_by("-updated_at", "-created_at")
    )


def conversation_get(*, user: User, conversation_id: UUID | str) -> Conversation:
    conversation = Conversation.objects.filter(user=user, id=conversation_id).first()
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.order_by("position")


def job_list(*, user: User, job_type: str | None = None, status: str | None = None) -> QuerySet[AIJob]:
    jobs = AIJob.objects.filter(user=user)
    if job_type:
        if job_type not in AIJob.Type.values:
            raise InvalidInput(
                f"Unknown job type '{job_type}'.", errors={"type": [f"Must be one of: {', '.join(AIJob.Type.values)}."]}
            )
        jobs = jobs.filter(type=job_type)
    if status:
        if status not in AIJob.Status.values:
            raise InvalidInput(
                f"Unknown job status '{status}'.",
                errors={"status": [f"Must be one of: {', '.join(AIJob.Status.values)}."]},
            )
        jobs = jobs.filter(status=status)
    return jobs.order_by("-created_at")


def job_get(*, user: User, job_id: UUID | str) -> AIJob:
    job = AIJob.objects.filter(user=user, id=job_id).first()
    if job is None:
        raise NotFound("AI job not found.")
    return job
