"""Fixtures of the video tests: generated clips, uploads, eager Celery, and the real worker
process of `tests.celery_worker`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psutil
import pytest
from django.conf import settings as django_settings
from imageio_ffmpeg import get_ffmpeg_exe

from bench.server import request_json, running_server
from bench.video_upload_bench import GUNICORN_ARGS, upload_server_env
from core import ffmpeg as core_ffmpeg
from tests.celery_worker import (  # noqa: F401 - fixtures
    WorkerProcess,
    _broker_url,
    _database_url,
    celery_worker_process,
    wait_for,
    worker,
)
from tests.conftest import PASSWORD
from tests.video.media_fixtures import make_clip, truncate_copy, write_garbage

TERMINAL = {"completed", "failed", "cancelled"}


def _ffmpeg_flavours() -> list[str]:
    """The pinned ffmpeg always; the system one too when the machine has a supported one on PATH."""
    system = shutil.which("ffmpeg")
    if system is None or os.path.realpath(system) == os.path.realpath(get_ffmpeg_exe()):
        return ["pinned"]
    try:
        core_ffmpeg.check_version(core_ffmpeg._version_line(system), path=system)
    except core_ffmpeg.FfmpegUnavailable:
        return ["pinned"]  # tests/video/test_ffmpeg_binary.py covers how an old one is refused
    return ["pinned", "system"]


@pytest.fixture(params=_ffmpeg_flavours())
def each_ffmpeg(request, monkeypatch) -> core_ffmpeg.FfmpegBinary:
    """Runs the test once per ffmpeg the product may be given: what it makes must not depend on it."""
    if request.param == "system":
        monkeypatch.setenv(core_ffmpeg.ENV_VAR, "ffmpeg")
    else:
        monkeypatch.delenv(core_ffmpeg.ENV_VAR, raising=False)
    binary = core_ffmpeg.ffmpeg_binary()
    assert binary.pinned == (request.param == "pinned")
    return binary


# name -> how to make it (all small: 320x240 or less, a few seconds).
CLIP_SPECS: dict[str, dict[str, Any]] = {
    "mp4": {"seconds": 6, "container": "mp4", "vcodec": "libx264", "acodec": "aac"},
    "index": {"seconds": 6, "container": "mp4", "vcodec": "libx264", "acodec": None, "pattern": "index", "gop": 10},
    "mov": {"seconds": 3, "container": "mov", "vcodec": "libx264", "acodec": "aac"},
    "wide": {"seconds": 2, "container": "mp4", "vcodec": "libx264", "acodec": None, "width": 640, "height": 360},
    "avi": {"seconds": 3, "container": "avi", "vcodec": "mpeg4", "acodec": "libmp3lame"},
    "wmv": {"seconds": 3, "container": "asf", "vcodec": "wmv2", "acodec": "wmav2"},
    "webm": {"seconds": 3, "container": "webm", "vcodec": "libvpx-vp9", "acodec": "libopus"},
    "hevc": {"seconds": 2, "container": "mp4", "vcodec": "libx265", "acodec": None, "extra": ["-tag:v", "hvc1"]},
    "rotated": {"seconds": 3, "container": "mp4", "vcodec": "libx264", "acodec": "aac", "rotate": 90},
    "no_audio": {"seconds": 3, "container": "mp4", "vcodec": "libx264", "acodec": None},
    "short": {"seconds": 1, "container": "mp4", "vcodec": "libx264", "acodec": None},
    "faststart": {
        "seconds": 6,
        "container": "mp4",
        "vcodec": "libx264",
        "acodec": None,
        "extra": ["-movflags", "+faststart"],
    },
    "mkv": {"seconds": 2, "container": "matroska", "vcodec": "libx264", "acodec": None},
    "flv": {"seconds": 2, "container": "flv", "vcodec": "libx264", "acodec": None},
    "audio_only": {"seconds": 2, "container": "mp4", "vcodec": None, "acodec": "aac"},
    "too_long": {
        "seconds": 301,
        "container": "mp4",
        "vcodec": "libx264",
        "acodec": None,
        "width": 64,
        "height": 48,
        "fps": 1,
    },
    "slow": {
        "seconds": 40,
        "container": "mp4",
        "vcodec": "libx264",
        "acodec": None,
        "width": 1280,
        "height": 720,
        "fps": 30,
    },
}
SUFFIXES = {"matroska": ".mkv", "asf": ".wmv"}


class Clips:
    """Generates each clip once per session, on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name in self._made:
            return self._made[name]
        if name == "garbage":
            path = write_garbage(self.root / "garbage.mp4", size=200 * 1024)
        elif name == "truncated":
            path = truncate_copy(self["mp4"], self.root / "truncated.mp4", fraction=0.5)
        elif name == "faststart_truncated":
            path = truncate_copy(self["faststart"], self.root / "faststart_truncated.mp4", fraction=0.4)
        elif name == "empty":
            path = self.root / "empty.mp4"
            path.write_bytes(b"")
        else:
            spec = dict(CLIP_SPECS[name])
            container = spec["container"]
            suffix = SUFFIXES.get(container, f".{container}")
            path = make_clip(self.root / f"{name}{suffix}", **spec)
        self._made[name] = path
        return path


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> Clips:
    return Clips(tmp_path_factory.mktemp("clips"))


def upload(client, path: Path | None, *, headers: dict[str, str] | None = None, **fields):
    """POST /api/video/upload as the mobile client does (multipart, camelCase fields)."""
    data: dict[str, Any] = {
        key: str(value).lower() if isinstance(value, bool) else value for key, value in fields.items()
    }
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in (headers or {}).items()}
    if path is None:
        return client.post("/api/video/upload", data, format="multipart", **extra)
    with open(path, "rb") as handle:
        data["video"] = handle
        return client.post("/api/video/upload", data, format="multipart", **extra)


@pytest.fixture
def process(client_a, eager, django_capture_on_commit_callbacks):
    """Upload a clip as `client_a`; the on-commit hook queues the task, which runs right away."""
    from video.models import VideoJob

    def run(clip: Path, *, client=None, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(client or client_a, clip, **fields)
        assert response.status_code == 202, response.content
        return VideoJob.objects.get(id=response.json()["data"]["id"])

    return run


def media_files(root: Path | str) -> list[str]:
    """Every file under a media root, relative, sorted."""
    root = Path(root)
    if not root.exists():
        return []
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def wait_terminal(job_id, *, timeout: float = 90.0):
    from video.models import VideoJob

    def done():
        job = VideoJob.objects.filter(id=job_id).first()
        return job if job is not None and job.status in TERMINAL else None

    return wait_for(done, timeout=timeout, what=f"job {job_id} to finish")


def extraction_of(running: WorkerProcess, job_id: str) -> psutil.Process | None:
    """The worker's ffmpeg extracting this job's frames (the one run reporting -progress)."""
    assert running.proc is not None
    for child in psutil.Process(running.proc.pid).children(recursive=True):
        try:
            command = child.cmdline()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if "-progress" in command and any(job_id in arg for arg in command):
            return child
    return None


@contextmanager
def held_mid_job(running: WorkerProcess, job_id: str, *, min_progress: int = 10) -> Iterator[list[int]]:
    """Wait until the worker is well into the job (claimed, writing frames, `min_progress`
    reached), then hold it there by stopping its frame extraction; let it go on at exit. Yields
    the progress values seen since the upload, in order."""
    from video.models import VideoJob

    seen: list[int] = []

    def busy():
        job = VideoJob.objects.filter(id=job_id).first()
        assert job is not None, "the job is gone"
        assert job.status not in {"completed", "failed", "cancelled"}, f"job ended early: {job.status}"
        seen.append(job.progress)
        if job.status != "processing" or job.progress < min_progress:
            return None
        return extraction_of(running, job_id)

    extraction = wait_for(busy, timeout=90, interval=0.01, what="the worker to be mid-job")

    def stopped() -> bool:
        state = extraction.status()  # NoSuchProcess (a failure) if it ended before the signal
        assert state != psutil.STATUS_ZOMBIE, "the frame extraction ended before it was held"
        return state == psutil.STATUS_STOPPED

    try:
        extraction.suspend()
        wait_for(stopped, timeout=30, interval=0.01, what="ffmpeg to stop")
        job = VideoJob.objects.get(id=job_id)
        # Held inside the extraction (5..90 %): whatever progress lines ffmpeg had already written
        # are read, then the worker waits for more and cannot get past the extraction.
        assert (job.status, job.attempts) == ("processing", 1)
        assert min_progress <= job.progress <= 90
        seen.append(job.progress)
        yield seen
    finally:
        with suppress(psutil.NoSuchProcess):  # killed with its worker
            extraction.resume()


@pytest.fixture
def upload_server(transactional_db, tmp_path):
    """gunicorn with one sync worker on the test database and broker (the upload benches' setup),
    for uploads measured through the real HTTP stack."""
    env = {**upload_server_env(tmp_path), "DATABASE_URL": _database_url(), "CELERY_BROKER_URL": _broker_url()}
    if django_settings.REDIS_URL:
        env["REDIS_URL"] = django_settings.REDIS_URL
    with running_server(env, extra_args=GUNICORN_ARGS) as running:
        yield running


def signed_in_token(port: int, user: Any) -> str:
    """An access token for `user` (created with the suite's password), signed in over HTTP."""
    status, body = request_json(port, "POST", "/api/auth/login", {"email": user.email, "password": PASSWORD})
    assert status == 200, body
    return str(body["data"]["accessToken"])
