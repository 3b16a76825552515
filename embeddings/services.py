"""Embeddings: chunk, embed, store, and search a user's vectors.

Storage and search
------------------
Every vector is stored normalized, as float32 bytes, in its `Embedding` row (the source of truth).
A user's vectors of one model and one dimension count form a `VectorSpace`; a search runs over one
space through `embeddings.vector_index.VectorCache`: an in-memory float32 matrix, persisted as
memory-mapped `.npy` files under `EMBEDDINGS_CACHE_DIR` and rebuilt from the database only when
missing or stale. Staleness is decided by `VectorSpace.version`, which every write bumps with an
F() update in the transaction that changes the rows, and which every search reads (one query): a
process holding an older matrix discards its answer and reloads, so any number of web processes
stay correct (`embeddings.vector_search` has the search over one space).

Quota
-----
The seed's price list charges embeddings 1 unit per started 1,000 tokens. Creating charges the
tokens of every chunk; searching embeds the query, which is an embedding too, so a search costs
the same (1 unit for any query under 1,000 tokens). Both go through the AI services' embedding job
(`ai_services.services.embedding_run`): units are reserved from an offline token count before the
provider is called, settled to the provider's own count after, refunded when the provider fails,
and the call is recorded as an AI job of type "embedding".
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import User
from ai_services.providers import EmbedResult
from ai_services.providers.capabilities import Embedder, embedder
from ai_services.services import embedding_run
from core.exceptions import InvalidInput, ProviderError
from embeddings import pgvector
from embeddings.chunking import Chunk, TokenCounter, text_chunk, text_token_count
from embeddings.models import Embedding, VectorSpace
from embeddings.vector_index import normalize, to_bytes

# The search over one space lives in `embeddings.vector_search`; these names stay importable from here.
from embeddings.vector_search import HIT_FIELDS as HIT_FIELDS
from embeddings.vector_search import SearchHit as SearchHit
from embeddings.vector_search import _caches as _caches
from embeddings.vector_search import embedding_search_vectors as embedding_search_vectors
from embeddings.vector_search import space_cache_key as space_cache_key
from embeddings.vector_search import space_index_get as space_index_get
from embeddings.vector_search import vector_cache as vector_cache

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------------------
# The embedding model behind the configured provider


@dataclass(frozen=True)
class EmbeddingModel:
    """The provider and model that embed a request, with the tokenizer that counts for them."""

    provider: Embedder
    name: str
    count_tokens: TokenCounter
    max_input_tokens: int  # per input text, special tokens included

    @property
    def token_overhead(self) -> int:
        return self.count_tokens([""])[0]


def embedding_model_get(*, model: str | None = None) -> EmbeddingModel:
    """The configured embed provider with `model` (or its default); an unknown model is a 400.

    Token counts come from the provider's tokenizer for the model (`Embedder.embed_tokenizer`):
    the model's own where it ships here (MiniLM's WordPiece for the local model), cl100k_base
    otherwise."""
    provider = embedder()
    name = provider.resolve_model("embed", model)
    tokenizer = provider.embed_tokenizer(model=name)
    return EmbeddingModel(provider, name, tokenizer.count_tokens, tokenizer.max_input_tokens)


def _embed(
    *, user: User, model: EmbeddingModel, texts: Sequence[str], reuse_query: bool = False
) -> tuple[EmbedResult, int]:
    """Embed `texts` through the AI services' embedding job, which reserves the quota, records the
    job, settles to the provider's token count and refunds on failure. The provider batches (32
    texts per forward pass locally, 2,048 per request to OpenAI). Returns the result with its rows
    normalized, and the units charged."""
    result, job = embedding_run(user=user, texts=list(texts), model=model.name, reuse_query=reuse_query)
    vectors = np.asarray(result.vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts) or vectors.shape[1] < 1:
        raise ProviderError("The AI provider returned embeddings of the wrong shape.")
    try:
        vectors = normalize(vectors)
    except ValueError:
        raise ProviderError("The AI provider returned an empty or invalid embedding.") from None
    normalized = EmbedResult(
        vectors=vectors, model=result.model or model.name, dimensions=int(vectors.shape[1]), tokens=result.tokens
    )
    return normalized, job.units_charged


# --------------------------------------------------------------------------------------------------------------
# The vector cache of a deleted account


def embeddings_cache_delete_for_user(*, user: User) -> None:
    """Account-deletion clean-up (settings.ACCOUNT_DELETION_CLEANUPS): the user's cached vector
    files, removed once the deletion commits."""
    cache = vector_cache()
    keys = [space_cache_key(space=space) for space in VectorSpace.objects.filter(user_id=user.pk)]
    # Cache directories are named by `safe_key`, which keeps the key's leading characters with ":"
    # turned into "_": every directory of this user starts with "u{id}_" (and no other user's does).
    pattern = f"u{user.pk}_*"

    def remove() -> None:
        for key in keys:
            cache.invalidate(key)
        if cache.cache_dir.is_dir():
            for path in cache.cache_dir.glob(pattern):
                shutil.rmtree(path, ignore_errors=True)

    transaction.on_commit(remove)


# --------------------------------------------------------------------------------------------------------------
# Create


@dataclass(frozen=True)
class CreatedEmbeddings:
    ids: list[int]
    document_id: uuid.UUID
    chunks: int
    tokens: int
    dimensions: int
    model: str
    units_charged: int


def _chunks_for(
    *, model: EmbeddingModel, text: str, auto_chunk: bool, chunk_size: int, chunk_overlap: int
) -> list[Chunk]:
    overhead = model.token_overhead
    window = model.max_input_tokens - overhead
    if auto_chunk:
        if chunk_size > window:
            raise InvalidInput(
                f"chunkSize must be at most {window} tokens for {model.name}.",
                errors={"chunk_size": [f"At most {window} tokens for {model.name}."]},
            )
        return text_chunk(
            text=text, count_tokens=model.count_tokens, chunk_size=chunk_size, chunk_overlap=chunk_overlap
        )
    tokens = text_token_count(text=text, count_tokens=model.count_tokens)
    if tokens > model.max_input_tokens:
        raise InvalidInput(
            f"The text is {tokens - overhead} tokens and {model.name} reads at most {window}; "
            "send autoChunk: true to split it.",
            errors={"text": [f"At most {window} tokens without autoChunk."]},
        )
    return [Chunk(index=0, text=text, start=0, end=len(text), tokens=tokens)]


def embedding_create(
    *,
    user: User,
    text: str,
    auto_chunk: bool = True,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    metadata: dict[str, Any] | None = None,
    model: str | None = None,
) -> CreatedEmbeddings:
    """Chunk `text`, embed the chunks, store them under one new document id, and charge for them."""
    chunk_size = chunk_size or settings.EMBEDDINGS_CHUNK_SIZE_DEFAULT
    chunk_overlap = settings.EMBEDDINGS_CHUNK_OVERLAP_DEFAULT if chunk_overlap is None else chunk_overlap
    embedding_model = embedding_model_get(model=model)
    chunks = _chunks_for(
        model=embedding_model, text=text, auto_chunk=auto_chunk, chunk_size=chunk_size, chunk_overlap=chunk_overlap
    )
    estimate = sum(chunk.tokens for chunk in chunks)
    result, units = _embed(user=user, model=embedding_model, texts=[chunk.text for chunk in chunks])
    document_id = uuid.uuid4()
    ids = _store(user=user, chunks=chunks, result=result, document_id=document_id, metadata=metadata or {})
    tokens = result.tokens or estimate
    return CreatedEmbeddings(
        ids=ids,
        document_id=document_id,
        chunks=len(chunks),
        tokens=tokens,
        dimensions=result.dimensions,
        model=result.model,
        units_charged=units,
    )


def _space_for(*, user: User, model: str, dimensions: int) -> VectorSpace:
    space, _ = VectorSpace.objects.get_or_create(user_id=user.pk, model=model, dimensions=dimensions)
    return space


def _bump(space_ids: Sequence[int]) -> None:
    # In the writing transaction: readers that see the new rows also see the new version. Sorted,
    # so that two writers touching the same spaces lock them in the same order.
    for space_id in sorted(set(space_ids)):
        VectorSpace.objects.filter(pk=space_id).update(version=F("version") + 1, updated_at=timezone.now())


def _store(
    *,
    user: User,
    chunks: Sequence[Chunk],
    result: EmbedResult,
    document_id: uuid.UUID,
    metadata: dict[str, Any] | Sequence[dict[str, Any]],
) -> list[int]:
    # One metadata for the whole document, or one per chunk (`embeddings.documents`).
    metadatas = [metadata] * len(chunks) if isinstance(metadata, dict) else list(metadata)
    # Created before the writing transaction so that its first statement is the version UPDATE:
    # on SQLite that takes the write lock at once instead of upgrading a read snapshot.
    space = _space_for(user=user, model=result.model, dimensions=result.dimensions)
    rows = [
        Embedding(
            user_id=user.pk,
            space_id=space.pk,
            document_id=document_id,
            chunk_index=chunk.index,
            text=chunk.text,
            vector=to_bytes(vector),
            model=result.model,
            dimensions=result.dimensions,
            token_count=chunk.tokens,
            metadata=chunk_metadata,
        )
        for chunk, vector, chunk_metadata in zip(chunks, result.vectors, metadatas, strict=True)
    ]
    with transaction.atomic():
        _bump([space.pk])
        created = Embedding.objects.bulk_create(rows, batch_size=500)
        if pgvector.serves(result.dimensions):
            pgvector.vectors_insert(
                [(row.pk, space.pk, vector) for row, vector in zip(created, result.vectors, strict=True)]
            )
    return [row.pk for row in created]


# --------------------------------------------------------------------------------------------------------------
# Delete


def embeddings_delete(*, rows: QuerySet[Embedding]) -> int:
    """Delete `rows` and bump the versions of the spaces they were in, in one transaction. The
    API scopes `rows` to the caller first; staff tools pass any rows."""
    found = list(rows.values_list("id", "space_id"))
    if not found:
        return 0
    with transaction.atomic():
        _bump([space_id for _, space_id in found])
        deleted, _ = Embedding.objects.filter(id__in=[pk for pk, _ in found]).delete()
    return deleted


def embedding_delete(*, user: User, embedding_id: int) -> int:
    return embeddings_delete(rows=Embedding.objects.filter(pk=embedding_id, user_id=user.pk))


def embedding_bulk_delete(*, user: User, ids: Sequence[int]) -> int:
    """Delete those of `ids` that belong to `user`; other users' ids are ignored, not revealed."""
    return embeddings_delete(rows=Embedding.objects.filter(pk__in=list(set(ids)), user_id=user.pk))


def document_delete(*, user: User, document_id: uuid.UUID) -> int:
    return embeddings_delete(rows=Embedding.objects.filter(document_id=document_id, user_id=user.pk))


def vector_spaces_refresh(*, space_ids: Sequence[int]) -> None:
    """Make every process reload these spaces from the database (their rows are the source of
    truth) and rebuild their cache files and indexes: a staff tool for a suspect cache."""
    with transaction.atomic():
        _bump(space_ids)


# --------------------------------------------------------------------------------------------------------------
# Search


@dataclass
class SearchOutcome:
    results: list[SearchHit]
    took_ms: float
    model: str
    dimensions: int
    units_charged: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def embedding_search(
    *,
    user: User,
    query: str,
    limit: int = 10,
    threshold: float = 0.7,
    metadata_filter: dict[str, Any] | None = None,
    model: str | None = None,
) -> SearchOutcome:
    """Embed `query` (charged like any embedding) and return the user's closest chunks, best first,
    among vectors of the same model and dimension count as the query's."""
    started = time.perf_counter()
    embedding_model = embedding_model_get(model=model)
    estimate = text_token_count(text=query, count_tokens=embedding_model.count_tokens)
    if estimate > embedding_model.max_input_tokens:
        window = embedding_model.max_input_tokens - embedding_model.token_overhead
        raise InvalidInput(
            f"The query is longer than the {window} tokens {embedding_model.name} reads.",
            errors={"query": [f"At most {window} tokens."]},
        )
    result, units = _embed(user=user, model=embedding_model, texts=[query], reuse_query=True)
    embedded = time.perf_counter()
    hits = embedding_search_vectors(
        user=user,
        model=result.model,
        queries=result.vectors,
        limit=limit,
        threshold=threshold,
        metadata_filter=metadata_filter,
    )[0]
    finished = time.perf_counter()
    return SearchOutcome(
        results=hits,
        took_ms=round((finished - started) * 1000, 2),
        model=result.model,
        dimensions=result.dimensions,
        units_charged=units,
        timings={
            "embed_ms": round((embedded - started) * 1000, 2),
            "search_ms": round((finished - embedded) * 1000, 2),
        },
    )
