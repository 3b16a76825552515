"""Grounding a chat answer in the user's own documents: retrieve their closest chunks for the
message, keep the best that fit a token budget, and put them before the message with the
instruction to answer from them (or to say that nothing relevant was found).

Retrieval is the embeddings app's (its vectors, its index), and the import layering puts
embeddings above ai_services (embeddings calls the AI services to embed), so this module cannot
import it. Instead embeddings registers its retriever here when the app registry is ready
(`embeddings.apps.EmbeddingsConfig.ready` -> `retriever_register`): the dependency points the
allowed way, and ai_services only knows the small `Retriever` protocol below. Without the
embeddings app installed, grounded chat is refused as "not configured".

Billing: the query's embedding is paid inside the chat's own job (one reservation of chat units
plus the query's embedding units, settled once), so the retriever embeds without a job of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings

from accounts.models import User
from ai_services import tokens as token_counter
from core.exceptions import ProviderNotConfigured
from quotas.modalities import EMBED

NOTHING_FOUND = (
    "No passage of the user's documents is relevant to this message. Say plainly that you found nothing "
    "about it in their documents; do not invent sources or quote documents."
)
SOURCES_INTRO = (
    "Answer the user's next message from the passages of their own documents below, and say so when they "
    "do not contain the answer. Refer to a passage by its number in brackets, like [1].\n\n"
)


@dataclass(frozen=True)
class RetrievedChunk:
    """One chunk of the user's documents, as the retriever found it."""

    embedding_id: int
    document_id: uuid.UUID
    text: str
    score: float
    # A moment of one of the user's videos (its captions or on-screen text): the video job and
    # where in it the words are, so a client can play from there.
    job_id: uuid.UUID | None = None
    start: float | None = None


@dataclass(frozen=True)
class Retrieval:
    chunks: list[RetrievedChunk]  # best first, all at or above the threshold
    query_tokens: int  # what the query's embedding consumed (the provider's count when it gives one)
    model: str


class Retriever(Protocol):
    """Search `user`'s own chunks (never another user's) for `query`."""

    def __call__(
        self,
        *,
        user: User,
        query: str,
        limit: int,
        threshold: float,
        document_ids: list[uuid.UUID] | None,
        metadata_filter: dict[str, Any] | None,
    ) -> Retrieval: ...


_retriever: Retriever | None = None


def retriever_register(retriever: Retriever) -> None:
    """Called by the app that owns the vectors (embeddings) when Django is ready."""
    global _retriever
    _retriever = retriever


def retriever_get() -> Retriever:
    if _retriever is None:
        raise ProviderNotConfigured("Answers from your documents are not available on this server.")
    return _retriever


@dataclass(frozen=True)
class GroundingRequest:
    """What the client asked to ground the answer in: all its documents, or some of them."""

    document_ids: list[uuid.UUID] | None = None
    metadata_filter: dict[str, Any] | None = None


@dataclass
class Grounding:
    """The outcome of retrieval for one chat request."""

    citations: list[RetrievedChunk] = field(default_factory=list)
    context_tokens: int = 0
    query_tokens: int = 0
    model: str = ""


def grounding_units(*, query: str) -> int:
    """The embedding units of the query, reserved with the chat's (offline cl100k count)."""
    return EMBED.price(tokens=token_counter.count_tokens(query))


def grounding_context_select(*, chunks: list[RetrievedChunk], budget: int) -> tuple[list[RetrievedChunk], int]:
    """The best chunks that fit in `budget` tokens, best first; a chunk too long to fit is skipped
    so a shorter, lower one can still be used."""
    kept: list[RetrievedChunk] = []
    used = 0
    for chunk in chunks:
        tokens = token_counter.count_tokens(chunk.text) + 4  # its number and separators
        if used + tokens > budget:
            continue
        kept.append(chunk)
        used += tokens
    return kept, used


def grounding_message(*, chunks: list[RetrievedChunk]) -> str:
    """The system message that carries the sources (or says that there are none)."""
    if not chunks:
        return NOTHING_FOUND
    passages = "\n\n".join(f"[{number}] {chunk.text}" for number, chunk in enumerate(chunks, start=1))
    return SOURCES_INTRO + passages


def grounding_apply(*, user: User, query: str, request: GroundingRequest, messages: list[dict[str, Any]]) -> Grounding:
    """Retrieve for `query` and insert the sources just before the user's message (the last of
    `messages`, after the conversation memory). Runs inside the chat's job: a failure here fails
    and refunds it."""
    retrieval = retriever_get()(
        user=user,
        query=query,
        limit=settings.AI_GROUNDING_MAX_CHUNKS,
        threshold=settings.AI_GROUNDING_MIN_SCORE,
        document_ids=request.document_ids,
        metadata_filter=request.metadata_filter or None,
    )
    chunks, used = grounding_context_select(chunks=retrieval.chunks, budget=settings.AI_GROUNDING_CONTEXT_TOKENS)
    messages.insert(len(messages) - 1, {"role": "system", "content": grounding_message(chunks=chunks)})
    return Grounding(citations=chunks, context_tokens=used, query_tokens=retrieval.query_tokens, model=retrieval.model)
