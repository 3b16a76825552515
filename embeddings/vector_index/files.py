"""Cache files of a partition: the memory-mappable ``.npy`` pair with its trailer, HNSW graph files,
cleanup of older versions, and the cross-process build lock."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.vector_index.encoding import _DISK_DTYPE, _IDS_DTYPE

logger = logging.getLogger(__name__)

_MAGIC = int.from_bytes(b"VECIDX01", "little")
_TRAILER = struct.Struct("<qqq")  # magic, nonce, version
_HNSW_LOCK_STALE_SECONDS = 180.0
_TMP_STALE_SECONDS = 3600.0
_FILE_VERSION_RE = re.compile(r"^v(\d+)[.-]")


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
