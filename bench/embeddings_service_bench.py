"""Benchmark of semantic search through the embeddings service (embeddings/services.py).

Run from the project root::

    .venv/bin/python bench/embeddings_service_bench.py                  # 10k, 100k and 1M vectors, SQLite
    .venv/bin/python bench/embeddings_service_bench.py --sizes 10k,100k
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mma_bench .venv/bin/python bench/embeddings_service_bench.py

`bench/embeddings_bench.py` measures the search core (`VectorCache` + `VectorIndex`); this one measures what a
request pays on top of it. For each size it stores clustered unit vectors (384 dims, the same generator) as
`Embedding` rows of one user and times, interleaved query by query:

* service: `embedding_search_vectors(...)`, the function the search endpoint calls once the query is embedded:
  the cache lookup, the exact search, one query for the hits' rows and one for the space's version;
* core: `VectorIndex.search` on the same index (what the core bench calls "ours");
* flat numpy: `X @ q` + argpartition; floor: `X @ ones`, a plain read of the matrix;

for single queries and batches of 32; then a search with a metadata filter matching 10% of the rows, the whole
`embedding_search` (MiniLM query embedding, quota, AI job record, search) for reference, and loading the index
cold (rows from the database) and warm (a new process's cache finding the `.npy` files), with `np.load`.

The database is a fresh SQLite file (or the PostgreSQL database in DATABASE_URL, whose tables are created and
left with the bench user's rows deleted); data lives in `var/bench-embeddings-service/` and is removed after.
Inserting 1M rows takes a few minutes and about 2 GB of disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "var" / "bench-embeddings-service"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.bench_settings")
os.environ.setdefault("DEBUG", "false")  # as deployed: DEBUG logs every statement, which costs more than some of them
os.environ.setdefault("DATABASE_URL", f"sqlite:///{DATA / 'db.sqlite3'}")
os.environ["EMBEDDINGS_CACHE_DIR"] = str(DATA / "cache")
os.environ["EMBEDDINGS_HNSW_THRESHOLD"] = "0"  # exact search at every size: that is what is compared
os.environ.setdefault("AI_EMBED_PROVIDER", "local")

from bench.embeddings_bench import (  # noqa: E402
    BATCH,
    DIMS,
    K,
    clustered,
    flat_numpy,
    fmt_ms,
    interleaved,
    make_centers,
    med,
    parse_size,
)

MODEL = "all-MiniLM-L6-v2"


def setup_django() -> None:
    import django
    from django.core.management import call_command

    DATA.mkdir(parents=True, exist_ok=True)
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def fill(user, n: int, centers: np.ndarray):
    """`n` rows in one vector space; every 10th row has metadata {"group": "a"}."""
    from django.db import transaction

    from embeddings.models import Embedding, VectorSpace
    from embeddings.vector_index import to_bytes

    Embedding.objects.filter(user=user).delete()
    space, _ = VectorSpace.objects.get_or_create(user=user, model=MODEL, dimensions=DIMS)
    matrix = clustered(n, seed=n, centers=centers)
    document = uuid.uuid4()
    t0 = time.perf_counter()
    step = 5000
    for start in range(0, n, step):
        with transaction.atomic():
            Embedding.objects.bulk_create(
                [
                    Embedding(
                        user=user,
                        space=space,
                        document_id=document,
                        chunk_index=i,
                        text=f"chunk {i}",
                        vector=to_bytes(matrix[i]),
                        model=MODEL,
                        dimensions=DIMS,
                        token_count=5,
                        metadata={"group": "a"} if i % 10 == 0 else {"group": "b"},
                    )
                    for i in range(start, min(n, start + step))
                ]
            )
    VectorSpace.objects.filter(pk=space.pk).update(version=space.version + 1)
    print(f"inserted {n:,} rows in {time.perf_counter() - t0:.1f} s")
    del matrix


def report(label: str, times: dict[str, list[float]], summary: list[str], n: int) -> None:
    floor = med(times["floor X@ones"])
    print(f"{label}:")
    for name, values in times.items():
        print(f"  {name:13s} {fmt_ms(values)}  {med(values) / floor:5.2f}x floor")
    service, core = med(times["service"]), med(times["core"])
    verdict = "PASS" if service <= 1.2 * floor else "FAIL"
    print(f"  service overhead over core: {service - core:+.2f} ms; target service <= 1.2x floor: {verdict}")
    summary.append(
        f"| {n:,} | {label} | {service:.2f} | {core:.2f} | {med(times['flat numpy']):.2f} | {floor:.2f} | "
        f"{service / floor:.2f}x | {verdict} |"
    )


def bench_size(user, n: int, centers: np.ndarray, args: argparse.Namespace, summary: list[str]) -> None:
    from embeddings import services
    from embeddings.models import VectorSpace
    from embeddings.vector_index import VectorCache

    print(f"## {n:,} vectors x {DIMS} dims, top {K}")
    fill(user, n, centers)
    cache = VectorCache(DATA / "cache", hnsw_threshold=None, max_bytes=8 << 30)
    space = VectorSpace.objects.get(user=user)
    t0 = time.perf_counter()
    index = services.space_index_get(space=space, cache=cache)
    print(f"first search's load (rows from the database + .npy write + map): {time.perf_counter() - t0:.2f} s")
    matrix = index.matrix
    queries = clustered(200, seed=n + 1, centers=centers)
    ones = np.ones(DIMS, dtype=np.float32)
    ones_batch = np.ones((DIMS, BATCH), dtype=np.float32)

    def service(q):
        return services.embedding_search_vectors(
            user=user, model=MODEL, queries=q, limit=K, threshold=args.threshold, cache=cache
        )

    reps = args.reps if n < 1_000_000 else max(10, args.reps // 3)
    single = {
        "service": lambda r: service(queries[r % 200]),
        "core": lambda r: index.search(queries[r % 200], k=K, threshold=args.threshold),
        "flat numpy": lambda r: flat_numpy(matrix, queries[r % 200]),
        "floor X@ones": lambda r: matrix @ ones,
    }
    single_times = interleaved(single, reps)
    report("single query", single_times, summary, n)
    label = f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}m"
    ratio = med(single_times["service"]) / med(single_times["floor X@ones"])
    print(f"ratio search/floor {label}: {ratio:.2f}")
    batches = [queries[i * BATCH : (i + 1) * BATCH] for i in range(4)]
    batch = {
        "service": lambda r: service(batches[r % 4]),
        "core": lambda r: index.search(batches[r % 4], k=K, threshold=args.threshold),
        "flat numpy": lambda r: flat_numpy(matrix, batches[r % 4]),
        "floor X@ones": lambda r: matrix @ ones_batch,
    }
    report(f"batch of {BATCH}", interleaved(batch, max(5, reps // 4)), summary, n)

    hits = service(queries[:20])
    core_ids = [r.ids.tolist() for r in index.search(queries[:20], k=K, threshold=args.threshold)]
    assert [[h.embedding["id"] for h in q] for q in hits] == core_ids, "service and core disagree"

    filtered = interleaved(
        {
            "filter 10%": lambda r: services.embedding_search_vectors(
                user=user,
                model=MODEL,
                queries=queries[r % 200],
                limit=K,
                threshold=args.threshold,
                metadata_filter={"group": "a"},
                cache=cache,
            )
        },
        max(5, reps // 3),
    )
    print(f"  service with a metadata filter matching 10% of rows: {fmt_ms(filtered['filter 10%'])}")
    summary.append(f"| {n:,} | filter 10% | {med(filtered['filter 10%']):.2f} | | | | | |")
    cache.clear()
    print()


def bench_full_request(user, args: argparse.Namespace, summary: list[str]) -> None:
    """`embedding_search` as the endpoint calls it, on whatever the last size left in the database,
    with the query-embedding cache on and off, over queries that repeat as searches do."""
    from django.conf import settings

    from ai_services.query_embeddings import query_embeddings_clear, query_embeddings_stats
    from embeddings import services
    from quotas.services import quota_account_ensure, quota_limit_set

    quota_limit_set(account=quota_account_ensure(user=user), limit=10**9)
    # A Zipf-like draw (weight 1/rank) over 200 distinct queries: a few popular searches and a long
    # tail, the shape search logs have. The same sequence is run with the cache on and off.
    distinct = [f"what is the weather like on day {i}" for i in range(200)]
    weights = 1 / np.arange(1, len(distinct) + 1)
    draws = np.random.default_rng(7).choice(len(distinct), size=args.search_reps + 1, p=weights / weights.sum())
    repeats = 1 - len(set(draws.tolist())) / len(draws)
    size = settings.EMBEDDINGS_QUERY_CACHE_SIZE
    query_embeddings_clear()

    def search(r: int, cached: bool) -> None:
        settings.EMBEDDINGS_QUERY_CACHE_SIZE = size if cached else 0
        services.embedding_search(user=user, query=distinct[draws[r]], limit=K, threshold=args.threshold)

    try:
        times = interleaved(
            {"cache off": lambda r: search(r, False), "cache on": lambda r: search(r, True)}, args.search_reps
        )
    finally:
        settings.EMBEDDINGS_QUERY_CACHE_SIZE = size
    stats = query_embeddings_stats()
    outcome = services.embedding_search(user=user, query="the weather", limit=K, threshold=-1)
    print("## whole search service (MiniLM query embedding, quota, AI job, search)")
    print(
        f"   {args.search_reps} searches, {repeats:.0%} of them repeats; "
        f"cache hits {stats['hits']}, misses {stats['misses']}"
    )
    print(f"   cache off: {fmt_ms(times['cache off'])}")
    print(f"   cache on:  {fmt_ms(times['cache on'])}")
    print(f"   one uncached search: {outcome.timings} (embed_ms is the query's embedding)")
    print(f"ratio search cached/uncached: {med(times['cache on']) / med(times['cache off']):.2f}")
    summary.append(f"| last size | embedding_search, cache off | {med(times['cache off']):.2f} | | | | | |")
    summary.append(f"| last size | embedding_search, cache on | {med(times['cache on']):.2f} | | | | | |")


def bench_load(user, n: int, centers: np.ndarray, summary: list[str]) -> None:
    from embeddings import services
    from embeddings.models import VectorSpace
    from embeddings.vector_index import VectorCache

    print(f"## Loading {n:,} vectors through the service")
    fill(user, n, centers)
    space = VectorSpace.objects.get(user=user)
    cold, warm, npload = [], [], []
    for _ in range(5):
        shutil.rmtree(DATA / "cache", ignore_errors=True)
        t0 = time.perf_counter()
        services.space_index_get(space=space, cache=VectorCache(DATA / "cache"))
        cold.append((time.perf_counter() - t0) * 1e3)
        fresh = VectorCache(DATA / "cache")  # another process: files on disk, nothing in memory
        t0 = time.perf_counter()
        index = services.space_index_get(space=space, cache=fresh)
        warm.append((time.perf_counter() - t0) * 1e3)
        assert index.source == "disk"
        t0 = time.perf_counter()
        np.load(fresh.directory(services.space_cache_key(space=space)) / f"v{space.version}.npy")
        npload.append((time.perf_counter() - t0) * 1e3)
    verdict = "PASS" if med(warm) <= 2 * med(npload) else "FAIL"
    print(f"cold (rows from the database, .npy written): {fmt_ms(cold)}")
    print(f"warm (new cache, .npy mapped):               {fmt_ms(warm)}")
    print(f"np.load (reference):                         {fmt_ms(npload)}")
    print(f"target warm <= 2x np.load: {verdict}")
    summary.append(
        f"| {n:,} | load | cold {med(cold):.0f} | warm {med(warm):.2f} | np.load {med(npload):.1f} | | | {verdict} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1m")
    parser.add_argument("--load-size", type=parse_size, default=100_000)
    parser.add_argument("--reps", type=int, default=60)
    parser.add_argument("--search-reps", type=int, default=200, help="whole searches, cache on and off")
    parser.add_argument("--threshold", type=float, default=-1.0, help="-1: every row competes for the top k")
    args = parser.parse_args()
    shutil.rmtree(DATA, ignore_errors=True)
    setup_django()
    from django.db import connection

    from accounts.models import User

    print(f"database: {connection.vendor}; numpy {np.__version__}; load average {os.getloadavg()}")
    user, _ = User.objects.get_or_create(email="bench-embeddings@example.com", defaults={"name": "Bench"})
    centers = make_centers()
    summary: list[str] = []
    try:
        for n in [parse_size(s) for s in args.sizes.split(",") if s.strip()]:
            bench_size(user, n, centers, args, summary)
        bench_full_request(user, args, summary)
        if args.load_size:
            bench_load(user, args.load_size, centers, summary)
    finally:
        from embeddings.models import Embedding

        Embedding.objects.filter(user=user).delete()  # one DELETE (no cascades), then the user's few rows
        user.delete()
        shutil.rmtree(DATA, ignore_errors=True)
    print()
    print("## Summary (ms, medians)")
    print("| n | case | service | core | flat numpy | floor | service/floor | target |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
