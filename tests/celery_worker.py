"""A real Celery worker process for the tests that must go through one (video jobs, queued
transcriptions, the reapers).

The worker is `celery -A config worker` in a subprocess, on the same broker (Redis when the
suite runs with REDIS_URL, else a SQLAlchemy/SQLite broker file private to this test database),
the same test database and the same MEDIA_ROOT as the test process. Tests that use it run with
`transactional_db`, so what they write is committed and visible to the worker. Test packages
expose the fixtures by importing them into their conftest.py.
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
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from config.instance import embedded_broker_url, instance_dir

BASE_DIR = Path(django_settings.BASE_DIR)


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


# Killed-worker tests: the next worker's window before a silent running job is presumed lost. The
# dead run's beat is put an hour back (`dead_beat`), so it is stale on the first pass, while a live
# run keeps a window that a pause on a loaded machine cannot outlast.
STALE_SECONDS = "30"


def dead_beat(model: Any, job_id: Any) -> None:
    """Date the last beat of `job_id`'s killed run an hour back."""
    from django.utils import timezone

    model.objects.filter(pk=job_id).update(heartbeat_at=timezone.now() - timedelta(hours=1))


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


def _instance_dir() -> Path:
    return instance_dir(Path(django_settings.VAR_DIR), connection.settings_dict)


def _broker_url() -> str:
    if django_settings.REDIS_URL:
        return django_settings.CELERY_BROKER_URL
    # The test database's own broker file (config/instance.py): a worker of another instance on this
    # machine, such as a `make run` of this checkout, never takes the suite's tasks.
    folder = _instance_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return embedded_broker_url(folder)


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
            f"--hostname=test-worker-{uuid.uuid4().hex[:8]}@%h",
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
        "INSTANCE_DIR": str(_instance_dir()),
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
