"""``VectorIndex``: search over one partition's ids and unit rows, exact or through an HNSW graph."""

from __future__ import annotations

import operator
import secrets
import threading
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from embeddings.vector_index.encoding import normalize
from embeddings.vector_index.hnsw import HnswParams, _build_hnsw, _Hnsw
from embeddings.vector_index.topk import _select, _top_k_1d, _top_k_batch

# Gathering the allowed rows costs a copy of them; it beats a masked full scan only for small fractions
# (measured at 100k x 384: 10% of rows 2 ms vs 10 ms for the full scan, 50% of rows 24 ms vs 10 ms).
_GATHER_MAX_FRACTION = 0.2


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
