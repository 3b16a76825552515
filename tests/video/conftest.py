"""Fixtures of the video tests: generated clips, uploads, eager Celery, and a real worker process.

The worker is `celery -A config worker` in a subprocess, on the same broker (Redis when the
suite runs with REDIS_URL, else a SQLAlchemy/SQLite broker file private to this test database),
the same test database and the same MEDIA_ROOT as the test process. Tests that use it run with
`transactional_db`, so what they write is committed and visible to the worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from tests.video.media_fixtures import make_clip, truncate_copy, write_garbage

BASE_DIR = Path(django_settings.BASE_DIR)
TERMINAL = {"completed", "failed", "cancelled"}

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
def eager(settings) -> Iterator[None]:
    """Tasks run in the calling process (CELERY_TASK_ALWAYS_EAGER)."""
    from config.celery import app

    # Read first: Celery loads its configuration from the Django settings lazily, and loading it
    # after the change below would make "eager" the value to restore.
    previous = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


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


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def wait_terminal(job_id, *, timeout: float = 90.0):
    from video.models import VideoJob

    def done():
        job = VideoJob.objects.filter(id=job_id).first()
        return job if job is not None and job.status in TERMINAL else None

    return wait_for(done, timeout=timeout, what=f"job {job_id} to finish")


# --- The real worker -------------------------------------------------------------------------------


def _database_url() -> str:
    """The URL of the test database (the test runner has already switched NAME to it)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"


def _broker_url() -> str:
    if django_settings.REDIS_URL:
        return django_settings.CELERY_BROKER_URL
    # A broker file of this test database only: concurrent test runs must not take each other's tasks.
    stem = Path(connection.settings_dict["NAME"]).with_suffix("")
    return f"sqla+sqlite:///{stem}-broker.sqlite3"


@dataclass
class WorkerProcess:
    media_root: Path
    log_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    generations: list[Path] = field(default_factory=list)

    def start(self, **extra_env: str) -> None:
        self.log_path = self.log_dir / f"worker-{len(self.generations)}.log"
        self.generations.append(self.log_path)
        env = {**self.env, **{key: str(value) for key, value in extra_env.items()}}
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname=video-test-{uuid.uuid4().hex[:8]}@%h",
        ]
        if env.get("WITH_BEAT"):
            command += ["--beat", f"--schedule={self.log_dir / 'beat-schedule'}"]
        log = open(self.log_path, "wb")  # noqa: SIM115 - the worker writes to it until it stops
        self.proc = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        wait_for(self._ready, timeout=60, interval=0.2, what="the Celery worker to start")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the worker exited ({self.proc.returncode}):\n{self.log()}")
        return b"ready." in self.log_path.read_bytes()

    def log(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.generations if path.exists())

    def kill(self) -> None:
        """SIGKILL the whole worker (no chance to acknowledge, reject or clean anything)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def _point_app_at(broker_url: str) -> str:
    """Make this process publish to `broker_url`; returns the previous URL."""
    from config.celery import app

    previous = app.conf.broker_url
    if broker_url == previous:
        return previous
    # The same reset Celery does after a fork: pools made for the old URL are dropped (not
    # closed: kombu keeps them in a registry by URL, and a closed one would be handed out again).
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
    app.conf.broker_url = broker_url
    return previous


@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[WorkerProcess]:
    media_root = tmp_path_factory.mktemp("worker-media")
    broker = _broker_url()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker,
        "MEDIA_ROOT": str(media_root),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
    }
    if django_settings.REDIS_URL:
        env["REDIS_URL"] = django_settings.REDIS_URL
    previous = _point_app_at(broker)
    worker = WorkerProcess(media_root=media_root, log_dir=tmp_path_factory.mktemp("worker-logs"), env=env)
    worker.start()
    yield worker
    worker.stop()
    _point_app_at(previous)


@pytest.fixture
def worker(celery_worker_process: WorkerProcess, transactional_db, settings) -> WorkerProcess:
    """The module's worker, with this test's files in the worker's MEDIA_ROOT."""
    from config.celery import app

    assert not app.conf.task_always_eager, "tasks must go to the worker, not run in the test process"
    settings.MEDIA_ROOT = celery_worker_process.media_root
    if django_settings.REDIS_URL:
        # The suite's cache shares the Redis database and is flushed around every test, which
        # also drops kombu's routing table; declare the queue again so publishing finds it.
        with app.connection_for_write() as conn:
            app.amqp.queues[app.conf.task_default_queue].bind(conn.default_channel).declare()
    if celery_worker_process.proc is None or celery_worker_process.proc.poll() is not None:
        celery_worker_process.start()
    return celery_worker_process
