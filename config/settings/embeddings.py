"""Embeddings: input limits, chunk sizes, vector caches, HNSW and the search backend."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import env
from config.settings.stores import INSTANCE_DIR

# --- Embeddings ------------------------------------------------------------------------------
EMBEDDINGS_TEXT_MAX_CHARS = env.int("EMBEDDINGS_TEXT_MAX_CHARS", default=100_000)
EMBEDDINGS_QUERY_MAX_CHARS = env.int("EMBEDDINGS_QUERY_MAX_CHARS", default=10_000)
EMBEDDINGS_METADATA_MAX_BYTES = env.int("EMBEDDINGS_METADATA_MAX_BYTES", default=8192)
# Chunk sizes in tokens of the model's tokenizer. A chunk must also fit the model's input window:
# all-MiniLM-L6-v2 reads 256 word pieces (254 of text), so larger sizes are refused for it.
EMBEDDINGS_CHUNK_SIZE_MIN = env.int("EMBEDDINGS_CHUNK_SIZE_MIN", default=32)
EMBEDDINGS_CHUNK_SIZE_MAX = env.int("EMBEDDINGS_CHUNK_SIZE_MAX", default=512)
EMBEDDINGS_CHUNK_SIZE_DEFAULT = env.int("EMBEDDINGS_CHUNK_SIZE_DEFAULT", default=200)
EMBEDDINGS_CHUNK_OVERLAP_DEFAULT = env.int("EMBEDDINGS_CHUNK_OVERLAP_DEFAULT", default=40)
# Memory-mappable .npy copies of each user's vectors, rebuilt from the database when stale.
EMBEDDINGS_CACHE_DIR = env.str("EMBEDDINGS_CACHE_DIR", default="") or str(INSTANCE_DIR / "vector-cache")
# Memory for the matrices of recently searched users in each process (least recently used go first).
EMBEDDINGS_CACHE_MAX_BYTES = env.int("EMBEDDINGS_CACHE_MAX_BYTES", default=2 * 1024**3)
# Embeddings of recent search queries each process keeps (by provider, model and text), so a
# repeated query is not embedded again; 0 turns it off (ai_services/query_embeddings.py).
EMBEDDINGS_QUERY_CACHE_SIZE = env.int("EMBEDDINGS_QUERY_CACHE_SIZE", default=1024)
# Per user and model: above this many vectors an HNSW index (approximate) serves searches; 0 = never.
EMBEDDINGS_HNSW_THRESHOLD = env.int("EMBEDDINGS_HNSW_THRESHOLD", default=200_000)
# Search backend (embeddings/pgvector.py): auto = pgvector when the PostgreSQL database has it (the
# `vector` extension and the table made by migration 0002 or embeddings_pgvector_backfill), else the
# numpy index; pgvector = required; numpy = never pgvector. EXACT orders by distance without the
# HNSW index; EF_SEARCH is hnsw.ef_search (candidates per query; iterative scans add more).
EMBEDDINGS_VECTOR_BACKEND = env.str("EMBEDDINGS_VECTOR_BACKEND", default="auto")
if EMBEDDINGS_VECTOR_BACKEND not in ("auto", "pgvector", "numpy"):
    raise ImproperlyConfigured("EMBEDDINGS_VECTOR_BACKEND must be auto, pgvector or numpy.")
EMBEDDINGS_PGVECTOR_EXACT = env.bool("EMBEDDINGS_PGVECTOR_EXACT", default=False)
EMBEDDINGS_PGVECTOR_EF_SEARCH = env.int("EMBEDDINGS_PGVECTOR_EF_SEARCH", default=100)
