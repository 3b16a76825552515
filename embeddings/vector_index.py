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
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import operator
import os
import re
import secrets
import struct
import tempfile
import threading
import time
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

logger = logging.getLogger(__name__)

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

Loader = Callable[[], tuple[ArrayLike, ArrayLike]]

# On-disk and in-database element type: explicit little-endian so the bytes mean the same on every host.
_DISK_DTYPE = np.dtype("<f4")
_IDS_DTYPE = np.dtype("<i8")
_MAGIC = int.from_bytes(b"VECIDX01", "little")
_TRAILER = struct.Struct("<qqq")  # magic, nonce, version

# Top-k selection: for long score vectors, the k-th largest value of every 16th score is a lower bound of the
# k-th largest overall; comparing against it leaves a few hundred candidates, which is ~3x cheaper than one
# argpartition over all n scores (1.5 ms -> 0.5 ms at n = 1M). Below these sizes plain argpartition wins.
_SAMPLE_STRIDE = 16
_SAMPLE_MIN_ROWS = 65_536
# Gathering the allowed rows costs a copy of them; it beats a masked full scan only for small fractions
# (measured at 100k x 384: 10% of rows 2 ms vs 10 ms for the full scan, 50% of rows 24 ms vs 10 ms).
_GATHER_MAX_FRACTION = 0.2
# Batches: rows per GEMM block are chosen so the (rows, queries) score block stays about this size.
_BLOCK_BYTES = 16 << 20
_MIN_BLOCK_ROWS = 1024

_HNSW_CHUNK_ROWS = 10_000
_HNSW_LOCK_STALE_SECONDS = 180.0
_TMP_STALE_SECONDS = 3600.0
_FILE_VERSION_RE = re.compile(r"^v(\d+)[.-]")


# --------------------------------------------------------------------------------------------------------------
# Encoding helpers


def normalize(vectors: ArrayLike) -> np.ndarray:
    """Return float32 copies of ``vectors`` (shape ``(d,)`` or ``(n, d)``) scaled to unit L2 norm.

    Raises ``ValueError`` for zero or non-finite vectors: their direction is undefined and a NaN row would
    silently poison every search over the partition.
    """
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim not in (1, 2):
        raise ValueError(f"expected a vector or a 2-D matrix, got shape {arr.shape}")
    if arr.shape[-1] == 0:
        raise ValueError("vectors must have at least one dimension")
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError("cannot normalize zero or non-finite vectors")
    return np.ascontiguousarray(arr / norms, dtype=np.float32)


def to_bytes(vec: ArrayLike) -> bytes:
    """Encode one vector as little-endian float32 bytes (4 bytes per dimension) for the database."""
    arr = np.asarray(vec)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D vector, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=_DISK_DTYPE).tobytes()


def from_bytes(b: bytes | bytearray | memoryview, dims: int) -> np.ndarray:
    """Decode :func:`to_bytes` output into a float32 vector of ``dims`` elements.

    The result is a read-only view over ``b`` (no copy); use ``.copy()`` to modify it.
    """
    if len(b) != 4 * dims:
        raise ValueError(f"expected {4 * dims} bytes for {dims} float32 dimensions, got {len(b)}")
    return np.frombuffer(b, dtype=_DISK_DTYPE).astype(np.float32, copy=False)


def stack_bytes(blobs: Iterable[bytes | bytearray | memoryview], dims: int) -> np.ndarray:
    """Decode many :func:`to_bytes` blobs into one ``(n, dims)`` float32 matrix.

    Meant for loaders: one join and one ``frombuffer`` are several times faster than decoding row by row.
    """
    joined = b"".join(blobs)
    row = 4 * dims
    if dims <= 0 or len(joined) % row:
        raise ValueError(f"blobs do not all hold {dims} float32 dimensions")
    return np.frombuffer(joined, dtype=_DISK_DTYPE).astype(np.float32, copy=False).reshape(-1, dims)


# --------------------------------------------------------------------------------------------------------------
# Top-k selection


def _select(cand: np.ndarray, vals: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the k best finite candidates, ordered by score descending, then by row position."""
    if cand.size > k:
        part = np.argpartition(vals, cand.size - k)[cand.size - k :]
        cand, vals = cand[part], vals[part]
    finite = np.isfinite(vals)  # drops rows masked out with -inf
    if not finite.all():
        cand, vals = cand[finite], vals[finite]
    order = np.lexsort((cand, -vals))
    return cand[order], vals[order]


def _sample_bound(n: int, k: int) -> bool:
    return n >= _SAMPLE_MIN_ROWS and n // _SAMPLE_STRIDE >= 4 * k


def _top_k_1d(s: np.ndarray, k: int, threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Row positions and scores of the k largest finite scores ``>= threshold`` in ``s``, best first."""
    n = s.shape[0]
    bound = -math.inf if threshold is None else float(threshold)
    if _sample_bound(n, k):
        sub = s[::_SAMPLE_STRIDE]
        kth = float(np.partition(sub, sub.shape[0] - k)[sub.shape[0] - k])
        if math.isfinite(kth):
            bound = max(bound, kth)
    if bound > -math.inf:
        cand = np.flatnonzero(s >= bound)
    elif k < n:
        cand = np.argpartition(s, n - k)[n - k :]
    else:
        cand = np.arange(n)
    return _select(cand, s[cand], k)


def _group_top_k(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, k: int, b: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keep the k best finite candidates of each query (``cols``), vectorized over queries.

    Returns rows, cols and vals sorted by query, then score descending, then row, plus per-query counts.
    Candidates are padded into a ``(queries, most candidates)`` array so one argpartition serves every
    query; sorting all candidates by (query, score) instead cost ~10x more (3-key lexsort on ~5k items).
    """
    finite = np.isfinite(vals)
    if not finite.all():
        rows, cols, vals = rows[finite], cols[finite], vals[finite]
    # A stable sort on 16-bit keys is a radix sort; it keeps the incoming row order within each query.
    order = np.argsort(cols.astype(np.int16 if b < 2**15 else np.int64), kind="stable")
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = np.bincount(cols, minlength=b)
    if counts.size and counts.max() > k:
        width = int(counts.max())
        slot = np.arange(cols.size) - (np.cumsum(counts) - counts)[cols]
        padded_vals = np.full((b, width), -np.inf, dtype=vals.dtype)
        padded_rows = np.zeros((b, width), dtype=rows.dtype)
        padded_vals[cols, slot] = vals
        padded_rows[cols, slot] = rows
        part = np.argpartition(padded_vals, width - k, axis=1)[:, width - k :]
        vals = np.take_along_axis(padded_vals, part, axis=1).reshape(-1)
        rows = np.take_along_axis(padded_rows, part, axis=1).reshape(-1)
        cols = np.repeat(np.arange(b), k)
        real = np.isfinite(vals)
        rows, cols, vals = rows[real], cols[real], vals[real]
        counts = np.minimum(counts, k)
    order = np.lexsort((rows, -vals, cols))
    return rows[order], cols[order], vals[order], counts


def _top_k_batch(
    matrix: np.ndarray, queries: np.ndarray, k: int, threshold: float | None, excluded: np.ndarray | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top k rows for each of several queries, one GEMM per block of rows.

    Blocks keep the ``(rows, queries)`` score block cache-sized (16 MiB) instead of materializing ``n * b``
    scores (128 MB for 1M rows and 32 queries) and scanning them again from memory. Each query has a bound,
    at least ``threshold``, seeded from a sample of the first block and raised to the k-th best score seen so
    far; a block only contributes the few scores reaching its bound, and candidate pools are trimmed without
    a Python loop over queries (such a loop cost ~0.5 ms per 32 queries, a quarter of the GEMM over 10k rows).
    """
    m, b = matrix.shape[0], queries.shape[0]
    block = max(_MIN_BLOCK_ROWS, _BLOCK_BYTES // (4 * b))
    lowest = np.float32(-np.finfo(np.float32).max) if threshold is None else np.float32(threshold)
    bounds = np.full(b, lowest, dtype=np.float32)  # finite, so masked (-inf) rows never qualify
    pool: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    pooled = 0
    for start in range(0, m, block):
        # (rows, queries) layout: measured ~25% faster than Q @ X.T for the same GEMM.
        scores = matrix[start : start + block] @ queries.T
        if excluded is not None:
            scores[excluded[start : start + block]] = -np.inf
        if start == 0 and scores.shape[0] // _SAMPLE_STRIDE >= 4 * k:
            # Seed the bounds with the k-th best of every 16th row of the first block; the transposed copy
            # of that sample is small and lets the partition run along contiguous memory.
            sample = np.ascontiguousarray(scores[::_SAMPLE_STRIDE].T)
            kth = np.partition(sample, sample.shape[1] - k, axis=1)[:, sample.shape[1] - k]
            bounds = np.maximum(bounds, np.where(np.isfinite(kth), kth, lowest))
        flat = np.flatnonzero(scores >= bounds)
        if flat.size == 0:
            continue
        rows, cols = np.divmod(flat, b)
        pool.append((rows + start, cols, scores.reshape(-1)[flat]))
        pooled += flat.size
        if pooled > 8 * k * b and start + block < m:
            # Trim and raise the bounds of queries that already hold k candidates.
            rows, cols, vals, counts = _group_top_k(*map(np.concatenate, zip(*pool, strict=True)), k, b)
            pool, pooled = [(rows, cols, vals)], rows.size
            full = counts == k
            bounds[full] = np.maximum(bounds[full], vals[np.cumsum(counts)[full] - 1])
    if not pool:
        empty = (np.empty(0, np.int64), np.empty(0, np.float32))
        return [empty] * b
    rows, cols, vals, counts = _group_top_k(*map(np.concatenate, zip(*pool, strict=True)), k, b)
    ends = np.cumsum(counts).tolist()
    return [(rows[e - c : e], vals[e - c : e]) for e, c in zip(ends, counts.tolist(), strict=True)]


# --------------------------------------------------------------------------------------------------------------
# HNSW


@dataclass(frozen=True)
class HnswParams:
    """hnswlib settings.

    ``ef_search`` must stay >= 2 * k for the graph to serve a query (larger k falls back to exact search),
    which keeps recall@10 >= 0.95 on clustered data with M = 16. ``filter_min_fraction``: with an ``allowed``
    mask, the graph is used (through hnswlib's filter callback) only when at least this fraction of rows is
    allowed; sparser masks make the graph walk long and Python-callback bound (measured at 50k x 384:
    50% allowed 0.9 ms, 10% 4-5 ms, 1% 21-27 ms), while exact search over the gathered rows is cheap.
    """

    m: int = 16
    ef_construction: int = 200
    ef_search: int = 128
    build_threads: int = 1
    query_threads: int = 1
    filter_min_fraction: float = 0.25


def _hnsw_nbytes(n: int, d: int, m: int) -> int:
    # hnswlib stores, per element, its own copy of the vector, 2*M level-0 links, a label and a few counters.
    return n * (4 * d + 8 * m + 16)


def _build_hnsw(
    matrix: np.ndarray, params: HnswParams, *, between_chunks: Callable[[], bool] | None = None
) -> Any | None:
    """Build an inner-product hnswlib index whose labels are row positions; None if cancelled."""
    import hnswlib

    n, d = matrix.shape
    index = hnswlib.Index(space="ip", dim=d)
    index.init_index(max_elements=max(n, 1), M=params.m, ef_construction=params.ef_construction, random_seed=100)
    # Chunks let a background build notice cancellation and refresh its lock file; hnswlib releases the GIL.
    for start in range(0, n, _HNSW_CHUNK_ROWS):
        if between_chunks is not None and not between_chunks():
            return None
        stop = min(n, start + _HNSW_CHUNK_ROWS)
        index.add_items(matrix[start:stop], np.arange(start, stop), num_threads=params.build_threads)
    index.set_ef(params.ef_search)
    return index


class _Hnsw:
    def __init__(self, index: Any, params: HnswParams) -> None:
        self.index = index
        self.params = params
        index.set_ef(params.ef_search)
        self.nbytes = _hnsw_nbytes(index.element_count, index.dim, params.m)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> np.ndarray | None:
        """Candidate row positions ``(b, k')`` from the graph, or None when exact search should answer."""
        n = self.index.element_count
        if 2 * k > self.params.ef_search:
            return None
        filt = None
        k_eff = min(k, n)
        if allowed is not None:
            count = int(np.count_nonzero(allowed))
            if count < self.params.filter_min_fraction * n:
                return None
            k_eff = min(k, count)
            filt = allowed.__getitem__
        try:
            labels, _ = self.index.knn_query(queries, k=k_eff, num_threads=self.params.query_threads, filter=filt)
        except RuntimeError:
            # hnswlib raises when the graph walk finds fewer than k matches (sparse filters).
            return None
        return labels.astype(np.int64, copy=False)


# --------------------------------------------------------------------------------------------------------------
# Index


class SearchResult(NamedTuple):
    """Best-first hits for one query: int64 ids and float32 cosine scores of equal length."""

    ids: np.ndarray
    scores: np.ndarray


_EMPTY = SearchResult(np.empty(0, np.int64), np.empty(0, np.float32))


def _readonly(arr: np.ndarray) -> np.ndarray:
    view = arr.view(np.ndarray)  # also drops np.memmap, whose subclass hooks only add overhead
    view.flags.writeable = False
    return view


class VectorIndex:
    """Search over one partition: ``ids`` (int64, ``(n,)``) and unit rows ``matrix`` (float32, ``(n, d)``).

    The arrays are exposed read-only (they may be memory-mapped cache files shared with other processes).
    ``source`` tells where the data came from: ``"memory"`` (constructed directly), ``"loader"`` or ``"disk"``.
    """

    def __init__(
        self,
        ids: ArrayLike,
        matrix: ArrayLike,
        version: int = 0,
        *,
        key: str = "",
        source: str = "memory",
        nonce: int | None = None,
    ) -> None:
        ids_arr = np.asarray(ids)
        mat = np.asarray(matrix)
        if ids_arr.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {ids_arr.shape}")
        if ids_arr.size and not np.issubdtype(ids_arr.dtype, np.integer):
            raise TypeError(f"ids must be integers, got {ids_arr.dtype}")
        if mat.ndim != 2 or mat.shape[0] != ids_arr.shape[0]:
            raise ValueError(f"matrix must be (n, d) with n = len(ids) = {ids_arr.shape[0]}, got {mat.shape}")
        self.ids: np.ndarray = _readonly(np.ascontiguousarray(ids_arr, dtype=np.int64))
        self.matrix: np.ndarray = _readonly(np.ascontiguousarray(mat, dtype=np.float32))
        self.version: int = operator.index(version)
        self.key = key
        self.source = source
        self.nonce: int = secrets.randbits(62) if nonce is None else nonce
        self._hnsw: _Hnsw | None = None
        # State used by VectorCache to coordinate HNSW builds for this index.
        self._hnsw_lock = threading.Lock()
        self._hnsw_next_poll = 0.0
        self._hnsw_building = False
        self._hnsw_cancel = threading.Event()

    def __len__(self) -> int:
        return self.ids.shape[0]

    def __repr__(self) -> str:
        return (
            f"VectorIndex(key={self.key!r}, n={len(self)}, dims={self.dims}, version={self.version}, "
            f"source={self.source!r}, hnsw={self.has_hnsw})"
        )

    @property
    def dims(self) -> int:
        return self.matrix.shape[1]

    @property
    def has_hnsw(self) -> bool:
        return self._hnsw is not None

    @property
    def nbytes(self) -> int:
        """Bytes held for this index: matrix and ids (mapped or not) plus the estimated HNSW graph size."""
        hnsw = self._hnsw.nbytes if self._hnsw is not None else 0
        return self.matrix.nbytes + self.ids.nbytes + hnsw

    def mask_for_ids(self, ids: ArrayLike) -> np.ndarray:
        """Boolean row mask selecting rows whose id is in ``ids``, for ``search(allowed=...)``."""
        return np.isin(self.ids, np.asarray(ids, dtype=np.int64))

    def build_hnsw(self, params: HnswParams | None = None) -> None:
        """Build and attach an HNSW graph in the calling thread (VectorCache does this on its own)."""
        index = _build_hnsw(self.matrix, params or HnswParams())
        self.attach_hnsw(index, params)

    def attach_hnsw(self, index: Any, params: HnswParams | None = None) -> None:
        """Attach a prebuilt ``hnswlib.Index`` whose labels are row positions of ``matrix``."""
        if index.element_count != len(self) or index.dim != self.dims:
            raise ValueError("HNSW index does not match this matrix")
        self._hnsw = _Hnsw(index, params or HnswParams())

    def search(
        self,
        query: ArrayLike,
        *,
        k: int = 10,
        threshold: float | None = None,
        allowed: np.ndarray | None = None,
        exact: bool = False,
    ) -> list[SearchResult]:
        """Top-k rows by cosine similarity for one query ``(d,)`` or a batch ``(b, d)``.

        Returns one :class:`SearchResult` per query (a list of length 1 for a single query), best first,
        holding at most ``k`` hits with ``score >= threshold`` (inclusive) when a threshold is given.
        Queries are normalized here, so raw model outputs are fine. ``allowed`` is a boolean mask over the
        rows (see :meth:`mask_for_ids`) applied to every query of the batch. With an attached HNSW graph the
        graph answers unless ``exact`` is true, ``2 * k > ef_search``, or the mask is sparse; its hits are
        re-scored exactly, so scores are comparable with the exact path. Equal scores are ordered by row position
        (which of several rows tied for the k-th place is kept is unspecified).
        """
        q = normalize(query)
        queries = q[None, :] if q.ndim == 1 else q
        b = queries.shape[0]
        k = operator.index(k)
        if k < 0:
            raise ValueError("k must be >= 0")
        n = len(self)
        if n and queries.shape[1] != self.dims:
            raise ValueError(f"query has {queries.shape[1]} dimensions, index has {self.dims}")
        if allowed is not None:
            allowed = np.asarray(allowed)
            if allowed.dtype != np.bool_:
                raise TypeError("allowed must be a boolean row mask; use mask_for_ids() to convert ids")
            if allowed.shape != (n,):
                raise ValueError(f"allowed must have shape ({n},), got {allowed.shape}")
        if k == 0 or n == 0:
            return [_EMPTY] * b
        hnsw = self._hnsw
        if hnsw is not None and not exact:
            labels = hnsw.search(queries, k, allowed)
            if labels is not None:
                return self._rescore(queries, labels, k, threshold)
        return self._exact(queries, k, threshold, allowed)

    def _rescore(self, queries: np.ndarray, labels: np.ndarray, k: int, threshold: float | None) -> list[SearchResult]:
        scores = np.einsum("bkd,bd->bk", self.matrix[labels], queries)
        out = []
        for rows, vals in zip(labels, scores, strict=True):
            if threshold is not None:
                keep = vals >= threshold
                rows, vals = rows[keep], vals[keep]
            rows, vals = _select(rows, vals, k)
            out.append(SearchResult(self.ids[rows], vals.astype(np.float32, copy=False)))
        return out

    def _exact(
        self, queries: np.ndarray, k: int, threshold: float | None, allowed: np.ndarray | None
    ) -> list[SearchResult]:
        b = queries.shape[0]
        n = len(self)
        matrix = self.matrix
        row_map = None
        if allowed is not None:
            count = int(np.count_nonzero(allowed))
            if count == 0:
                return [_EMPTY] * b
            if count == n:
                allowed = None
            elif count <= _GATHER_MAX_FRACTION * n:
                row_map = np.flatnonzero(allowed)
                matrix = matrix[row_map]
                allowed = None
        excluded = None if allowed is None else ~allowed
        hits: list[tuple[np.ndarray, np.ndarray]] = []
        if b == 1:
            s = matrix @ queries[0]
            if excluded is not None:
                s[excluded] = -np.inf
            hits.append(_top_k_1d(s, k, threshold))
        else:
            hits.extend(_top_k_batch(matrix, queries, k, threshold, excluded))
        out = []
        for rows, vals in hits:
            if row_map is not None:
                rows = row_map[rows]
            out.append(SearchResult(self.ids[rows], vals.astype(np.float32, copy=False)))
        return out


# --------------------------------------------------------------------------------------------------------------
# Disk cache files


def safe_key(key: str) -> str:
    """Directory name for a partition key: readable prefix plus a hash so distinct keys never collide."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:64]
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{readable}-{digest}"


def _trailer_rows(d: int) -> int:
    return -(-_TRAILER.size // (4 * d))


def _write_atomic(final: Path, write: Callable[[Any], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=final.suffix, dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_npy(final: Path, dtype: np.dtype, shape: tuple[int, ...], parts: Sequence[np.ndarray]) -> None:
    """Write an ``.npy`` file from contiguous parts without concatenating them in memory first."""

    def write(fh: Any) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(fh, header)
        for part in parts:
            fh.write(np.ascontiguousarray(part, dtype=dtype).data)

    _write_atomic(final, write)


def _matrix_path(directory: Path, version: int) -> Path:
    return directory / f"v{version}.npy"


def _ids_path(directory: Path, version: int) -> Path:
    return directory / f"v{version}.ids.npy"


def _hnsw_stem(version: int, nonce: int) -> str:
    return f"v{version}-{nonce:016x}"


def _file_crc32(path: Path | str) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 24):
            crc = zlib.crc32(block, crc)
    return crc


def _find_hnsw(directory: Path, stem: str) -> list[tuple[Path, int]]:
    """Graph files ``{stem}-{crc32:08x}.hnsw`` in ``directory`` with the checksum their name claims."""
    pattern = re.compile(re.escape(stem) + r"-([0-9a-f]{8})\.hnsw$")
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = []
    for name in names:
        match = pattern.match(name)
        if match is not None:
            found.append((directory / name, int(match.group(1), 16)))
    return found


def _write_pair(directory: Path, version: int, ids: np.ndarray, matrix: np.ndarray, nonce: int) -> None:
    n, d = matrix.shape
    trailer_values = (_MAGIC, nonce, version)
    trailer = np.zeros(_trailer_rows(d) * d, dtype=_DISK_DTYPE)
    trailer.view(np.uint8)[: _TRAILER.size] = np.frombuffer(_TRAILER.pack(*trailer_values), np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    # ids first: a reader that sees the new matrix also finds the ids written before it (or a nonce mismatch).
    _write_npy(_ids_path(directory, version), _IDS_DTYPE, (n + 3,), [ids, np.array(trailer_values, _IDS_DTYPE)])
    _write_npy(_matrix_path(directory, version), _DISK_DTYPE, (n + _trailer_rows(d), d), [matrix, trailer])


def _read_pair(directory: Path, version: int) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Map ``v{version}`` files read-only; None when missing, torn, mismatched or otherwise unusable."""
    mpath, ipath = _matrix_path(directory, version), _ids_path(directory, version)
    try:
        mat = np.load(mpath, mmap_mode="r", allow_pickle=False)
        ids = np.load(ipath, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as exc:
        logger.warning("vector cache: unreadable files for v%s in %s: %s", version, directory, exc)
        return None
    problem = None
    if mat.dtype != _DISK_DTYPE or mat.ndim != 2 or not mat.flags.c_contiguous or mat.shape[1] == 0:
        problem = f"bad matrix layout {mat.dtype} {mat.shape}"
    elif ids.dtype != _IDS_DTYPE or ids.ndim != 1 or ids.shape[0] < 3:
        problem = f"bad ids layout {ids.dtype} {ids.shape}"
    else:
        n, d = ids.shape[0] - 3, mat.shape[1]
        if mat.shape[0] != n + _trailer_rows(d):
            problem = f"row counts differ: {mat.shape[0]} matrix rows for {n} ids"
        else:
            raw = np.asarray(mat[n:]).reshape(-1).view(np.uint8)[: _TRAILER.size].tobytes()
            m_trailer = _TRAILER.unpack(raw)
            i_trailer = tuple(int(x) for x in ids[n:])
            if m_trailer != i_trailer or m_trailer[0] != _MAGIC or m_trailer[2] != version:
                problem = "trailers differ (files from different writers or corrupted)"
    if problem is not None:
        logger.warning("vector cache: ignoring v%s in %s: %s", version, directory, problem)
        return None
    return ids[:n], mat[:n], m_trailer[1]


def _remove_older(directory: Path, version: int) -> None:
    """Delete files of versions older than ``version`` and temporary files abandoned by dead writers."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        match = _FILE_VERSION_RE.match(entry.name)
        try:
            older = match is not None and int(match.group(1)) < version
            abandoned = entry.name.startswith(".tmp-") and now - entry.stat().st_mtime > _TMP_STALE_SECONDS
            if older or abandoned:
                os.unlink(entry.path)
        except OSError:
            # Another process may have removed it first; mapped files stay valid for their readers anyway.
            continue


def _try_lock(path: Path) -> bool:
    """Create ``path`` exclusively (cross-process build lock); take over locks not refreshed recently."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if age <= _HNSW_LOCK_STALE_SECONDS:
                return False
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        except OSError:
            # Unwritable cache dir: build for this process only rather than never.
            return True
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return True
    return False


# --------------------------------------------------------------------------------------------------------------
# Process-wide cache


class _KeyLock:
    __slots__ = ("__weakref__", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()


class VectorCache:
    """Process-wide, thread-safe cache of :class:`VectorIndex` objects keyed by partition.

    ``max_bytes`` bounds the summed :attr:`VectorIndex.nbytes` of cached indexes (least recently used ones are
    dropped first; the most recent one is kept even if alone it exceeds the bound). Memory-mapped matrices
    count too: they live in the page cache, shared by processes mapping the same file, but still occupy RAM.

    HNSW: partitions with at least ``hnsw_threshold`` rows (None disables HNSW) get an hnswlib graph,
    loaded from its file when present, else built. ``hnsw_build="background"`` builds in a
    daemon thread while exact search keeps answering, with a lock file so that only one process builds a
    given graph; other processes pick the file up on a later ``get`` (polled at most every
    ``hnsw_poll_seconds``). ``"sync"`` builds inside ``get`` (for tests, scripts and workers).
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        *,
        max_bytes: int = 2 << 30,
        hnsw_threshold: int | None = 200_000,
        hnsw: HnswParams | None = None,
        hnsw_build: Literal["background", "sync"] = "background",
        hnsw_poll_seconds: float = 10.0,
        write_files: bool = True,
    ) -> None:
        if hnsw_build not in ("background", "sync"):
            raise ValueError("hnsw_build must be 'background' or 'sync'")
        self.cache_dir = Path(cache_dir)
        self.max_bytes = max_bytes
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_params = hnsw or HnswParams()
        self.hnsw_build = hnsw_build
        self.hnsw_poll_seconds = hnsw_poll_seconds
        self.write_files = write_files
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, VectorIndex] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._key_locks: weakref.WeakValueDictionary[str, _KeyLock] = weakref.WeakValueDictionary()
        self._threads: set[threading.Thread] = set()

    # -- public API -----------------------------------------------------------------------------------------

    def get(self, key: str, *, version: int, loader: Loader) -> VectorIndex:
        """Return the index of ``key`` at ``version``: from memory, else the ``.npy`` files, else ``loader()``.

        ``loader`` returns ``(ids, matrix)`` read from the database (unit float32 rows, int ids); it is only
        called on a miss and never concurrently for the same key within this process. Any version mismatch,
        older or newer, reloads; older requests only come from readers racing a write, so this costs little.
        """
        version = operator.index(version)
        if version < 0:
            raise ValueError("version must be >= 0")
        with self._lock:
            index = self._entries.get(key)
            if index is not None and index.version == version:
                self._entries.move_to_end(key)
            else:
                index = None
        if index is not None:
            self._ensure_hnsw(key, index, on_load=False)
            return index
        key_lock = self._key_lock(key)
        with key_lock.lock:
            with self._lock:
                index = self._entries.get(key)
                if index is not None and index.version == version:
                    self._entries.move_to_end(key)
                    return index
            index = self._load(key, version, loader)
            self._insert(key, index)
            self._ensure_hnsw(key, index, on_load=True)
            return index

    def invalidate(self, key: str) -> None:
        """Forget the in-memory index of ``key`` (files stay; they are keyed by version)."""
        with self._lock:
            index = self._entries.pop(key, None)
            self._sizes.pop(key, None)
        if index is not None:
            index._hnsw_cancel.set()

    def clear(self) -> None:
        """Forget every in-memory index."""
        with self._lock:
            indexes = list(self._entries.values())
            self._entries.clear()
            self._sizes.clear()
        for index in indexes:
            index._hnsw_cancel.set()

    def wait_for_builds(self, timeout: float | None = None) -> bool:
        """Wait for background HNSW builds of this cache; True if none is left running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self._threads):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not any(t.is_alive() for t in list(self._threads))

    @property
    def bytes_in_memory(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def keys(self) -> list[str]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def directory(self, key: str) -> Path:
        """Directory holding the cache files of ``key``."""
        return self.cache_dir / safe_key(key)

    # -- loading --------------------------------------------------------------------------------------------

    def _key_lock(self, key: str) -> _KeyLock:
        with self._lock:
            lock = self._key_locks.get(key)
            if lock is None:
                lock = _KeyLock()
                self._key_locks[key] = lock
            return lock

    def _load(self, key: str, version: int, loader: Loader) -> VectorIndex:
        directory = self.directory(key)
        pair = _read_pair(directory, version)
        if pair is not None:
            ids, matrix, nonce = pair
            return VectorIndex(ids, matrix, version, key=key, source="disk", nonce=nonce)
        raw_ids, raw_matrix = loader()
        ids = np.asarray(raw_ids)
        matrix = np.asarray(raw_matrix)
        if ids.size == 0 and matrix.ndim != 2:
            matrix = matrix.reshape(0, 0)  # an empty partition whose dimensionality the loader didn't know
        index = VectorIndex(ids, matrix, version, key=key, source="loader")
        if self.write_files and index.dims > 0:
            try:
                _write_pair(directory, version, index.ids, index.matrix, index.nonce)
            except OSError as exc:
                logger.warning("vector cache: could not write %s v%s: %s", directory, version, exc)
            else:
                _remove_older(directory, version)
                # Serve the mapped file rather than the loader's private copy: the page cache is shared by
                # every process using this partition, and the pages were just written so they are resident.
                pair = _read_pair(directory, version)
                if pair is not None and pair[2] == index.nonce:
                    index = VectorIndex(pair[0], pair[1], version, key=key, source="loader", nonce=index.nonce)
        return index

    def _insert(self, key: str, index: VectorIndex) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None and old is not index:
                old._hnsw_cancel.set()
            self._entries[key] = index
            self._sizes[key] = index.nbytes
            self._evict_locked(keep=key)

    def _evict_locked(self, keep: str) -> None:
        total = sum(self._sizes.values())
        while total > self.max_bytes and len(self._entries) > 1:
            victim_key = next(iter(self._entries))
            if victim_key == keep:
                self._entries.move_to_end(keep)
                victim_key = next(iter(self._entries))
            victim = self._entries.pop(victim_key)
            total -= self._sizes.pop(victim_key)
            victim._hnsw_cancel.set()

    # -- HNSW -----------------------------------------------------------------------------------------------

    def _ensure_hnsw(self, key: str, index: VectorIndex, *, on_load: bool) -> None:
        if self.hnsw_threshold is None or len(index) < self.hnsw_threshold or index.has_hnsw:
            return
        now = time.monotonic()
        if now < index._hnsw_next_poll or index._hnsw_building:
            return
        if not index._hnsw_lock.acquire(blocking=False):
            return  # another thread is already checking or building
        try:
            if index.has_hnsw or index._hnsw_building:
                return
            index._hnsw_next_poll = now + self.hnsw_poll_seconds
            directory = self.directory(key)
            stem = _hnsw_stem(index.version, index.nonce)
            if self._load_hnsw_file(key, index, directory, stem):
                return
            if self.hnsw_build == "sync":
                if on_load:
                    try:
                        graph = _build_hnsw(index.matrix, self.hnsw_params)
                    except Exception:
                        # Exact search still answers; don't fail the request over an optional accelerator.
                        logger.exception("vector cache: HNSW build failed for %s v%s", key, index.version)
                        return
                    self._save_hnsw(graph, directory, stem)
                    self._attach(key, index, graph)
                return
            lock_path = directory / f"{stem}.hnsw.lock"
            if not _try_lock(lock_path):
                return  # another process is building it; a later get() picks up the file
            index._hnsw_building = True
            thread = threading.Thread(
                target=self._build_in_background,
                args=(key, index, directory, stem, lock_path),
                name=f"hnsw-build-{key}",
                daemon=True,
            )
            self._threads.add(thread)
            thread.start()
        finally:
            index._hnsw_lock.release()

    def _load_hnsw_file(self, key: str, index: VectorIndex, directory: Path, stem: str) -> bool:
        import hnswlib

        for path, crc in _find_hnsw(directory, stem):
            try:
                # hnswlib checks sizes but not contents, and a graph with damaged links can crash the process
                # on its first query; the checksum in the file name costs ~0.1 s per 170 MB read.
                if _file_crc32(path) != crc:
                    raise ValueError("checksum mismatch")
                graph = hnswlib.Index(space="ip", dim=index.dims)
                graph.load_index(str(path), max_elements=len(index))
                self._attach(key, index, graph)
            except (RuntimeError, ValueError, OSError) as exc:
                logger.warning("vector cache: discarding unusable HNSW file %s: %s", path, exc)
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            return True
        return False

    def _save_hnsw(self, graph: Any, directory: Path, stem: str) -> None:
        if not self.write_files:
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".hnsw", dir=directory)
            os.close(fd)
            try:
                graph.save_index(tmp)
                crc = _file_crc32(tmp)
                # Unlike the .npy pair the graph is slow to rebuild, so make it durable before publishing it.
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, directory / f"{stem}-{crc:08x}.hnsw")
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except (OSError, RuntimeError) as exc:
            logger.warning("vector cache: could not save HNSW file in %s: %s", directory, exc)

    def _attach(self, key: str, index: VectorIndex, graph: Any) -> None:
        index.attach_hnsw(graph, self.hnsw_params)
        with self._lock:
            if self._entries.get(key) is index:
                self._sizes[key] = index.nbytes
                self._evict_locked(keep=key)

    def _build_in_background(self, key: str, index: VectorIndex, directory: Path, stem: str, lock_path: Path) -> None:
        def between_chunks() -> bool:
            with contextlib.suppress(OSError):
                os.utime(lock_path)  # keeps the lock fresh so other processes don't take it over
            return not index._hnsw_cancel.is_set()

        try:
            graph = _build_hnsw(index.matrix, self.hnsw_params, between_chunks=between_chunks)
            if graph is not None:
                self._save_hnsw(graph, directory, stem)
                self._attach(key, index, graph)
        except Exception:
            logger.exception("vector cache: HNSW build failed for %s v%s", key, index.version)
            index._hnsw_next_poll = time.monotonic() + 6 * self.hnsw_poll_seconds
        finally:
            index._hnsw_building = False
            with contextlib.suppress(OSError):
                lock_path.unlink()
            self._threads.discard(threading.current_thread())
