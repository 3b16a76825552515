"""Benchmark of the vector search core (embeddings/vector_index/).

Run from the project root::

    .venv/bin/python bench/embeddings_bench.py                 # 10k, 100k and 1M vectors
    .venv/bin/python bench/embeddings_bench.py --sizes 10k,100k

For each size it builds clustered unit vectors (384 dims, 1000 gaussian centers plus noise) and times, in the
same run, the numpy methods interleaved in shuffled order so background load hits them alike (faiss
right after, apart, because its spinning OpenMP threads slow the next BLAS call):

* ours: ``VectorCache.get`` + ``VectorIndex.search`` (exact), through :func:`run_ours`;
* flat: a plain numpy scan, ``X @ q`` (``Q @ X.T`` for batches) + argpartition + sort of the top k;
* faiss: ``IndexFlatIP`` over the same matrix;
* floor: ``X @ ones``, a plain matrix-vector read (``X @ ones((d, 32))`` for batches, the same GEMM).

Then HNSW (build time, latency, recall@10 against exact) for sizes up to ``--hnsw-max``, and the time to load
100k vectors cold (from a SQLite table of float32 BLOB rows, through the loader callback) and warm (from the
``.npy`` cache), with ``np.load`` for reference. Data lives in ``bench/.data`` (git-ignored) and is recreated
on every run. Peak memory is about 3.5 GB with 1M vectors (matrix, faiss's own copy, score blocks).

The BLAS environment is printed but never changed: ``OPENBLAS_NUM_THREADS``, ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` all move the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embeddings.vector_index import (  # noqa: E402
    HnswParams,
    SearchResult,
    VectorCache,
    VectorIndex,
    normalize,
    stack_bytes,
    to_bytes,
)

DIMS = 384
CENTERS = 1000
NOISE = 1.0  # expected norm of the offset from a unit center: same-cluster cosine ~0.5, like sentence embeddings
K = 10
BATCH = 32
DATA_DIR = ROOT / "bench" / ".data"
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

Loader = Callable[[], tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------------------------------------------
# What is measured as "ours": swap this for the embeddings service's search function once it exists.


def run_ours(cache: VectorCache, key: str, version: int, loader: Loader, queries: np.ndarray, k: int = K) -> list[Any]:
    """One search as the service will do it: resolve the partition's index, then search it exactly."""
    index = cache.get(key, version=version, loader=loader)
    return index.search(queries, k=k)


# --------------------------------------------------------------------------------------------------------------
# Environment


def blas_info() -> list[str]:
    """Describe the BLAS numpy uses: threadpoolctl when installed, else OpenBLAS's own entry points."""
    lines = []
    try:
        from threadpoolctl import threadpool_info  # type: ignore[import-not-found]
    except ImportError:
        lines.append("threadpoolctl: not installed (falling back to OpenBLAS symbols)")
    else:
        for pool in threadpool_info():
            lines.append(
                f"{pool.get('internal_api')} {pool.get('version')}: threads={pool.get('num_threads')} "
                f"arch={pool.get('architecture')} {Path(pool.get('filepath', '')).name}"
            )
        return lines
    with open("/proc/self/maps") as fh:
        libs = sorted({line.split()[-1] for line in fh if "openblas" in line.lower() and ".so" in line})
    for path in libs:
        lib = ctypes.CDLL(path)
        info = [Path(path).name]
        for suffix in ("", "64_"):
            for prefix in ("openblas", "scipy_openblas"):
                fn = getattr(lib, f"{prefix}_get_config{suffix}", None)
                if fn is None:
                    continue
                fn.restype = ctypes.c_char_p
                core = getattr(lib, f"{prefix}_get_corename{suffix}")
                core.restype = ctypes.c_char_p
                threads = getattr(lib, f"{prefix}_get_num_threads{suffix}")
                info.append(f"config={fn().decode()} core={core().decode()} threads={threads()}")
                break
        lines.append(" ".join(info))
    return lines


def print_environment() -> None:
    print("## Environment")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, {os.cpu_count()} CPUs")
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "?")
        print(f"cpu: {model}")
    for name in BLAS_ENV:
        print(f"{name}={os.environ.get(name, '(unset)')}")
    for line in blas_info():
        print(f"blas: {line}")
    try:
        import faiss

        print(f"faiss {faiss.__version__}, omp threads {faiss.omp_get_max_threads()}")
    except ImportError:
        print("faiss: not installed")
    print(f"load average at start: {os.getloadavg()}")
    print()


# --------------------------------------------------------------------------------------------------------------
# Data


def clustered(n: int, seed: int, centers: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """n unit vectors around ``centers``, generated in chunks to keep temporaries small."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, centers.shape[1]), dtype=np.float32)
    scale = np.float32(NOISE / np.sqrt(centers.shape[1]))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        block = rng.standard_normal((stop - start, centers.shape[1]), dtype=np.float32)
        block *= scale
        block += centers[rng.integers(0, len(centers), stop - start)]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def make_centers(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return normalize(rng.standard_normal((CENTERS, DIMS), dtype=np.float32))


# --------------------------------------------------------------------------------------------------------------
# Timing


def interleaved(fns: dict[str, Callable[[int], object]], reps: int) -> dict[str, list[float]]:
    """Per-method timings in ms: one warm-up call each, then every rep runs all methods in a shuffled order."""
    for fn in fns.values():
        fn(0)
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    rng = np.random.default_rng(0)
    for rep in range(reps):
        for name in rng.permutation(names).tolist():
            start = time.perf_counter()
            fns[name](rep)
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_ms(values: Sequence[float]) -> str:
    return f"{med(values):8.2f} ms (min {min(values):7.2f})"


def flat_numpy(matrix: np.ndarray, queries: np.ndarray, k: int = K) -> list[np.ndarray]:
    if queries.ndim == 1:
        scores = matrix @ queries
        top = np.argpartition(scores, -k)[-k:]
        return [top[np.argsort(-scores[top])]]
    scores = queries @ matrix.T
    top = np.argpartition(scores, -k, axis=1)[:, -k:]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return list(np.take_along_axis(top, order, axis=1))


def recall_at_k(approx: Sequence[SearchResult], exact: Sequence[SearchResult]) -> float:
    hits = [
        len(set(a.ids.tolist()) & set(e.ids.tolist())) / max(1, len(e.ids)) for a, e in zip(approx, exact, strict=True)
    ]
    return float(np.mean(hits))


# --------------------------------------------------------------------------------------------------------------
# Sections


def bench_size(n: int, centers: np.ndarray, args: argparse.Namespace, summary: list[str]) -> None:
    print(f"## {n:,} vectors x {DIMS} dims, top {K}")
    queries = clustered(max(args.queries, BATCH), seed=n + 1, centers=centers)
    ids = np.arange(1, n + 1, dtype=np.int64)
    cache_dir = DATA_DIR / "cache"
    key = f"bench:{n}:{DIMS}"

    def loader() -> tuple[np.ndarray, np.ndarray]:
        # Regenerated on demand (deterministic seed) so no second copy of the matrix stays referenced.
        return ids, clustered(n, seed=n, centers=centers)

    exact_cache = VectorCache(cache_dir, hnsw_threshold=None, max_bytes=8 << 30)
    t0 = time.perf_counter()
    index = exact_cache.get(key, version=1, loader=loader)
    print(f"first get (generate + .npy write + map): {time.perf_counter() - t0:.1f} s")
    gc.collect()
    bench_exact(n, exact_cache, key, loader, index.matrix, ids, queries, args, summary)
    if n <= args.hnsw_max:
        bench_hnsw(n, key, index, queries, cache_dir, args, summary)
    exact_cache.clear()
    print()


def bench_exact(
    n: int,
    exact_cache: VectorCache,
    key: str,
    loader: Loader,
    matrix: np.ndarray,
    ids: np.ndarray,
    queries: np.ndarray,
    args: argparse.Namespace,
    summary: list[str],
) -> None:
    # Every method reads the same memory-mapped matrix the cache serves, so they compete on equal terms.
    ones = np.ones(DIMS, dtype=np.float32)
    ones_batch = np.ones((DIMS, BATCH), dtype=np.float32)

    faiss_index = None
    try:
        import faiss

        faiss_index = faiss.IndexFlatIP(DIMS)
        faiss_index.add(matrix)
    except ImportError:
        pass

    nq = len(queries)
    single: dict[str, Callable[[int], object]] = {
        "ours": lambda r: run_ours(exact_cache, key, 1, loader, queries[r % nq]),
        "flat numpy": lambda r: flat_numpy(matrix, queries[r % nq]),
    }
    single["floor X@ones"] = lambda r: matrix @ ones
    reps = args.reps if n < 1_000_000 else max(10, args.reps // 3)
    times = interleaved(single, reps)
    # faiss runs apart: its OpenMP threads keep spinning after each call and would slow whatever BLAS call
    # comes next, which made the numpy methods look worse when interleaved with it.
    if faiss_index is not None:
        times |= interleaved({"faiss flat": lambda r: faiss_index.search(queries[r % nq][None, :], K)}, reps)
    report("single query", times, n, summary)

    batches = [queries[(i * BATCH) % (nq - BATCH + 1) :][:BATCH] for i in range(4)]
    batch: dict[str, Callable[[int], object]] = {
        "ours": lambda r: run_ours(exact_cache, key, 1, loader, batches[r % 4]),
        "flat numpy": lambda r: flat_numpy(matrix, batches[r % 4]),
    }
    batch["floor X@ones"] = lambda r: matrix @ ones_batch
    times = interleaved(batch, max(5, reps // 4))
    if faiss_index is not None:
        times |= interleaved({"faiss flat": lambda r: faiss_index.search(batches[r % 4], K)}, max(5, reps // 4))
    report(f"batch of {BATCH}", times, n, summary)

    # Sanity: ours agrees with the flat scan (both exact).
    ours_ids = [r.ids for r in run_ours(exact_cache, key, 1, loader, queries[:20])]
    flat_ids = [ids[rows] for rows in flat_numpy(matrix, queries[:20])]
    agree = np.mean([len(set(a.tolist()) & set(b.tolist())) / K for a, b in zip(ours_ids, flat_ids, strict=True)])
    print(f"ours vs flat numpy top-{K} agreement: {agree:.3f}")


def report(label: str, times: dict[str, list[float]], n: int, summary: list[str]) -> None:
    """Print medians and minimums with their ratios to the floor; the verdict uses medians.

    On a shared machine the minimum is the closest to the intrinsic cost, the median to what a request sees.
    """
    floor, floor_min = med(times["floor X@ones"]), min(times["floor X@ones"])
    print(f"{label}:")
    for name, values in times.items():
        ratio, ratio_min = med(values) / floor, min(values) / floor_min
        print(f"  {name:13s} {fmt_ms(values)}  {ratio:5.2f}x floor (min/min {ratio_min:5.2f}x)")
    ours, ours_min = med(times["ours"]), min(times["ours"])
    verdict = "PASS" if ours <= 1.2 * floor else "FAIL"
    extra = ""
    if "faiss flat" in times:
        extra = f", faiss/ours {med(times['faiss flat']) / ours:.2f}x"
    print(f"  target ours <= 1.2x floor: {verdict} ({ours / floor:.2f}x{extra})")
    row = [f"{n:,}", label, f"{ours:.2f}", f"{med(times['flat numpy']):.2f}"]
    row.append(f"{med(times['faiss flat']):.2f}" if "faiss flat" in times else "-")
    row += [f"{floor:.2f}", f"{ours / floor:.2f}x ({ours_min / floor_min:.2f}x)", verdict]
    summary.append("| " + " | ".join(row) + " |")


def bench_hnsw(
    n: int,
    key: str,
    exact_index: VectorIndex,
    queries: np.ndarray,
    cache_dir: Path,
    args: argparse.Namespace,
    summary: list[str],
) -> None:
    params = HnswParams(build_threads=-1, query_threads=1)
    cache = VectorCache(cache_dir, hnsw_threshold=min(n, 200_000), hnsw=params, hnsw_build="sync", max_bytes=8 << 30)
    t0 = time.perf_counter()
    index = cache.get(key, version=1, loader=lambda: (exact_index.ids, exact_index.matrix))
    build = time.perf_counter() - t0
    if not index.has_hnsw:
        print("hnsw: not built")
        return
    approx = index.search(queries, k=K)
    exact = exact_index.search(queries, k=K)
    recall = recall_at_k(approx, exact)
    nq = len(queries)
    times = interleaved(
        {
            "hnsw": lambda r: cache.get(key, version=1, loader=lambda: None).search(queries[r % nq], k=K),
            "exact": lambda r: exact_index.search(queries[r % nq], k=K),
        },
        args.reps,
    )
    batch = queries[:BATCH]
    btimes = interleaved({"hnsw": lambda r: index.search(batch, k=K)}, 10)
    graph = next(p for p in cache.directory(key).iterdir() if p.suffix == ".hnsw")
    t0 = time.perf_counter()
    VectorCache(cache_dir, hnsw_threshold=min(n, 200_000), hnsw=params).get(key, version=1, loader=lambda: None)
    reload_ms = (time.perf_counter() - t0) * 1e3
    verdict = "PASS" if recall >= 0.95 else "FAIL"
    print(
        f"hnsw (M={params.m}, ef_construction={params.ef_construction}, ef={params.ef_search}): "
        f"build {build:.1f} s with {os.cpu_count()} threads, file {graph.stat().st_size / 1e6:.0f} MB, "
        f"load .npy + graph {reload_ms:.0f} ms"
    )
    print(f"  single query {fmt_ms(times['hnsw'])} vs exact {fmt_ms(times['exact'])}")
    print(f"  batch of {BATCH} {fmt_ms(btimes['hnsw'])} (query_threads={params.query_threads})")
    print(f"  recall@{K} vs exact over {nq} queries: {recall:.4f}  target >= 0.95: {verdict}")
    summary.append(
        f"| {n:,} | HNSW single | {med(times['hnsw']):.3f} | exact {med(times['exact']):.2f} | "
        f"recall@10 {recall:.4f} | build {build:.0f} s | {verdict} |"
    )
    cache.clear()


def bench_load(n: int, centers: np.ndarray, summary: list[str]) -> None:
    print(f"## Loading {n:,} vectors")
    matrix = clustered(n, seed=7, centers=centers)
    db_path = DATA_DIR / "embeddings.sqlite3"
    con = sqlite3.connect(db_path)
    con.execute("CREATE TABLE vectors (id INTEGER PRIMARY KEY, partition TEXT NOT NULL, vector BLOB NOT NULL)")
    con.execute("CREATE INDEX vectors_partition ON vectors (partition, id)")
    key = f"load:{n}:{DIMS}"
    with con:
        con.executemany(
            "INSERT INTO vectors (id, partition, vector) VALUES (?, ?, ?)",
            ((i + 1, key, to_bytes(row)) for i, row in enumerate(matrix)),
        )
    del matrix

    def loader() -> tuple[np.ndarray, np.ndarray]:
        rows = con.execute("SELECT id, vector FROM vectors WHERE partition = ? ORDER BY id", (key,)).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, stack_bytes((r[1] for r in rows), DIMS)

    cache_dir = DATA_DIR / "load-cache"
    loader_ms, cold_ms, warm_ms, first_ms, npload_ms, npmmap_ms = [], [], [], [], [], []
    query = normalize(np.ones(DIMS, dtype=np.float32))
    for _ in range(5):
        shutil.rmtree(cache_dir, ignore_errors=True)
        t0 = time.perf_counter()
        loader()
        loader_ms.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        VectorCache(cache_dir).get(key, version=1, loader=loader)
        cold_ms.append((time.perf_counter() - t0) * 1e3)
    # Let writeback of the fresh files settle: another web process normally maps files written earlier.
    os.sync()
    time.sleep(1)
    for _ in range(10):
        # A new cache object is what another web process sees: the files exist, its memory is empty.
        fresh = VectorCache(cache_dir)
        t0 = time.perf_counter()
        index = fresh.get(key, version=1, loader=loader)
        warm_ms.append((time.perf_counter() - t0) * 1e3)
        assert index.source == "disk"
        t0 = time.perf_counter()
        index.search(query, k=K)
        first_ms.append((time.perf_counter() - t0) * 1e3)
        npy = fresh.directory(key) / "v1.npy"
        t0 = time.perf_counter()
        np.load(npy)
        npload_ms.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        np.load(npy, mmap_mode="r")
        npmmap_ms.append((time.perf_counter() - t0) * 1e3)
        del index, fresh
    con.close()
    print(f"loader only (SQLite SELECT + stack_bytes): {fmt_ms(loader_ms)}")
    print(f"cold get (loader + .npy write + map):       {fmt_ms(cold_ms)}")
    print(f"warm get (new VectorCache, .npy mmap):       {fmt_ms(warm_ms)}")
    print(f"first search after warm get:                 {fmt_ms(first_ms)}")
    print(f"np.load full read (reference):               {fmt_ms(npload_ms)}")
    print(f"np.load mmap_mode='r' (reference):           {fmt_ms(npmmap_ms)}")
    warm, full = med(warm_ms), med(npload_ms)
    verdict = "PASS" if warm <= 2 * full else "FAIL"
    print(f"target warm get <= 2x np.load: {verdict} ({warm / full:.2f}x)")
    print("(the SQLite file and the .npy were just written, so both sit in the OS page cache)")
    print()
    summary.append(
        f"| {n:,} | load | cold {med(cold_ms):.0f} (loader {med(loader_ms):.0f}) | warm {warm:.2f} | "
        f"np.load {full:.1f} | first search {med(first_ms):.1f} | {verdict} |"
    )


# --------------------------------------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    factor = 1
    if text.endswith("k"):
        factor, text = 1_000, text[:-1]
    elif text.endswith("m"):
        factor, text = 1_000_000, text[:-1]
    return int(float(text) * factor)


@contextlib.contextmanager
def data_dir() -> Iterator[None]:
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    DATA_DIR.mkdir(parents=True)
    try:
        yield
    finally:
        shutil.rmtree(DATA_DIR, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1m", help="comma-separated partition sizes (10k,100k,1m)")
    parser.add_argument("--hnsw-max", type=parse_size, default=100_000, help="largest size to build HNSW for")
    parser.add_argument("--load-size", type=parse_size, default=100_000, help="rows for the load test (0: skip)")
    parser.add_argument("--reps", type=int, default=60, help="single-query repetitions per method")
    parser.add_argument("--queries", type=int, default=200, help="distinct queries (also used for recall)")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]

    print_environment()
    centers = make_centers()
    summary: list[str] = []
    with data_dir():
        for n in sizes:
            bench_size(n, centers, args, summary)
        if args.load_size:
            bench_load(args.load_size, centers, summary)
    print(f"load average at end: {os.getloadavg()}")
    print()
    print("## Summary (ms, medians)")
    print("| n | case | ours | flat numpy | faiss flat | floor | ours/floor (min/min) | target |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
