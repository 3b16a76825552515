"""Semantic search in PostgreSQL with pgvector: the search backend when the database has it.

The vectors of 384-dimension spaces (all-MiniLM-L6-v2's) are copied into `embeddings_pgvector`
(a `vector(384)` column with an HNSW cosine index) next to the portable float32 bytes of
`Embedding.vector`, which stay the source of truth. The table exists only where the `vector`
extension can be installed: migration 0002 creates it when it can, `manage.py
embeddings_pgvector_backfill` creates it later (after the extension is installed) and copies the
rows that are missing. Elsewhere (SQLite, PostgreSQL without pgvector, other dimensions) search
stays on the numpy index of `embeddings.vector_index`.

`EMBEDDINGS_VECTOR_BACKEND` chooses: `auto` (pgvector when the table exists), `pgvector` (required:
refuses to start searching without it) or `numpy`. Searches use the HNSW index with pgvector 0.8's
iterative index scans (`hnsw.iterative_scan = relaxed_order`), so a selective metadata filter still
fills the requested number of hits; `exact=True` (or `EMBEDDINGS_PGVECTOR_EXACT`) orders by the
distance expression instead, which no index serves: a sequential scan with the same answers as
the numpy index.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, transaction
from pgvector import Vector

from embeddings.vector_index import SearchResult, from_bytes

logger = logging.getLogger(__name__)

TABLE = "embeddings_pgvector"
DIMENSIONS = 384
HNSW_INDEX = "embeddings_pgvector_hnsw"
# pgvector's defaults (m=16, ef_construction=64) reach recall@10 >= 0.95 at ef_search 100 here.
HNSW_OPTIONS = "m = 16, ef_construction = 64"

CREATE_STATEMENTS = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " embedding_id bigint PRIMARY KEY"
    " REFERENCES embeddings_embedding (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,"
    " space_id bigint NOT NULL"
    " REFERENCES embeddings_vectorspace (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,"
    f" vector vector({DIMENSIONS}) NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_space ON {TABLE} (space_id)",
    f"CREATE INDEX IF NOT EXISTS {HNSW_INDEX} ON {TABLE} USING hnsw (vector vector_cosine_ops) WITH ({HNSW_OPTIONS})",
)

_installed: dict[str, bool] = {}


def extension_available() -> bool:
    """Whether this PostgreSQL server has the `vector` extension to install (False elsewhere)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        return cursor.fetchone() is not None


def install() -> bool:
    """Create the extension, the table and its indexes when the server has pgvector; True when the
    table exists afterwards. Used by migration 0002 and the backfill command (both idempotent)."""
    if not extension_available():
        return False
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in CREATE_STATEMENTS:
                cursor.execute(statement)
    except DatabaseError as exc:  # e.g. a database user that may not create extensions
        logger.warning("pgvector not installed: %s", exc)
        return False
    forget()
    return True


def forget() -> None:
    """Drop the cached answer of `installed()` (after installing, or in tests)."""
    _installed.clear()


def installed() -> bool:
    """Whether the database has the pgvector table (asked once per process and database)."""
    if connection.vendor != "postgresql":
        return False
    name = str(connection.settings_dict["NAME"])
    if name not in _installed:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [TABLE])
            _installed[name] = bool(cursor.fetchone()[0])
    return _installed[name]


def active() -> bool:
    """Whether searches and writes go through pgvector, per EMBEDDINGS_VECTOR_BACKEND."""
    choice = settings.EMBEDDINGS_VECTOR_BACKEND
    if choice == "numpy":
        return False
    ready = installed()
    if choice == "pgvector" and not ready:
        raise ImproperlyConfigured(
            "EMBEDDINGS_VECTOR_BACKEND=pgvector, but the database has no pgvector table: install the `vector` "
            "extension and run `manage.py embeddings_pgvector_backfill`."
        )
    return ready


def serves(dimensions: int) -> bool:
    return dimensions == DIMENSIONS and active()


def vectors_insert(rows: Sequence[tuple[int, int, np.ndarray]]) -> None:
    """Copy (embedding id, space id, unit vector) rows into the pgvector table (caller's transaction)."""
    from embeddings.models import PgVector

    PgVector.objects.bulk_create(
        [PgVector(embedding_id=pk, space_id=space_id, vector=vector) for pk, space_id, vector in rows],
        batch_size=500,
        ignore_conflicts=True,
    )


def search_sql(*, exact: bool, filtered: bool) -> str:
    """The search statement; parameters: query vector, space id, [filter as JSON], query vector,
    candidates, limit. An HNSW search takes `candidates` (ef_search) rows from the index before
    keeping the best `limit`: an iterative scan stops at the first rows that pass the filter, in
    relaxed order, and the best of a hundred of them are far more often the true best ten."""
    # Ordering by the distance plus zero is the same order, but no index can serve it: exact.
    order = "(v.vector <=> %s::vector) + 0" if exact else "v.vector <=> %s::vector"
    where = "v.space_id = %s" + (" AND e.metadata @> %s::jsonb" if filtered else "")
    # Constant table and clauses; every value is a parameter. The relaxed order of an iterative
    # scan is put right by the outer ORDER BY.
    return (
        "WITH hits AS MATERIALIZED ("  # noqa: S608
        f" SELECT v.embedding_id, v.vector <=> %s::vector AS distance FROM {TABLE} v"
        f" JOIN embeddings_embedding e ON e.id = v.embedding_id WHERE {where} ORDER BY {order} LIMIT %s"
        ") SELECT embedding_id, distance FROM hits ORDER BY distance, embedding_id LIMIT %s"
    )


def session_settings(*, ef_search: int) -> list[tuple[str, list[Any]]]:
    """Transaction-local settings of an HNSW search: pgvector 0.8's iterative index scans keep
    reading the graph until the filters have let `limit` rows through."""
    return [
        ("SET LOCAL hnsw.iterative_scan = relaxed_order", []),
        ("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef_search)]),
    ]


def search(
    *,
    space_id: int,
    queries: np.ndarray,
    limit: int,
    threshold: float | None,
    metadata_filter: dict[str, Any] | None,
    exact: bool | None = None,
) -> list[SearchResult]:
    """Best-first (ids, scores) per query among the space's vectors that match the metadata filter
    (each key with exactly that JSON value, as `metadata @> filter` on scalar values)."""
    exact = settings.EMBEDDINGS_PGVECTOR_EXACT if exact is None else exact
    sql = search_sql(exact=exact, filtered=bool(metadata_filter))
    filter_params = [json.dumps(metadata_filter)] if metadata_filter else []
    results = []
    with transaction.atomic(), connection.cursor() as cursor:
        if not exact:
            for statement, params in session_settings(ef_search=settings.EMBEDDINGS_PGVECTOR_EF_SEARCH):
                cursor.execute(statement, params)
        for query in np.atleast_2d(queries):
            text = Vector._to_db(np.asarray(query, dtype=np.float32))
            candidates = limit if exact else max(limit, settings.EMBEDDINGS_PGVECTOR_EF_SEARCH)
            cursor.execute(sql, [text, space_id, *filter_params, text, candidates, limit])
            rows = cursor.fetchall()
            ids = np.asarray([row[0] for row in rows], dtype=np.int64)
            scores = np.asarray([1.0 - row[1] for row in rows], dtype=np.float32)
            if threshold is not None:
                keep = scores >= threshold
                ids, scores = ids[keep], scores[keep]
            results.append(SearchResult(ids, scores))
    return results


def _missing_rows(batch_size: int) -> Iterator[list[tuple[int, int, bytes]]]:
    """Embeddings of 384-dimension spaces not yet in the pgvector table, in batches by id."""
    last = 0
    sql = (
        "SELECT e.id, e.space_id, e.vector FROM embeddings_embedding e"  # noqa: S608 - a constant table
        f" LEFT JOIN {TABLE} v ON v.embedding_id = e.id"
        " WHERE v.embedding_id IS NULL AND e.dimensions = %s AND e.id > %s ORDER BY e.id LIMIT %s"
    )
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [DIMENSIONS, last, batch_size])
            rows = [(int(pk), int(space), bytes(blob)) for pk, space, blob in cursor.fetchall()]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def backfill(*, dry_run: bool = False, batch_size: int = 1000) -> tuple[bool, int]:
    """Install pgvector where possible and copy the missing rows. Returns (installed, rows copied,
    or with `dry_run` the rows that would be copied: nothing is created or written then)."""
    if dry_run:
        if not (installed() or extension_available()):
            return False, 0
        if not installed():
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM embeddings_embedding WHERE dimensions = %s", [DIMENSIONS])
                return True, int(cursor.fetchone()[0])
        return True, sum(len(batch) for batch in _missing_rows(batch_size))
    if not installed() and not install():
        return False, 0
    copied = 0
    for batch in _missing_rows(batch_size):
        with transaction.atomic():
            vectors_insert([(pk, space, from_bytes(blob, DIMENSIONS)) for pk, space, blob in batch])
        copied += len(batch)
    return True, copied
