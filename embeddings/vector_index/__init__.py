"""Vector search core for per-user semantic search: plain Python/numpy, no Django.

Storage model
-------------
Vectors are float32 and L2-normalized at write time (:func:`normalize`); the database keeps them as
little-endian float32 bytes (:func:`to_bytes` / :func:`from_bytes` / :func:`stack_bytes`) and stays the
source of truth. Each partition (one user, one model, one dimensionality, e.g. ``f"{user_id}:{model}:{dims}"``)
is searched through a :class:`VectorIndex`: an ``(n, d)`` float32 matrix plus the matching int64 row ids.

Scores are cosine similarities, i.e. dot products of unit vectors. Search is exact by default: one
matrix-vector product (or one GEMM for a batch) followed by a partial selection (``argpartition``) of the
top k, never a full sort. Above ``hnsw_threshold`` rows a partition may also carry an hnswlib graph, which
then serves unfiltered (and mildly filtered) queries.

Cache and versions
------------------
:class:`VectorCache` keeps indexes in memory (LRU, bounded by bytes) and persists each partition as
memory-mappable ``.npy`` files under ``{cache_dir}/{safe_key}/``:

* ``v{version}.npy``: the matrix, followed by a trailer row block (magic, nonce, version);
* ``v{version}.ids.npy``: the ids followed by the same three int64 values;
* ``v{version}-{nonce:016x}-{crc32:08x}.hnsw``: the optional hnswlib graph, whose labels are row positions in
  the matrix written with that nonce; the checksum guards against loading a damaged graph.

The trailer exists because the two ``.npy`` files are replaced one after the other: two processes rebuilding
the same version concurrently could otherwise leave ids from one and a matrix from the other. Readers accept
the pair only if both trailers carry the same nonce and version, and the row counts agree (which also catches
truncated files). Files are written to a temporary file and moved in place with ``os.replace``; they are not
fsync'ed, because a torn file fails those checks and is simply rebuilt from the database.

The caller owns the version counter. The contract that keeps several web processes correct:

* every write to a partition (insert, update, delete) bumps its counter, in the same transaction as the row
  change or after it commits, never before;
* a reader reads the counter *before* the loader reads the rows (``get`` calls the loader after receiving
  the version, so reading the counter first and then calling ``get`` is enough). Data labelled with a version
  is then at least as new as that version, never older;
* counters never go backwards (keep them in the database; a cache-only counter that can be evicted and
  restart at 0 could make a process serve an old in-memory matrix with a reused number).

Typical use by a service (names outside this module are illustrative)::

    cache = VectorCache(cache_dir)  # one per process

    def search(user_id, model, dims, query, k=10):
        key = f"{user_id}:{model}:{dims}"
        version = read_partition_version(key)  # the counter first ...
        index = cache.get(key, version=version, loader=lambda: load_rows(key))  # ... the rows after
        return index.search(query, k=k, threshold=0.2)[0]

    def load_rows(key):  # ids and float32 BLOBs, ordered by id
        rows = list(select_id_and_vector_bytes(key))
        return [r[0] for r in rows], stack_bytes((r[1] for r in rows), dims_of(key))

A process whose in-memory version differs from the requested one reloads: from the ``.npy`` pair if one with
that version exists, else through the loader, after which it writes the pair and deletes files of older
versions (never newer ones: another process may already be serving them).

Performance notes
-----------------
Exact search is memory-bandwidth bound for single queries (it reads the whole ``n * d * 4`` bytes once) and
compute bound for batches (one SGEMM). Its speed therefore depends on the BLAS numpy is linked against
(OpenBLAS here), its thread count (``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``, threadpoolctl), the kernel
OpenBLAS picks for the CPU (``OPENBLAS_CORETYPE`` can force a slower one), the memory bandwidth of the
machine and whatever else runs on it; the page cache also matters for the first search after a cold
``mmap``. Measured numbers are in ``bench/README.md`` (``bench/embeddings_bench.py``). hnswlib
queries use ``HnswParams.query_threads`` threads and builds ``HnswParams.build_threads``.

Several web processes on one host each start their own BLAS threads, which then compete for the same cores: on
the shared 2-core development machine, 2 OpenBLAS threads made the median 10k-row search ~10x its best case,
while ``OPENBLAS_NUM_THREADS=1`` kept medians within ~1.2x of it. Worth setting for web workers; this module
does not change it.

Modules: ``encoding`` (normalize, bytes), ``topk`` (exact selection kernels), ``hnsw`` (graph search),
``index`` (:class:`VectorIndex`), ``files`` (the ``.npy`` pair, graph files, locks), ``cache`` (:class:`VectorCache`).
"""

from __future__ import annotations

from embeddings.vector_index.cache import VectorCache
from embeddings.vector_index.encoding import from_bytes, normalize, stack_bytes, to_bytes
from embeddings.vector_index.files import safe_key
from embeddings.vector_index.hnsw import HnswParams
from embeddings.vector_index.index import SearchResult, VectorIndex

__all__ = [
    "HnswParams",
    "SearchResult",
    "VectorCache",
    "VectorIndex",
    "from_bytes",
    "normalize",
    "safe_key",
    "stack_bytes",
    "to_bytes",
]
