"""Streamed chat: the provider's answer is read by a background thread that stores and bills it
whatever happens to the client, while the request yields the events (rendered as Server-Sent
Events by the view, through the event serializers)."""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connections

from ai_services.providers import ChatChunk, ChatResult, Usage
from ai_services.providers.capabilities import chat_provider
from ai_services.services.chat import ChatOutcome, ChatPlan, chat_begin, chat_ground, chat_store
from ai_services.services.grounding import RetrievedChunk
from ai_services.services.jobs import JobCall, ai_job_fail, ai_job_failures_recorded
from core.exceptions import ApplicationError, ProviderError

logger = logging.getLogger(__name__)

STREAM_KEEPALIVE_SECONDS = 15.0


@dataclass(frozen=True)
class StreamStart:
    conversation_id: uuid.UUID
    job_id: uuid.UUID
    model: str


@dataclass(frozen=True)
class StreamCitations:
    """A grounded chat's sources, best first, sent before the first token."""

    citations: list[RetrievedChunk]


@dataclass(frozen=True)
class StreamDelta:
    content: str


@dataclass(frozen=True)
class StreamDone:
    outcome: ChatOutcome


@dataclass(frozen=True)
class StreamFailed:
    message: str
    code: str
    job_id: uuid.UUID
    success: bool = False


@dataclass(frozen=True)
class StreamIdle:
    """Nothing to send for STREAM_KEEPALIVE_SECONDS: a keep-alive keeps proxies from closing."""


StreamEvent = StreamStart | StreamCitations | StreamDelta | StreamDone | StreamFailed | StreamIdle


def chat_stream(*, plan: ChatPlan) -> Iterator[StreamEvent]:
    """Start a streamed answer and return its events: start, deltas, then done or failed.

    The provider request is made here, so a refusal is still an ordinary error response. The
    answer is then read by a background thread that stores and bills it whatever happens to the
    client: if the app disconnects mid-stream, the generation still completes and is in the
    conversation when the app comes back.
    """
    call = chat_begin(plan=plan, stream=True)
    with ai_job_failures_recorded(call):
        chat_ground(plan=plan)
        chunks = chat_provider().chat_stream(
            messages=plan.messages, model=plan.model, temperature=plan.temperature, max_tokens=plan.max_tokens
        )
    events: queue.Queue[StreamEvent | None] = queue.Queue()
    worker = threading.Thread(
        target=_chat_stream_worker, args=(plan, call, chunks, events), name=f"chat-stream-{call.job.id}", daemon=True
    )
    worker.start()
    return _chat_stream_events(plan, call, events)


def _chat_stream_worker(
    plan: ChatPlan, call: JobCall, chunks: Iterator[ChatChunk], events: queue.Queue[StreamEvent | None]
) -> None:
    parts: list[str] = []
    usage: Usage | None = None
    finish_reason: str | None = None
    model = plan.model
    try:
        for chunk in chunks:
            if chunk.delta:
                parts.append(chunk.delta)
                events.put(StreamDelta(content=chunk.delta))
            usage = chunk.usage or usage
            finish_reason = chunk.finish_reason or finish_reason
            model = chunk.model or model
        outcome = chat_store(
            plan=plan,
            call=call,
            result=ChatResult(content="".join(parts), model=model, usage=usage, finish_reason=finish_reason),
        )
        events.put(StreamDone(outcome=outcome))
    except BaseException as exc:
        try:
            ai_job_fail(call, exc)
        except Exception:
            logger.exception("Could not record the failure of chat job %s", call.job.id)
        error = exc if isinstance(exc, ApplicationError) else ProviderError("The answer could not be completed.")
        events.put(StreamFailed(message=error.message, code=error.code, job_id=call.job.id))
    finally:
        events.put(None)
        # This thread's database connections are its own: close them, they are not reused.
        connections.close_all()


def _chat_stream_events(
    plan: ChatPlan, call: JobCall, events: queue.Queue[StreamEvent | None]
) -> Iterator[StreamEvent]:
    yield StreamStart(conversation_id=plan.conversation_id, job_id=call.job.id, model=plan.model)
    if plan.grounded is not None:
        yield StreamCitations(citations=plan.grounded.citations)
    while True:
        try:
            event = events.get(timeout=STREAM_KEEPALIVE_SECONDS)
        except queue.Empty:
            yield StreamIdle()
            continue
        if event is None:
            return
        yield event
