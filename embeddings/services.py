"""Embeddings: chunk, embed, store, and search a user's vectors.

Storage and search
------------------
Every vector is stored normalized, as float32 bytes, in its `Embedding` row (the source of truth).
A user's vectors of one model and one dimension count form a `VectorSpace`; a search runs over one
space through `embeddings.vector_index.VectorCache`: an in-memory float32 matrix, persisted as
memory-mapped `.npy` files under `EMBEDDINGS_CACHE_DIR` and rebuilt from the database only when
missing or stale. Staleness is decided by `VectorSpace.version`, which every write bumps with an
F() update in the transaction that changes the rows, and which a search reads (one query) before
it touches the cache: a process holding an older matrix reloads it, so any number of web
processes stay correct.

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

import json
import logging
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from accounts.models import User
from ai_services.providers import EmbedResult
from ai_services.providers.capabilities import Embedder, embedder
from ai_services.services import embedding_run
from core.exceptions import InvalidInput, ProviderError
from embeddings import pgvector
from embeddings.chunking import Chunk, TokenCounter, text_chunk, text_token_count
from embeddings.models import Embedding, VectorSpace
from embeddings.selectors import embedding_rows_by_id, space_version_get
from embeddings.vector_index import SearchResult, VectorCache, VectorIndex, normalize, stack_bytes, to_bytes

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
# The vector cache


_cache_lock = threading.Lock()
_caches: dict[tuple, VectorCache] = {}


def vector_cache() -> VectorCache:
    """The process-wide cache for the current settings (tests point EMBEDDINGS_CACHE_DIR elsewhere)."""
    config = (
        str(settings.EMBEDDINGS_CACHE_DIR),
        settings.EMBEDDINGS_CACHE_MAX_BYTES,
        settings.EMBEDDINGS_HNSW_THRESHOLD,
    )
    cache = _caches.get(config)
    if cache is None:
        with _cache_lock:
            cache = _caches.get(config)
            if cache is None:
                cache_dir, max_bytes, threshold = config
                cache = VectorCache(cache_dir, max_bytes=max_bytes, hnsw_threshold=threshold or None)
                _caches[config] = cache
    return cache


def _space_key(*, user_id: int, space_id: int, model: str, dimensions: int) -> str:
    # The user id leads, so the files of a deleted account can be found without its rows; the space
    # id makes a space created anew (version back at 0) never meet the files of an old one.
    return f"u{user_id}:s{space_id}:{model}:{dimensions}"


def space_cache_key(*, space: VectorSpace) -> str:
    return _space_key(user_id=space.user_id, space_id=space.pk, model=space.model, dimensions=space.dimensions)


def _space_loader(space_id: int, dimensions: int) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def load() -> tuple[np.ndarray, np.ndarray]:
        rows = Embedding.objects.filter(space_id=space_id).order_by("id").values_list("id", "vector")
        ids: list[int] = []
        blobs: list[bytes | memoryview] = []
        for pk, blob in rows.iterator(chunk_size=5000):
            ids.append(pk)
            blobs.append(blob)
        if not ids:
            return np.empty(0, np.int64), np.empty((0, dimensions), np.float32)
        return np.asarray(ids, dtype=np.int64), stack_bytes(blobs, dimensions)

    return load


def space_index_get(*, space: VectorSpace, cache: VectorCache | None = None) -> VectorIndex:
    """The search index of `space` at the version read with it (the row must be fresh from the DB)."""
    if cache is None:  # not `cache or ...`: an empty VectorCache is falsy (it has a length)
        cache = vector_cache()
    return cache.get(
        space_cache_key(space=space), version=space.version, loader=_space_loader(space.pk, space.dimensions)
    )


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


# Columns a search result shows (the vector stays in the database).
HIT_FIELDS = ("id", "document_id", "chunk_index", "text", "metadata", "created_at")


@dataclass(frozen=True)
class SearchHit:
    embedding: dict[str, Any]  # the HIT_FIELDS of the row
    score: float


@dataclass
class SearchOutcome:
    results: list[SearchHit]
    took_ms: float
    model: str
    dimensions: int
    units_charged: int = 0
    timings: dict[str, float] = field(default_factory=dict)


# Filter masks of recent searches, per index build and filter: an app tends to repeat the same
# filter ({"source": ...}) while the user's vectors stay unchanged, and the database scan that
# answers a filter (JSON extraction on every row of the space) costs far more than the search.
# Metadata never changes after creation and every insert or delete makes a new index version, so
# a mask stays right for the index it was computed for.
MASK_CACHE_MAX_BYTES = 64 * 1024 * 1024
_masks: OrderedDict[tuple, np.ndarray] = OrderedDict()
_masks_lock = threading.Lock()


def _filter_mask(*, space_id: int, index: VectorIndex, metadata_filter: dict[str, Any]) -> np.ndarray:
    """Rows of `index` whose metadata has every key of the filter with exactly that JSON value."""
    key = (index.key, index.version, index.nonce, json.dumps(metadata_filter, sort_keys=True))
    with _masks_lock:
        mask = _masks.get(key)
        if mask is not None:
            _masks.move_to_end(key)
            return mask
    rows = Embedding.objects.filter(space_id=space_id)
    for position, (name, value) in enumerate(metadata_filter.items()):
        # KeyTransform takes the key literally (a key holding "__" is not a path) and compares the
        # JSON value with its type: 1, "1" and true are three different values on both databases.
        alias = f"_filter_{position}"
        rows = rows.alias(**{alias: KeyTransform(name, "metadata")}).filter(**{alias: value})
    ids = np.fromiter(rows.values_list("id", flat=True).iterator(chunk_size=5000), dtype=np.int64)
    mask = index.mask_for_ids(ids)
    mask.flags.writeable = False
    with _masks_lock:
        _masks[key] = mask
        total = sum(m.nbytes for m in _masks.values())
        while total > MASK_CACHE_MAX_BYTES and len(_masks) > 1:
            _, dropped = _masks.popitem(last=False)
            total -= dropped.nbytes
    return mask


# The space id each (user, model, dimensions) resolved to in this process's last searches, so that a
# search can find the space's matrix in memory before reading the version (embedding_search_vectors).
# Only a hint: a wrong or outdated id fails the version check and the search starts over.
_SPACE_IDS_MAX = 10_000
_space_ids: OrderedDict[tuple[int, str, int], int] = OrderedDict()
_space_ids_lock = threading.Lock()


def _space_id_remember(scope: tuple[int, str, int], space_id: int) -> None:
    if _space_ids.get(scope) == space_id:
        return
    with _space_ids_lock:
        _space_ids[scope] = space_id
        while len(_space_ids) > _SPACE_IDS_MAX:
            _space_ids.popitem(last=False)


def _search_index(
    *,
    space_id: int,
    index: VectorIndex,
    queries: np.ndarray,
    limit: int,
    threshold: float | None,
    metadata_filter: dict[str, Any] | None,
) -> list[SearchResult]:
    allowed = _filter_mask(space_id=space_id, index=index, metadata_filter=metadata_filter) if metadata_filter else None
    return index.search(queries, k=limit, threshold=threshold, allowed=allowed)


def _hit_rows(*, user: User, found: Sequence[SearchResult]) -> dict[int, dict[str, Any]]:
    """The HIT_FIELDS of the hits' rows that still exist, by id."""
    wanted = sorted({pk for result in found for pk in result.ids.tolist()})
    if not wanted:
        return {}
    # By primary key alone: with `user_id = ?` in the WHERE clause SQLite picks the (user, created_at)
    # index and walks every row of the user (18 ms at 100k rows instead of 0.3 ms). The owner is
    # checked on the rows instead, so a row can never leak to another user. Unordered: the scores
    # give the order, and the model's default ordering would only add a sort.
    return {
        row["id"]: row
        for row in embedding_rows_by_id(ids=wanted, fields=("user_id", *HIT_FIELDS))
        if row.pop("user_id") == user.pk
    }


def _hits(found: Sequence[SearchResult], rows: dict[int, dict[str, Any]]) -> list[list[SearchHit]]:
    return [
        [
            SearchHit(rows[pk], score)
            for pk, score in zip(result.ids.tolist(), result.scores.tolist(), strict=True)
            if pk in rows
        ]
        for result in found
    ]


def embedding_search_vectors(
    *,
    user: User,
    model: str,
    queries: np.ndarray,
    limit: int = 10,
    threshold: float | None = 0.7,
    metadata_filter: dict[str, Any] | None = None,
    cache: VectorCache | None = None,
) -> list[list[SearchHit]]:
    """Search the user's vectors of `model` (and of the queries' dimension count) for each query row.

    Two queries: the hits' rows (rows deleted since the matrix was built simply drop out) and the
    space's (id, version). When this process holds the space's matrix, it is searched first and the
    version read after the hits' rows: the answer stands only if the version is still the matrix's,
    i.e. no write committed since the matrix was read. Otherwise (no matrix in memory, or a write
    since) the cache serves the matrix at the version just read, reloading it, and the search runs
    on that. Reading the version after the matrix scan rather than before puts the two statements
    back to back: the scan evicts the CPU caches, and the second statement runs on warm database
    code (at 100,000 rows the version read went from 0.25 ms to under 0.1 ms)."""
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    dimensions = queries.shape[1]
    if pgvector.serves(dimensions):
        found_space = space_version_get(user_id=user.pk, model=model, dimensions=dimensions)
        if found_space is None:
            return [[] for _ in range(queries.shape[0])]
        found = pgvector.search(
            space_id=found_space[0], queries=queries, limit=limit, threshold=threshold, metadata_filter=metadata_filter
        )
        return _hits(found, _hit_rows(user=user, found=found))
    if cache is None:  # not `cache or ...`: an empty VectorCache is falsy (it has a length)
        cache = vector_cache()
    scope = (user.pk, model, dimensions)
    space_id = _space_ids.get(scope)
    index = None
    if space_id is not None:
        index = cache.peek(_space_key(user_id=user.pk, space_id=space_id, model=model, dimensions=dimensions))
    if space_id is not None and index is not None:
        found = _search_index(
            space_id=space_id,
            index=index,
            queries=queries,
            limit=limit,
            threshold=threshold,
            metadata_filter=metadata_filter,
        )
        rows = _hit_rows(user=user, found=found)
        found_space = space_version_get(user_id=user.pk, model=model, dimensions=dimensions)
        if found_space == (space_id, index.version):
            return _hits(found, rows)
    else:
        found_space = space_version_get(user_id=user.pk, model=model, dimensions=dimensions)
    if found_space is None:
        return [[] for _ in range(queries.shape[0])]
    space_id, version = found_space
    _space_id_remember(scope, space_id)
    # The version was read before the cache's loader reads any row (the contract of VectorCache).
    index = cache.get(
        _space_key(user_id=user.pk, space_id=space_id, model=model, dimensions=dimensions),
        version=version,
        loader=_space_loader(space_id, dimensions),
    )
    found = _search_index(
        space_id=space_id,
        index=index,
        queries=queries,
        limit=limit,
        threshold=threshold,
        metadata_filter=metadata_filter,
    )
    return _hits(found, _hit_rows(user=user, found=found))


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
