"""`make run` as a person (or a supervisor) uses it: two instances side by side, each on its own
database, each finishing its own video job; then SIGTERM to what make started, and nothing of
either instance left running 10 s later.

Each instance is the real thing: make, honcho, runserver with its autoreloader, a prefork Celery
worker with embedded beat, on the embedded broker. They share this checkout (and so `var/`), which is
exactly how a leftover worker of one used to take the other's jobs.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from tests.celery_worker import wait_for
from tests.net import free_port
from tests.video.media_fixtures import make_clip

ROOT = Path(settings.BASE_DIR)
START_SECONDS = 240  # migrations of a fresh database and collectstatic run first, on a busy 2-core machine
STOP_SECONDS = 10


@dataclass
class Instance:
    port: int
    make: subprocess.Popen
    log: Path

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()

    def healthy(self) -> bool:
        if self.make.poll() is not None:
            raise AssertionError(f"make run exited ({self.make.returncode}):\n{self.tail()}")
        try:
            return self.request("GET", "/health")[0] == 200
        except OSError:
            return False

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_instance(tmp_path: Path, name: str) -> Instance:
    folder = tmp_path / name
    folder.mkdir()
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        # The embedded default, whatever the suite itself runs on.
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "INSTANCE_DIR"}
        and not key.startswith("PYTEST")
    }
    env.update(
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
        MEDIA_ROOT=str(folder / "media"),
        STATIC_ROOT=str(folder / "static"),
        RATE_LIMITS_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    log = folder / "make-run.log"
    with log.open("wb") as handle:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "run", "HOST=127.0.0.1", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a failed test can clean up the whole tree
        )
    return Instance(port=port, make=make, log=log)


def multipart(fields: dict[str, str], file_field: str, path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{path.name}"\r\n'
        f"Content-Type: video/mp4\r\n\r\n".encode()
        + path.read_bytes()
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def process_video(instance: Instance, clip: Path, email: str) -> str:
    status, body = instance.request(
        "POST",
        "/api/auth/register",
        json.dumps({"email": email, "password": "Correct-Horse-42-battery", "name": "Runner"}).encode(),
        **{"Content-Type": "application/json"},
    )
    assert status == 201, body
    token = body["data"]["accessToken"]
    payload, content_type = multipart({"frameInterval": "1.0"}, "video", clip)
    status, body = instance.request(
        "POST", "/api/video/upload", payload, **{"Content-Type": content_type, "Authorization": f"Bearer {token}"}
    )
    assert status == 202, body
    job_id = body["data"]["id"]

    def finished() -> dict | None:
        data = instance.request("GET", f"/api/video/jobs/{job_id}", Authorization=f"Bearer {token}")[1]["data"]
        return data if data["status"] in {"completed", "failed", "cancelled"} else None

    job = wait_for(finished, timeout=180, interval=0.5, what=f"video job {job_id} on port {instance.port}")
    assert job["status"] == "completed", f"{job}\n{instance.tail()}"
    return job_id


def descendants(process: subprocess.Popen) -> list[psutil.Process]:
    return psutil.Process(process.pid).children(recursive=True)


def alive(processes: list[psutil.Process]) -> list[str]:
    left = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(" ".join(proc.cmdline()))
        except psutil.NoSuchProcess:
            continue
    return left


@pytest.fixture
def instances(tmp_path):
    started: list[Instance] = []
    yield lambda name: started.append(start_instance(tmp_path, name)) or started[-1]
    for instance in started:  # a failed test leaves nothing behind either
        with contextlib.suppress(ProcessLookupError):
            os.killpg(instance.make.pid, signal.SIGKILL)
        for proc in psutil.process_iter(["environ"]):
            try:
                if (proc.info["environ"] or {}).get("DATABASE_URL", "").startswith(f"sqlite:///{tmp_path}"):
                    proc.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue


def test_two_instances_each_finish_their_own_jobs_and_stop_cleanly_on_sigterm(instances, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", seconds=3, width=160, height=120, container="mp4", vcodec="libx264")
    first, second = instances("first"), instances("second")
    wait_for(lambda: first.healthy() and second.healthy(), timeout=START_SECONDS, interval=0.5, what="both /health")

    # Each instance's worker takes its own job: neither is lost to the other's worker.
    process_video(first, clip, "first@example.com")
    process_video(second, clip, "second@example.com")

    # A supervisor signals make itself (make forwards SIGTERM to its recipe); a script may signal the
    # process make started. Both must take everything down.
    for instance, target in ((first, "launcher"), (second, "make")):
        tree = descendants(instance.make)
        commands = [" ".join(p.cmdline()) for p in tree]
        assert any("honcho" in c for c in commands), commands
        assert any("runserver" in c for c in commands), commands
        assert any("celery" in c for c in commands), commands
        victim = psutil.Process(instance.make.pid).children()[0] if target == "launcher" else instance.make
        stopped_at = time.monotonic()
        victim.send_signal(signal.SIGTERM)
        wait_for(
            lambda tree=tree: not alive(tree),
            timeout=STOP_SECONDS,
            interval=0.2,
            what=f"every process of make run to stop after SIGTERM to {target}",
        )
        print(f"make run (SIGTERM to {target}) stopped in {time.monotonic() - stopped_at:.1f} s")
        instance.make.wait(timeout=STOP_SECONDS)
