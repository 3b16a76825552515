"""Chat with memory: plan a request (model, system prompt, the history that fits), ask the
provider, and store the exchange in its conversation; conversation edits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from ai_services import tokens as token_counter
from ai_services.models import AIJob, Conversation, Message
from ai_services.providers import ChatResult, Usage
from ai_services.providers.capabilities import chat_provider
from ai_services.selectors import conversation_get
from ai_services.services.grounding import (
    Grounding,
    GroundingRequest,
    RetrievedChunk,
    grounding_apply,
    grounding_units,
)
from ai_services.services.jobs import JobCall, ai_job_begin, ai_job_failures_recorded, ai_job_succeed, text_summary
from core.compiled_queries import row_insert
from quotas.modalities import CHAT

TITLE_CHARS = 60


@dataclass
class ChatPlan:
    """Everything decided before the provider is called."""

    user: User
    conversation: Conversation | None  # None: a new conversation, created when the answer is in
    conversation_id: uuid.UUID
    system_prompt: str
    message: str
    message_tokens: int
    messages: list[dict[str, Any]]  # what goes to the provider
    history_count: int
    model: str
    temperature: float | None
    max_tokens: int
    # Answer from the user's documents: retrieved once the job is reserved (`chat_ground`).
    grounding: GroundingRequest | None = None
    grounded: Grounding | None = None


@dataclass
class ChatOutcome:
    conversation: Conversation
    user_message: Message
    message: Message
    model: str
    usage: Usage
    job: AIJob
    citations: list[RetrievedChunk] = field(default_factory=list)


def chat_history_select(*, conversation: Conversation | None, budget: int) -> list[Message]:
    """The newest messages of `conversation` that fit in `budget` tokens, oldest first.

    Stops at the first message that does not fit, so the history sent is always a contiguous,
    most recent part of the conversation."""
    if conversation is None or budget <= 0:
        return []
    kept: list[Message] = []
    used = 0
    for message in conversation.messages.order_by("-position").iterator(chunk_size=200):
        if used + message.tokens > budget:
            break
        kept.append(message)
        used += message.tokens
    kept.reverse()
    return kept


def chat_plan(
    *,
    user: User,
    message: str,
    conversation_id: uuid.UUID | None = None,
    model: str | None = None,
    system_prompt: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    grounding: GroundingRequest | None = None,
) -> ChatPlan:
    provider = chat_provider()
    resolved_model = provider.resolve_model(CHAT.key, model)
    conversation = conversation_get(user=user, conversation_id=conversation_id) if conversation_id else None
    if system_prompt is None or not system_prompt.strip():
        system_prompt = (conversation.system_prompt if conversation else "") or settings.AI_CHAT_DEFAULT_SYSTEM_PROMPT
    system_prompt = system_prompt.strip()

    message_tokens = token_counter.count_message_tokens(message)
    system_tokens = token_counter.count_message_tokens(system_prompt)
    budget = settings.AI_CHAT_HISTORY_TOKENS - system_tokens - message_tokens - token_counter.REPLY_PRIMING_TOKENS
    if grounding is not None:  # the sources take their budget from the memory's
        budget -= settings.AI_GROUNDING_CONTEXT_TOKENS
    history = chat_history_select(conversation=conversation, budget=budget)
    messages = [{"role": "system", "content": system_prompt}]
    messages += [{"role": item.role, "content": item.content} for item in history]
    messages.append({"role": "user", "content": message})
    return ChatPlan(
        user=user,
        conversation=conversation,
        conversation_id=conversation.id if conversation else uuid.uuid4(),
        system_prompt=system_prompt,
        message=message,
        message_tokens=message_tokens,
        messages=messages,
        history_count=len(history),
        model=resolved_model,
        temperature=temperature,
        max_tokens=max_tokens or settings.AI_CHAT_DEFAULT_MAX_TOKENS,
        grounding=grounding,
    )


def chat_begin(*, plan: ChatPlan, stream: bool) -> JobCall:
    """Reserve the chat's quota and record its job, before the provider is asked. A grounded chat
    reserves the embedding units of its query with it: one reservation, settled once."""
    units = CHAT.price()
    grounding: dict[str, Any] = {}
    if plan.grounding is not None:
        units += grounding_units(query=plan.message)
        grounding = {
            "use_documents": True,
            "document_ids": [str(item) for item in plan.grounding.document_ids or []],
            "filter": plan.grounding.metadata_filter or {},
        }
    return ai_job_begin(
        user=plan.user,
        modality=CHAT,
        units=units,
        provider=chat_provider().name,
        model=plan.model,
        conversation=plan.conversation,
        summary={
            "message": text_summary(plan.message),
            "message_chars": len(plan.message),
            "conversation_id": str(plan.conversation_id),
            "new_conversation": plan.conversation is None,
            "history_messages": plan.history_count,
            "stream": stream,
            **grounding,
        },
    )


def chat_ground(*, plan: ChatPlan) -> list[RetrievedChunk]:
    """Retrieve the sources of a grounded chat into its messages (nothing for a plain chat); in
    the job, after the reservation, so a failed search is refunded with the chat."""
    if plan.grounding is None:
        return []
    plan.grounded = grounding_apply(user=plan.user, query=plan.message, request=plan.grounding, messages=plan.messages)
    return plan.grounded.citations


def chat_store(*, plan: ChatPlan, call: JobCall, result: ChatResult) -> ChatOutcome:
    """Store the exchange in the conversation and complete the job (the answer is in)."""
    estimated = result.usage is None
    usage = result.usage or Usage(
        prompt_tokens=token_counter.count_prompt_tokens(plan.messages),
        completion_tokens=token_counter.count_tokens(result.content),
    )
    with transaction.atomic():
        conversation = plan.conversation
        if conversation is None:
            # A conversation this request creates holds its two messages from the start: no other
            # request can add to it before this one commits.
            conversation = Conversation(
                id=plan.conversation_id,
                user=plan.user,
                title=_title_from(plan.message),
                model=result.model,
                system_prompt=plan.system_prompt,
                message_count=2,
            )
            row_insert(conversation)
        else:
            # Positions are taken with one conditional UPDATE, so concurrent messages in one
            # conversation never collide; only the count it left is read back.
            now = timezone.now()
            Conversation.objects.filter(pk=conversation.pk).update(
                message_count=F("message_count") + 2,
                model=result.model,
                system_prompt=plan.system_prompt,
                updated_at=now,
            )
            conversation.message_count = (
                Conversation.objects.filter(pk=conversation.pk).values_list("message_count", flat=True).get()
            )
            conversation.model, conversation.system_prompt, conversation.updated_at = (
                result.model,
                plan.system_prompt,
                now,
            )
        # Every answer writes these two rows: their INSERT is compiled once per connection.
        user_message = row_insert(
            Message(
                conversation=conversation,
                role=Message.Role.USER,
                content=plan.message,
                tokens=plan.message_tokens,
                position=conversation.message_count - 1,
            )
        )
        answer = row_insert(
            Message(
                conversation=conversation,
                role=Message.Role.ASSISTANT,
                content=result.content,
                tokens=token_counter.count_message_tokens(result.content),
                position=conversation.message_count,
            )
        )
        job = ai_job_succeed(
            call,
            output={
                "response": text_summary(result.content),
                "response_chars": len(result.content),
                "message_id": str(answer.id),
                "finish_reason": result.finish_reason or "",
                "usage_estimated": estimated,
                **_grounding_output(plan.grounded),
            },
            tokens=usage.total_tokens,
            conversation=conversation,
            model=result.model,
        )
    return ChatOutcome(
        conversation=conversation,
        user_message=user_message,
        message=answer,
        model=result.model,
        usage=usage,
        job=job,
        citations=plan.grounded.citations if plan.grounded else [],
    )


def _grounding_output(grounded: Grounding | None) -> dict[str, Any]:
    if grounded is None:
        return {}
    return {
        "citations": [chunk.embedding_id for chunk in grounded.citations],
        "context_tokens": grounded.context_tokens,
        "query_tokens": grounded.query_tokens,
        "embedding_model": grounded.model,
    }


def _title_from(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def chat_send(*, plan: ChatPlan) -> ChatOutcome:
    """Ask the provider and store the exchange; billed only when an answer comes back."""
    call = chat_begin(plan=plan, stream=False)
    with ai_job_failures_recorded(call):
        chat_ground(plan=plan)
        result = chat_provider().chat(
            messages=plan.messages, model=plan.model, temperature=plan.temperature, max_tokens=plan.max_tokens
        )
        return chat_store(plan=plan, call=call, result=result)


def conversation_update(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title.strip()
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    # Its jobs stay in the history (their conversation link is cleared by SET_NULL).
    conversation.delete()
