"""Embeddings of recent search queries, kept per process so a repeated query is not embedded again.

A search embeds its query text before it can look anything up; with the local MiniLM engine that
is ~15 ms of CPU, with OpenAI a network round trip, and apps repeat queries (suggested searches,
a user paging or refining). The vector depends only on the provider, the model and the text, so a
bounded least-recently-used map in memory answers a repeat. In process rather than in Redis: a
hit costs microseconds here against a round trip there, and a miss in one process only costs what
it cost before. An OrderedDict under a lock, like the filter-mask cache of `embeddings.services`,
because the bound is a setting read at use (`functools.lru_cache` fixes it at import).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from django.conf import settings

from ai_services.providers.base import EmbedResult

_entries: OrderedDict[tuple[str, str, str], EmbedResult] = OrderedDict()
_lock = threading.Lock()
_stats = {"hits": 0, "misses": 0}


def query_embedding_get(*, provider: str, model: str, text: str) -> EmbedResult | None:
    if settings.EMBEDDINGS_QUERY_CACHE_SIZE <= 0:
        return None
    key = (provider, model, text)
    with _lock:
        found = _entries.get(key)
        if found is None:
            _stats["misses"] += 1
            return None
        _entries.move_to_end(key)
        _stats["hits"] += 1
        return found


def query_embedding_put(*, provider: str, model: str, text: str, result: EmbedResult) -> None:
    limit = settings.EMBEDDINGS_QUERY_CACHE_SIZE
    if limit <= 0:
        return
    vectors = np.array(result.vectors, dtype=np.float32, copy=True)
    vectors.flags.writeable = False  # shared by every later hit
    stored = EmbedResult(vectors=vectors, model=result.model, dimensions=result.dimensions, tokens=result.tokens)
    with _lock:
        _entries[(provider, model, text)] = stored
        _entries.move_to_end((provider, model, text))
        while len(_entries) > limit:
            _entries.popitem(last=False)


def query_embeddings_stats() -> dict[str, int]:
    with _lock:
        return {**_stats, "size": len(_entries)}


def query_embeddings_clear() -> None:
    with _lock:
        _entries.clear()
        _stats.update(hits=0, misses=0)
