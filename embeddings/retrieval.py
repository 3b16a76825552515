"""The retriever behind answers grounded in the user's documents (`ai_services.services.grounding`):
embed the message, search the user's own vectors, return the closest chunks best first.

Registered with ai_services by `EmbeddingsConfig.ready` (ai_services cannot import this app). The
query is embedded without a job of its own: the chat's job reserved its units with the chat's.
Every path is scoped to the user's rows, so a guessed document id of someone else finds nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import numpy as np
from django.db.models.fields.json import KeyTransform

from accounts.models import User
from ai_services.query_embeddings import query_embedding_get, query_embedding_put
from ai_services.services.grounding import Retrieval, RetrievedChunk
from core.exceptions import InvalidInput, ProviderError
from embeddings.chunking import text_token_count
from embeddings.models import Embedding
from embeddings.services import embedding_model_get, embedding_search_vectors
from embeddings.vector_index import normalize, stack_bytes

# Chunks scored exactly when the search is limited to documents (their rows are read, not the
# index); more than this many chunks in the chosen documents is refused rather than slow.
DOCUMENT_SCAN_MAX_ROWS = 50_000
# The metadata `kind` of a video moment (video.search.indexing stores them): cited with its video
# job and start time.
VIDEO_MOMENT = "video_moment"


def _query_vector(*, query: str) -> tuple[np.ndarray, str, int]:
    model = embedding_model_get()
    estimate = text_token_count(text=query, count_tokens=model.count_tokens)
    if estimate > model.max_input_tokens:
        # Only the start of a long message is embedded: it is a search key, not content.
        query = query[: model.max_input_tokens * 3]
    provider_name = model.provider.name
    result = query_embedding_get(provider=provider_name, model=model.name, text=query)
    if result is None:
        result = model.provider.embed([query], model=model.name)
        query_embedding_put(provider=provider_name, model=model.name, text=query, result=result)
    try:
        vector = normalize(np.asarray(result.vectors, dtype=np.float32))
    except ValueError:
        raise ProviderError("The AI provider returned an empty or invalid embedding.") from None
    return vector, result.model or model.name, result.tokens or estimate


def _chunk(
    *, embedding_id: int, document_id: uuid.UUID, text: str, metadata: dict[str, Any] | None, score: float
) -> RetrievedChunk:
    """A retrieved chunk; a video moment (see video.search.indexing) also says which video and when."""
    chunk = RetrievedChunk(embedding_id=embedding_id, document_id=document_id, text=text, score=score)
    metadata = metadata or {}
    job_id, start = metadata.get("jobId"), metadata.get("start")
    # Metadata is the user's own JSON: anything that is not a well-formed moment is a plain chunk.
    if metadata.get("kind") != VIDEO_MOMENT or not isinstance(start, int | float) or isinstance(start, bool):
        return chunk
    try:
        return replace(chunk, job_id=uuid.UUID(str(job_id)), start=float(start))
    except ValueError:
        return chunk


def _document_search(
    *,
    user: User,
    model: str,
    query: np.ndarray,
    document_ids: list[uuid.UUID],
    metadata_filter: dict[str, Any] | None,
    limit: int,
    threshold: float,
) -> list[RetrievedChunk]:
    rows = Embedding.objects.filter(
        user_id=user.pk, document_id__in=document_ids, model=model, dimensions=query.shape[-1]
    )
    for position, (name, value) in enumerate((metadata_filter or {}).items()):
        alias = f"_filter_{position}"  # the key taken literally, the JSON value compared with its type
        rows = rows.alias(**{alias: KeyTransform(name, "metadata")}).filter(**{alias: value})
    found = list(
        rows.order_by("id").values_list("id", "document_id", "text", "vector", "metadata")[: DOCUMENT_SCAN_MAX_ROWS + 1]
    )
    if len(found) > DOCUMENT_SCAN_MAX_ROWS:
        raise InvalidInput(
            f"These documents hold more than {DOCUMENT_SCAN_MAX_ROWS} chunks; choose fewer.",
            errors={"document_ids": ["Too many chunks to search."]},
        )
    if not found:
        return []
    scores = stack_bytes((row[3] for row in found), query.shape[-1]) @ query.reshape(-1)
    order = np.argsort(-scores, kind="stable")[:limit]
    return [
        _chunk(
            embedding_id=found[i][0],
            document_id=found[i][1],
            text=found[i][2],
            metadata=found[i][4],
            score=float(scores[i]),
        )
        for i in order
        if scores[i] >= threshold
    ]


def embedding_retrieve(
    *,
    user: User,
    query: str,
    limit: int,
    threshold: float,
    document_ids: list[uuid.UUID] | None,
    metadata_filter: dict[str, Any] | None,
) -> Retrieval:
    """The user's chunks closest to `query` (cosine similarity at least `threshold`), best first."""
    vector, model, tokens = _query_vector(query=query)
    if document_ids:
        chunks = _document_search(
            user=user,
            model=model,
            query=vector,
            document_ids=document_ids,
            metadata_filter=metadata_filter,
            limit=limit,
            threshold=threshold,
        )
    else:
        hits = embedding_search_vectors(
            user=user, model=model, queries=vector, limit=limit, threshold=threshold, metadata_filter=metadata_filter
        )[0]
        chunks = [
            _chunk(
                embedding_id=int(hit.embedding["id"]),
                document_id=hit.embedding["document_id"],
                text=hit.embedding["text"],
                metadata=hit.embedding["metadata"],
                score=hit.score,
            )
            for hit in hits
        ]
    return Retrieval(chunks=chunks, query_tokens=tokens, model=model)
