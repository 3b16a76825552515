"""``VectorCache``: the process-wide LRU of indexes, loaded from files or the database by version,
with HNSW graphs loaded or built in the background."""

from __future__ import annotations

import contextlib
import logging
import operator
import os
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from embeddings.vector_index.files import (
    _file_crc32,
    _find_hnsw,
    _hnsw_stem,
    _read_pair,
    _remove_older,
    _try_lock,
    _write_pair,
    safe_key,
)
from embeddings.vector_index.hnsw import HnswParams, _build_hnsw
from embeddings.vector_index.index import VectorIndex

logger = logging.getLogger(__name__)

Loader = Callable[[], tuple[ArrayLike, ArrayLike]]


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

    def peek(self, key: str) -> VectorIndex | None:
        """The in-memory index of ``key`` at whatever version it holds, or None; never loads.

        For callers that search first and confirm afterwards that the version is still current (a
        reader must then discard the answer and ``get`` the current version when it is not)."""
        with self._lock:
            index = self._entries.get(key)
            if index is not None:
                self._entries.move_to_end(key)
        if index is not None:
            self._ensure_hnsw(key, index, on_load=False)
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
