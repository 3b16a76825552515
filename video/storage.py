"""The one place that knows where video files live in the default storage, and how to reach them
as local files. Every storage name of the video app is made here:

    videos/<user>/<job>/<name>                      the upload
    frames/<user>/<job>/<run>/frame_00000.jpg        frames of one processing run
    thumbnails/<user>/<job>/thumbnail-<run>.jpg      the thumbnail of that run
    thumbnails/<user>/<job>/cache/t<ms>-s<side>.jpg  thumbnails made on demand
    thumbnails/<user>/<job>/storyboard.jpg, preview.gif   derived assets
    resumable/<user>/<upload>.part                   a resumable upload until its last byte is in

Rows hold these names, never absolute paths, so the same data works on a local disk and on S3.
The media layer (`video.media`) works on local paths: with a storage that has local paths
(FileSystemStorage) it reads the upload in place and writes straight into the storage folders;
with any other storage the video is downloaded to a temporary file first and results uploaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, default_storage

from video import media

logger = logging.getLogger(__name__)

VIDEOS, FRAMES, THUMBNAILS = "videos", "frames", "thumbnails"
ROOTS = (VIDEOS, FRAMES, THUMBNAILS)
# Not in ROOTS: the orphan sweep must not take a partial upload for a stray file; the resumable
# upload expiry (video.resumable.services) owns these.
RESUMABLE = "resumable"
THUMBNAIL_CACHE = "cache"
RUN_THUMBNAIL_PREFIX = "thumbnail-"


@dataclass(frozen=True)
class JobPaths:
    """The storage names of one job's files."""

    user_id: int
    job_id: uuid.UUID | str

    def upload(self, filename: str) -> str:
        return f"{VIDEOS}/{self.user_id}/{self.job_id}/{filename}"

    @property
    def frames_root(self) -> str:
        """The folder holding one sub-folder per processing run."""
        return f"{FRAMES}/{self.user_id}/{self.job_id}"

    def frames(self, run: str) -> str:
        return f"{self.frames_root}/{run}"

    @property
    def thumbnails(self) -> str:
        return f"{THUMBNAILS}/{self.user_id}/{self.job_id}"

    def run_thumbnail_file(self, run: str) -> str:
        return f"{RUN_THUMBNAIL_PREFIX}{run}.jpg"

    def run_thumbnail(self, run: str) -> str:
        return f"{self.thumbnails}/{self.run_thumbnail_file(run)}"

    @property
    def thumbnail_cache(self) -> str:
        return f"{self.thumbnails}/{THUMBNAIL_CACHE}"

    def cached_thumbnail(self, *, at: float, max_side: int) -> str:
        return f"{self.thumbnail_cache}/t{round(at * 1000)}-s{max_side}.jpg"

    def thumbnails_file(self, filename: str) -> str:
        """A file directly in the job's thumbnails folder (derived assets, run thumbnails)."""
        return f"{self.thumbnails}/{filename}"

    @property
    def prefixes(self) -> list[str]:
        """Every folder of the job: deleting them deletes all of its files."""
        return [f"{root}/{self.user_id}/{self.job_id}" for root in ROOTS]


def user_prefixes(*, user_id: int) -> list[str]:
    return [f"{root}/{user_id}" for root in (*ROOTS, RESUMABLE)]


def resumable_upload(*, user_id: int, upload_id: uuid.UUID | str) -> str:
    """The storage name of a resumable upload's bytes while they arrive."""
    return f"{RESUMABLE}/{user_id}/{upload_id}.part"


def appendable_path(name: str) -> str:
    """A local file the bytes of `name` are appended to: the storage file itself on a local
    storage; on others (S3 cannot append) a spool file on this machine, uploaded into storage
    when the upload is complete."""
    local = local_path(name)
    if local is None:
        spool = Path(getattr(settings, "FILE_UPLOAD_TEMP_DIR", None) or tempfile.gettempdir()) / "mma-spool"
        local = str(spool / name)
    os.makedirs(os.path.dirname(local), exist_ok=True)
    return local


def delete_appendable(name: str) -> None:
    """Remove the bytes of a resumable upload wherever `appendable_path` put them."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(appendable_path(name))


def job_id_of(name: str) -> str:
    """The job a stored name belongs to ("" for names outside any job folder)."""
    parts = name.split("/")
    return parts[2] if len(parts) > 3 else ""


def is_cached_thumbnail(name: str) -> bool:
    return name.startswith(f"{THUMBNAILS}/") and f"/{THUMBNAIL_CACHE}/" in name


def storage() -> Storage:
    return default_storage


def local_path(name: str) -> str | None:
    """The file's path on this machine, or None for storages without local files (S3, memory).

    Only FileSystemStorage (and subclasses) count: other backends may implement `path()` for
    names that are not files on this disk."""
    current = storage()
    if not isinstance(current, FileSystemStorage):  # a LazyObject reports its target's class
        return None
    try:
        return current.path(name)
    except NotImplementedError:
        return None


def walk(prefix: str) -> Iterator[str]:
    """Every file name under `prefix` (recursively); nothing if the folder does not exist."""
    try:
        dirs, files = storage().listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        yield f"{prefix}/{name}"
    for sub in dirs:
        yield from walk(f"{prefix}/{sub}")


def listdir(prefix: str) -> tuple[list[str], list[str]]:
    """Folders and files directly under `prefix`; empty for a folder that does not exist."""
    try:
        return storage().listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return [], []


def delete_tree(prefix: str) -> int:
    """Delete every file under `prefix`; returns how many. Empty local folders go too."""
    local = local_path(prefix)
    if local is not None:
        count = sum(len(files) for _root, _dirs, files in os.walk(local))
        shutil.rmtree(local, ignore_errors=True)
        _prune_empty_parents(Path(local))
        return count
    count = 0
    for name in list(walk(prefix)):
        storage().delete(name)
        count += 1
    return count


def _prune_empty_parents(path: Path) -> None:
    """Remove now-empty parent folders up to (not including) the storage root."""
    root = Path(storage().path("")).resolve()
    parent = path.parent.resolve()
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def delete_quietly(name: str) -> None:
    if not name:
        return
    try:
        storage().delete(name)
    except OSError:
        logger.warning("Could not delete %s from storage", name, exc_info=True)


def delete_files(prefixes: list[str], names: list[str]) -> None:
    """Delete the folders, and the single files not inside one of them."""
    for prefix in prefixes:
        delete_tree(prefix)
    for name in names:
        if name and not any(name.startswith(prefix + "/") for prefix in prefixes):
            delete_quietly(name)


def prune_empty_dirs() -> None:
    """Remove folders left empty under the video roots (local storages only)."""
    for root in ROOTS:
        local = local_path(root)
        if local is None or not os.path.isdir(local):
            continue
        for current, _dirs, _files in os.walk(local, topdown=False):
            if current != local and not os.listdir(current):
                with contextlib.suppress(OSError):
                    os.rmdir(current)


@contextlib.contextmanager
def local_video(name: str) -> Iterator[str]:
    """A local path to a stored video: in place for local storages, else a temporary download."""
    local = local_path(name)
    if local is not None:
        if not os.path.exists(local):
            raise media.MediaError("The uploaded video is no longer in storage.")
        yield local
        return
    with tempfile.NamedTemporaryFile(suffix=Path(name).suffix, prefix="video-") as tmp:
        try:
            source = storage().open(name, "rb")
        except FileNotFoundError:
            raise media.MediaError("The uploaded video is no longer in storage.") from None
        with source:
            for chunk in iter(lambda: source.read(1024 * 1024), b""):
                tmp.write(chunk)
        tmp.flush()
        yield tmp.name


@contextlib.contextmanager
def output_dir(prefix: str) -> Iterator[tuple[str, bool]]:
    """A local folder for results that will live under `prefix`: the storage folder itself when
    the storage is local (no copy), else a temporary folder whose files `publish` uploads."""
    local = local_path(prefix)
    if local is not None:
        os.makedirs(local, exist_ok=True)
        yield local, True
        return
    with tempfile.TemporaryDirectory(prefix="video-out-") as tmp:
        yield tmp, False


def publish(local_file: str, name: str, *, in_place: bool) -> str:
    """Make a result written at `local_file` available in storage as `name`."""
    if in_place:
        return name
    current = storage()
    if current.exists(name):
        current.delete(name)
    return save_file(local_file, name)


def save_file(local_file: str, name: str) -> str:
    """Upload a local file as `name`; returns the name the storage chose (another if taken)."""
    with open(local_file, "rb") as handle:
        return storage().save(name, File(handle, name=os.path.basename(name)))


def storage_name_for(local_file: str, *, prefix: str, local_dir: str) -> str:
    relative = os.path.relpath(local_file, local_dir).replace(os.sep, "/")
    return f"{prefix}/{relative}"
