"""The backend under gunicorn for the HTTP benchmarks: a fresh database and media folder, migrated,
served on a free port, with small JSON request helpers.

The database is a fresh SQLite file in the work folder unless `DATABASE_URL` is set (e.g. to
PostgreSQL)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(
    port: int, method: str, path: str, body: dict | None = None, token: str | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def request_json(
    port: int, method: str, path: str, body: dict | None = None, token: str | None = None, timeout: float = 30
) -> tuple[int, dict]:
    status, data = request(port, method, path, body, token, timeout=timeout)
    return status, json.loads(data) if data else {}


def register(port: int, email: str) -> str:
    """A new user's access token."""
    body = {"email": email, "password": "Bench-Password-123", "name": "Bench"}
    status, answer = request_json(port, "POST", "/api/auth/register", body)
    assert status == 201, answer
    return answer["data"]["accessToken"]


def server_env(workdir: Path, *, settings_module: str = "bench.bench_settings", **overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "MEDIA_ROOT": str(workdir / "media"),
        **overrides,
    }
    env.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    return env


def database_engine(env: dict[str, str]) -> str:
    return "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite"


@dataclass
class Server:
    port: int
    process: subprocess.Popen

    @property
    def worker_pid(self) -> int:
        children = psutil.Process(self.process.pid).children()
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {len(children)}")
        return children[0].pid


@contextmanager
def running_server(env: dict[str, str], *, workers: int = 1, extra_args: Sequence[str] = ()) -> Iterator[Server]:
    """Migrate, start gunicorn (sync workers), wait for /health; stopped on exit."""
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    command = [PY, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    command += ["--log-level", "warning", *extra_args]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(port, "GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.1)
        yield Server(port=port, process=process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
