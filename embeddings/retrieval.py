"""The retriever behind answers grounded in the user's documents (`ai_services.services.grounding`):
embed the message, search the user's own vectors, return the closest chunks best first.

Registered with ai_services by `EmbeddingsConfig.ready` (ai_services cannot import this app). The
query is embedded without a job of its own: the chat's job reserved its units with the chat's.
Every path is scoped to the user's rows, so a guessed document id of someone else finds nothing.
"""

from __future__ import annotations

import uuid
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
    found = list(rows.order_by("id").values_list("id", "document_id", "text", "vector")[: DOCUMENT_SCAN_MAX_ROWS + 1])
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
        RetrievedChunk(embedding_id=found[i][0], document_id=found[i][1], text=found[i][2], score=float(scores[i]))
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
            RetrievedChunk(
                embedding_id=int(hit.embedding["id"]),
                document_id=hit.embedding["document_id"],
                text=hit.embedding["text"],
                score=hit.score,
            )
            for hit in hits
        ]
    return Retrieval(chunks=chunks, query_tokens=tokens, model=model)
