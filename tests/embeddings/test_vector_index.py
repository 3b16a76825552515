"""Tests for embeddings.vector_index (plain numpy; run with ``pytest -p no:django``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from embeddings.vector_index import (
    HnswParams,
    SearchResult,
    VectorCache,
    VectorIndex,
    from_bytes,
    normalize,
    stack_bytes,
    to_bytes,
)
from embeddings.vector_index import cache as vi_cache
from embeddings.vector_index import files as vi_files
from embeddings.vector_index import index as vi_index
from embeddings.vector_index import topk as vi_topk


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return normalize(rng.standard_normal((n, d), dtype=np.float32))


def clustered(rng: np.random.Generator, n: int, d: int, centers: int, noise: float = 1.0) -> np.ndarray:
    """Unit vectors scattered around random unit centers (noise is the expected norm of the offset)."""
    c = unit_rows(rng, centers, d)
    points = c[rng.integers(0, centers, n)] + rng.standard_normal((n, d), dtype=np.float32) * (noise / np.sqrt(d))
    return normalize(points)


def brute_force(
    ids: np.ndarray,
    matrix: np.ndarray,
    query: np.ndarray,
    k: int,
    threshold: float | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference: full stable sort of every score, ties broken by row position."""
    scores = matrix @ normalize(query)
    valid = np.ones(len(ids), bool) if allowed is None else allowed.copy()
    if threshold is not None:
        valid &= scores >= np.float32(threshold)
    rows = np.flatnonzero(valid)
    rows = rows[np.argsort(-scores[rows], kind="stable")][:k]
    return ids[rows], scores[rows]


def assert_same(result: SearchResult, expected: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_array_equal(result.ids, expected[0])
    np.testing.assert_allclose(result.scores, expected[1], rtol=0, atol=1e-5)
    assert result.ids.dtype == np.int64
    assert result.scores.dtype == np.float32


class FakeDB:
    """Rows plus a version counter bumped on every write, as the embeddings service keeps them."""

    def __init__(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        self.rows = {int(i): v for i, v in zip(ids, matrix, strict=True)}
        self.version = 1
        self.loads = 0

    def write(self, row_id: int, vector: np.ndarray) -> None:
        self.rows[row_id] = normalize(vector)
        self.version += 1

    def delete(self, row_id: int) -> None:
        del self.rows[row_id]
        self.version += 1

    def loader(self) -> tuple[np.ndarray, np.ndarray]:
        self.loads += 1
        ids = np.array(sorted(self.rows), dtype=np.int64)
        return ids, np.stack([self.rows[int(i)] for i in ids])


# ---------------------------------------------------------------------------------------------------------------
# Encoding


def test_normalize_gives_float32_unit_rows() -> None:
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((50, 8)) * 7  # float64 input
    out = normalize(raw)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(normalize(raw[0]), out[0])
    with pytest.raises(ValueError, match="zero"):
        normalize(np.zeros(8))
    with pytest.raises(ValueError, match="zero"):
        normalize([1.0, np.nan])


def test_bytes_round_trip() -> None:
    vec = normalize(np.arange(1, 6, dtype=np.float64))
    blob = to_bytes(vec)
    assert len(blob) == 5 * 4
    assert blob == vec.astype("<f4").tobytes()
    np.testing.assert_array_equal(from_bytes(blob, 5), vec)
    with pytest.raises(ValueError, match="expected 24 bytes"):
        from_bytes(blob, 6)
    stacked = stack_bytes([blob, to_bytes(vec * 2)], 5)
    assert stacked.shape == (2, 5)
    np.testing.assert_array_equal(stacked[1], vec * 2)
    with pytest.raises(ValueError, match="blobs"):
        stack_bytes([blob, blob[:-4]], 5)


# ---------------------------------------------------------------------------------------------------------------
# Exact search


@pytest.mark.parametrize("n", [1, 37, 4_000, 70_000])  # 70k exercises the sampled top-k bound
@pytest.mark.parametrize("k", [1, 10, 100])
def test_exact_search_matches_full_sort(n: int, k: int) -> None:
    rng = np.random.default_rng(n + k)
    matrix = unit_rows(rng, n, 24)
    ids = rng.permutation(n * 3)[:n].astype(np.int64) + 1000
    index = VectorIndex(ids, matrix, version=1)
    queries = rng.standard_normal((4, 24), dtype=np.float32)
    batch = index.search(queries, k=k)
    assert len(batch) == 4
    for query, from_batch in zip(queries, batch, strict=True):
        expected = brute_force(ids, matrix, query, k)
        assert len(expected[0]) == min(k, n)
        (single,) = index.search(query, k=k)
        assert_same(single, expected)
        assert_same(from_batch, expected)


@pytest.mark.parametrize("n", [3_000, 70_000])
def test_search_never_sorts_all_scores(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    largest: list[int] = [0]

    def recording(fn):
        def wrapper(a, *args, **kwargs):
            largest[0] = max(largest[0], np.asarray(a).size)
            return fn(a, *args, **kwargs)

        return wrapper

    for name in ("sort", "argsort", "lexsort"):
        monkeypatch.setattr(np, name, recording(getattr(np, name)))
    rng = np.random.default_rng(1)
    matrix = unit_rows(rng, n, 16)
    index = VectorIndex(np.arange(n), matrix)
    (hit,) = index.search(matrix[5], k=3)
    assert hit.ids[0] == 5
    assert hit.scores[0] == pytest.approx(1.0, abs=1e-5)
    index.search(matrix[:4], k=3)
    assert 0 < largest[0] < n // 4  # only candidates get sorted


@pytest.mark.parametrize("n", [500, 70_000])
def test_threshold_filters_inclusively(n: int) -> None:
    rng = np.random.default_rng(2)
    matrix = unit_rows(rng, n, 16)
    ids = np.arange(n, dtype=np.int64)
    index = VectorIndex(ids, matrix)
    query = matrix[3]
    for threshold in (0.95, 0.5, 0.2, -1.0):
        for k in (5, 1_000):
            (hit,) = index.search(query, k=k, threshold=threshold)
            assert_same(hit, brute_force(ids, matrix, query, k, threshold))
            assert np.all(hit.scores >= np.float32(threshold))
    # Inclusive: the query row itself scores ~1 and must survive a threshold equal to its own score.
    own = np.float32(matrix[3] @ normalize(query))
    (hit,) = index.search(query, k=1, threshold=float(own))
    assert hit.ids.tolist() == [3]
    (nothing,) = index.search(query, k=10, threshold=1.5)
    assert nothing.ids.size == 0


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("n", [2_000, 70_000])
def test_allowed_mask(fraction: float, n: int) -> None:
    rng = np.random.default_rng(int(fraction * 100) + n)
    matrix = unit_rows(rng, n, 16)
    ids = np.arange(n, dtype=np.int64) * 7
    index = VectorIndex(ids, matrix)
    allowed = rng.random(n) < fraction
    queries = rng.standard_normal((3, 16), dtype=np.float32)
    for threshold in (None, 0.3):
        batch = index.search(queries, k=10, threshold=threshold, allowed=allowed)
        for query, from_batch in zip(queries, batch, strict=True):
            expected = brute_force(ids, matrix, query, 10, threshold, allowed)
            (single,) = index.search(query, k=10, threshold=threshold, allowed=allowed)
            assert_same(single, expected)
            assert_same(from_batch, expected)
            assert set(single.ids.tolist()) <= set(ids[allowed].tolist())


def test_mask_for_ids_and_mask_validation() -> None:
    rng = np.random.default_rng(3)
    matrix = unit_rows(rng, 100, 8)
    ids = np.arange(100, dtype=np.int64) + 500
    index = VectorIndex(ids, matrix)
    mask = index.mask_for_ids([505, 510, 9999])
    assert mask.dtype == np.bool_
    assert np.flatnonzero(mask).tolist() == [5, 10]
    (hit,) = index.search(matrix[7], k=5, allowed=mask)
    assert sorted(hit.ids.tolist()) == [505, 510]
    with pytest.raises(TypeError, match="mask_for_ids"):
        index.search(matrix[7], allowed=np.array([1, 2]))
    with pytest.raises(ValueError, match="shape"):
        index.search(matrix[7], allowed=np.ones(99, bool))


@pytest.mark.parametrize("block_rows", [7, 64, 1_000_000])
def test_batch_in_row_blocks_matches_full_sort(monkeypatch: pytest.MonkeyPatch, block_rows: int) -> None:
    monkeypatch.setattr(vi_topk, "_MIN_BLOCK_ROWS", block_rows)
    monkeypatch.setattr(vi_topk, "_BLOCK_BYTES", 0)
    rng = np.random.default_rng(4)
    n = 1_000
    matrix = unit_rows(rng, n, 16)
    ids = np.arange(n, dtype=np.int64) + 1
    index = VectorIndex(ids, matrix)
    queries = np.vstack([matrix[3], rng.standard_normal((8, 16), dtype=np.float32)])
    allowed = rng.random(n) < 0.5
    allowed[3] = True
    for k, threshold, mask in [
        (1, None, None),
        (5, None, None),
        (5, 0.3, None),
        (50, None, allowed),
        (5, 0.2, allowed),
    ]:
        for query, hit in zip(queries, index.search(queries, k=k, threshold=threshold, allowed=mask), strict=True):
            assert_same(hit, brute_force(ids, matrix, query, k, threshold, mask))
    assert index.search(queries[:2], k=1)[0].ids.tolist() == [4]


def test_ties_are_ordered_by_row_and_edge_cases() -> None:
    matrix = normalize(np.array([[1, 0], [0, 1], [1, 0], [1, 0], [-1, 0]], dtype=np.float32))
    index = VectorIndex([40, 30, 20, 10, 0], matrix)
    (hit,) = index.search([2.0, 0.0], k=3)
    assert hit.ids.tolist() == [40, 20, 10]
    assert index.search([1.0, 0.0], k=0)[0].ids.size == 0
    (everything,) = index.search([1.0, 0.0], k=50)
    assert everything.ids.tolist() == [40, 20, 10, 30, 0]
    with pytest.raises(ValueError, match="dimensions"):
        index.search([1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="k must be"):
        index.search([1.0, 0.0], k=-1)
    empty = VectorIndex(np.empty(0, np.int64), np.empty((0, 2), np.float32))
    assert empty.search(np.ones((2, 2)), k=5) == [vi_index._EMPTY, vi_index._EMPTY]


def test_index_arrays_are_read_only() -> None:
    rng = np.random.default_rng(5)
    index = VectorIndex(np.arange(10), unit_rows(rng, 10, 4))
    assert index.ids.dtype == np.int64
    assert index.matrix.dtype == np.float32
    with pytest.raises(ValueError, match="read-only"):
        index.matrix[0, 0] = 1.0
    with pytest.raises(ValueError, match="matrix must be"):
        VectorIndex(np.arange(3), np.zeros((4, 2)))


# ---------------------------------------------------------------------------------------------------------------
# VectorCache


def test_cache_serves_memory_then_disk_then_loader(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    db = FakeDB(np.arange(200), unit_rows(rng, 200, 8))
    cache = VectorCache(tmp_path)
    first = cache.get("7:minilm:8", version=db.version, loader=db.loader)
    assert first.source == "loader"
    assert db.loads == 1
    assert cache.get("7:minilm:8", version=db.version, loader=db.loader) is first
    assert db.loads == 1
    directory = cache.directory("7:minilm:8")
    assert directory.parent == tmp_path
    assert sorted(os.listdir(directory)) == ["v1.ids.npy", "v1.npy"]
    # A fresh process (cache) maps the files instead of asking the database.
    other = VectorCache(tmp_path)
    mapped = other.get("7:minilm:8", version=db.version, loader=db.loader)
    assert mapped.source == "disk"
    assert db.loads == 1
    np.testing.assert_array_equal(mapped.ids, first.ids)
    np.testing.assert_array_equal(mapped.matrix, first.matrix)
    assert isinstance(np.load(directory / "v1.npy", mmap_mode="r"), np.memmap)


def test_two_caches_sharing_a_dir_stay_correct_after_a_write(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    db = FakeDB(np.arange(1, 301), unit_rows(rng, 300, 16))
    web1, web2 = VectorCache(tmp_path), VectorCache(tmp_path)
    key = "42:minilm:16"
    probe = rng.standard_normal(16, dtype=np.float32)

    def search(cache: VectorCache) -> SearchResult:
        # The service reads the counter first, then lets get() call the loader if needed.
        return cache.get(key, version=db.version, loader=db.loader).search(probe, k=1)[0]

    before1, before2 = search(web1), search(web2)
    assert before1.ids.tolist() == before2.ids.tolist()
    assert db.loads == 1  # web2 mapped web1's files
    assert 9999 not in before1.ids

    db.write(9999, probe)  # a write handled by web1's process: rows change and the counter moves to 2
    after1 = search(web1)
    assert after1.ids.tolist() == [9999]
    assert db.loads == 2
    after2 = search(web2)  # web2 still holds v1 in memory; it must notice and pick up v2 from disk
    assert after2.ids.tolist() == [9999]
    assert after2.scores[0] == pytest.approx(1.0, abs=1e-5)
    assert db.loads == 2
    assert web2.get(key, version=db.version, loader=db.loader).source == "disk"
    assert sorted(os.listdir(web1.directory(key))) == ["v2.ids.npy", "v2.npy"]

    db.delete(9999)  # and back: web2 writes this time, web1 follows
    assert search(web2).ids.tolist() == before1.ids.tolist()
    assert search(web1).ids.tolist() == before1.ids.tolist()
    assert db.loads == 3


def test_older_requested_version_is_rebuilt_without_deleting_newer_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    db = FakeDB(np.arange(50), unit_rows(rng, 50, 8))
    cache = VectorCache(tmp_path)
    cache.get("k", version=5, loader=db.loader)
    cache.get("k", version=4, loader=db.loader)  # a request that read the counter before the last write
    assert db.loads == 2
    names = set(os.listdir(cache.directory("k")))
    assert {"v4.npy", "v4.ids.npy", "v5.npy", "v5.ids.npy"} <= names


@pytest.mark.parametrize(
    "damage",
    ["missing_matrix", "missing_ids", "truncated_matrix", "garbage_ids", "swapped_writer", "wrong_version"],
)
def test_damaged_cache_files_fall_back_to_loader(tmp_path: Path, damage: str) -> None:
    rng = np.random.default_rng(9)
    db = FakeDB(np.arange(120), unit_rows(rng, 120, 8))
    VectorCache(tmp_path).get("u", version=db.version, loader=db.loader)
    directory = VectorCache(tmp_path).directory("u")
    matrix_file, ids_file = directory / "v1.npy", directory / "v1.ids.npy"
    if damage == "missing_matrix":
        matrix_file.unlink()
    elif damage == "missing_ids":
        ids_file.unlink()
    elif damage == "truncated_matrix":
        data = matrix_file.read_bytes()
        matrix_file.write_bytes(data[: len(data) // 2])
    elif damage == "garbage_ids":
        ids_file.write_bytes(os.urandom(300))
    elif damage == "swapped_writer":
        # Same version and row count written by another process: ids file from that writer (other nonce).
        vi_files._write_pair(tmp_path / "elsewhere", 1, np.arange(120), db.loader()[1], nonce=12345)
        ids_file.write_bytes((tmp_path / "elsewhere" / "v1.ids.npy").read_bytes())
    elif damage == "wrong_version":
        matrix_file.rename(directory / "v2.npy")
        ids_file.rename(directory / "v2.ids.npy")
        db.version = 2
    loads = db.loads
    index = VectorCache(tmp_path).get("u", version=db.version, loader=db.loader)
    assert index.source == "loader"
    assert db.loads == loads + 1
    expected_ids, expected_matrix = db.loader()
    np.testing.assert_array_equal(index.ids, expected_ids)
    np.testing.assert_array_equal(index.matrix, expected_matrix)
    # The rewritten files are usable again.
    assert VectorCache(tmp_path).get("u", version=db.version, loader=db.loader).source == "disk"


def test_unwritable_cache_dir_still_serves(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    rng = np.random.default_rng(10)
    db = FakeDB(np.arange(20), unit_rows(rng, 20, 4))
    cache = VectorCache(blocker)
    index = cache.get("x", version=1, loader=db.loader)
    assert index.search(index.matrix[3], k=1)[0].ids.tolist() == [3]
    assert cache.get("x", version=1, loader=db.loader) is index


def test_empty_partition(tmp_path: Path) -> None:
    cache = VectorCache(tmp_path)
    index = cache.get("empty", version=3, loader=lambda: ([], np.empty((0, 8), np.float32)))
    assert len(index) == 0
    assert index.search(np.ones(8), k=5)[0].ids.size == 0
    assert VectorCache(tmp_path).get("empty", version=3, loader=lambda: ([], [])).source == "disk"
    unknown_dims = VectorCache(tmp_path).get("none", version=1, loader=lambda: ([], []))
    assert unknown_dims.search(np.ones(8), k=5)[0].ids.size == 0


def test_lru_eviction_by_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    matrix = unit_rows(rng, 100, 16)
    one = VectorIndex(np.arange(100), matrix).nbytes
    cache = VectorCache(tmp_path, max_bytes=3 * one)
    loads: dict[str, int] = {}

    def loader_for(key: str):
        def load() -> tuple[np.ndarray, np.ndarray]:
            loads[key] = loads.get(key, 0) + 1
            return np.arange(100), matrix

        return load

    for key in ("a", "b", "c"):
        cache.get(key, version=1, loader=loader_for(key))
    assert cache.bytes_in_memory == 3 * one
    cache.get("a", version=1, loader=loader_for("a"))  # touch: b is now least recently used
    cache.get("d", version=1, loader=loader_for("d"))
    assert cache.keys() == ["c", "a", "d"]
    assert "b" not in cache
    assert len(cache) == 3
    assert cache.bytes_in_memory <= cache.max_bytes
    # b comes back from its files, not from the loader.
    assert cache.get("b", version=1, loader=loader_for("b")).source == "disk"
    assert loads == {"a": 1, "b": 1, "c": 1, "d": 1}
    # An index larger than the whole budget is still served and kept alone.
    big = VectorCache(tmp_path, max_bytes=one // 2)
    big.get("a", version=1, loader=loader_for("a"))
    big.get("b", version=1, loader=loader_for("b"))
    assert big.keys() == ["b"]


def test_invalidate_and_clear(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    db = FakeDB(np.arange(30), unit_rows(rng, 30, 4))
    cache = VectorCache(tmp_path)
    first = cache.get("k", version=1, loader=db.loader)
    cache.invalidate("k")
    assert "k" not in cache
    again = cache.get("k", version=1, loader=db.loader)
    assert again is not first
    assert again.source == "disk"
    cache.clear()
    assert len(cache) == 0
    assert cache.bytes_in_memory == 0


def test_concurrent_gets_load_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    db = FakeDB(np.arange(2_000), unit_rows(rng, 2_000, 32))
    cache = VectorCache(tmp_path, write_files=False)
    gate = threading.Barrier(8)
    results: list[VectorIndex] = []

    def worker() -> None:
        gate.wait()
        results.append(cache.get("hot", version=1, loader=db.loader))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert db.loads == 1
    assert all(r is results[0] for r in results)
    assert not (tmp_path / "hot").exists()


# ---------------------------------------------------------------------------------------------------------------
# HNSW

# Single-threaded builds make the graph, hence the recall, reproducible (~2 s on an idle machine).
HNSW_N, HNSW_D = 15_000, 32


@pytest.fixture(scope="module")
def hnsw_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(14)
    matrix = clustered(rng, HNSW_N, HNSW_D, centers=150)
    queries = clustered(rng, 200, HNSW_D, centers=150)
    return np.arange(HNSW_N, dtype=np.int64) + 10, matrix, queries


def recall_at_10(approx: list[SearchResult], exact: list[SearchResult]) -> float:
    hits = [len(set(a.ids.tolist()) & set(e.ids.tolist())) / len(e.ids) for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(hits))


def test_hnsw_recall_and_persistence(tmp_path: Path, hnsw_data, monkeypatch: pytest.MonkeyPatch) -> None:
    ids, matrix, queries = hnsw_data
    params = HnswParams(build_threads=1)
    cache = VectorCache(tmp_path, hnsw_threshold=10_000, hnsw=params, hnsw_build="sync")
    index = cache.get("big", version=1, loader=lambda: (ids, matrix))
    assert index.has_hnsw
    exact = index.search(queries, k=10, exact=True)
    exact_calls: list[int] = []
    real_exact = index._exact
    monkeypatch.setattr(index, "_exact", lambda *a: exact_calls.append(1) or real_exact(*a))
    approx = index.search(queries, k=10)
    assert exact_calls == []  # the graph answered
    recall = recall_at_10(approx, exact)
    assert recall >= 0.95, recall
    # Graph hits are re-scored exactly, best first.
    for hit in approx:
        assert np.all(np.diff(hit.scores) <= 0)
    single = index.search(queries[0], k=10)[0]
    np.testing.assert_allclose(single.scores, matrix[single.ids - 10] @ queries[0], atol=1e-5)
    # Dense filters go through the graph's filter callback, sparse ones through exact search.
    dense = np.random.default_rng(0).random(HNSW_N) < 0.6
    filtered = index.search(queries[:50], k=10, allowed=dense)
    assert all(set(h.ids.tolist()) <= set(ids[dense].tolist()) for h in filtered)
    assert recall_at_10(filtered, index.search(queries[:50], k=10, allowed=dense, exact=True)) >= 0.95
    sparse = np.zeros(HNSW_N, bool)
    sparse[::97] = True
    for hit, query in zip(index.search(queries[:5], k=10, allowed=sparse), queries[:5], strict=True):
        assert_same(hit, brute_force(ids, matrix, query, 10, None, sparse))
    # k too large for ef_search: exact answer.
    wide = index.search(queries[0], k=100)[0]
    assert_same(wide, brute_force(ids, matrix, queries[0], 100))

    graph_files = [p for p in os.listdir(cache.directory("big")) if p.endswith(".hnsw")]
    assert len(graph_files) == 1
    # Another process maps the .npy and loads the graph file instead of building one.
    monkeypatch.setattr(vi_cache, "_build_hnsw", lambda *a, **k: pytest.fail("graph rebuilt"))
    other = VectorCache(tmp_path, hnsw_threshold=10_000, hnsw=params, hnsw_build="sync")
    loaded = other.get("big", version=1, loader=lambda: pytest.fail("loader called"))
    assert loaded.has_hnsw
    assert [h.ids.tolist() for h in loaded.search(queries[:20], k=10)] == [h.ids.tolist() for h in approx[:20]]
    assert other.bytes_in_memory > loaded.matrix.nbytes + loaded.ids.nbytes  # graph counted too


def test_damaged_hnsw_file_is_discarded_and_rebuilt(tmp_path: Path) -> None:
    rng = np.random.default_rng(15)
    matrix = clustered(rng, 3_000, 16, centers=30)
    ids = np.arange(3_000)
    make = lambda: VectorCache(tmp_path, hnsw_threshold=1_000, hnsw_build="sync")  # noqa: E731
    assert make().get("g", version=1, loader=lambda: (ids, matrix)).has_hnsw
    (graph,) = [p for p in make().directory("g").iterdir() if p.suffix == ".hnsw"]
    data = bytearray(graph.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = os.urandom(64)  # hnswlib itself would accept this and crash
    graph.write_bytes(bytes(data))
    index = make().get("g", version=1, loader=lambda: (ids, matrix))
    assert index.has_hnsw
    (rebuilt,) = [p for p in make().directory("g").iterdir() if p.suffix == ".hnsw"]
    assert rebuilt.read_bytes() != bytes(data)
    assert index.search(matrix[7], k=1)[0].ids.tolist() == [7]


def test_background_hnsw_build(tmp_path: Path) -> None:
    rng = np.random.default_rng(16)
    matrix = clustered(rng, 3_000, 16, centers=30)
    ids = np.arange(3_000)
    cache = VectorCache(tmp_path, hnsw_threshold=1_000, hnsw_poll_seconds=0.0)
    index = cache.get("bg", version=1, loader=lambda: (ids, matrix))
    # Exact search answers while the graph is being built.
    assert index.search(matrix[5], k=1)[0].ids.tolist() == [5]
    assert cache.wait_for_builds(timeout=60)
    assert index.has_hnsw
    names = os.listdir(cache.directory("bg"))
    assert any(n.endswith(".hnsw") for n in names)
    assert not any(n.endswith(".lock") for n in names)
    # Below the threshold nothing is built.
    small = VectorCache(tmp_path, hnsw_threshold=5_000).get("bg", version=1, loader=lambda: (ids, matrix))
    assert not small.has_hnsw


def test_background_build_waits_for_another_process_lock(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    matrix = clustered(rng, 2_000, 16, centers=20)
    ids = np.arange(2_000)
    builder = VectorCache(tmp_path, hnsw_threshold=1_000, hnsw_poll_seconds=0.0)
    index = builder.get("lk", version=1, loader=lambda: (ids, matrix))
    assert builder.wait_for_builds(timeout=60)
    graph = next(p for p in builder.directory("lk").iterdir() if p.suffix == ".hnsw")
    graph.unlink()
    # Simulate another process building the graph for this exact matrix (fresh lock file).
    lock = builder.directory("lk") / f"{vi_files._hnsw_stem(1, index.nonce)}.hnsw.lock"
    lock.write_text("12345")
    waiter = VectorCache(tmp_path, hnsw_threshold=1_000, hnsw_poll_seconds=0.0)
    mapped = waiter.get("lk", version=1, loader=lambda: pytest.fail("loader called"))
    assert waiter.wait_for_builds(timeout=5)
    assert not mapped.has_hnsw  # it did not start a second build
    builder._save_hnsw(index._hnsw.index, builder.directory("lk"), vi_files._hnsw_stem(1, index.nonce))
    lock.unlink()
    assert waiter.get("lk", version=1, loader=lambda: pytest.fail("loader called")).has_hnsw
