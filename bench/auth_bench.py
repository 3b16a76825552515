"""Requests/s of `GET /api/auth/me` against a bare DRF view, on the same gunicorn setup.

    .venv/bin/python bench/auth_bench.py [--workers 2] [--seconds 5] [--clients 8]

Both endpoints are served by one gunicorn (sync workers) in the same run; each is loaded by the
same client for the same time, and the ratio is printed. The database is a fresh SQLite file unless
`DATABASE_URL` is set (e.g. to PostgreSQL).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

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


def load(port: int, path: str, token: str | None, seconds: float, clients: int) -> tuple[float, int]:
    """Closed-loop load: `clients` threads issue requests back to back for `seconds`."""
    stop = time.perf_counter() + seconds
    counts = [0] * clients
    errors = [0] * clients

    def worker(i: int) -> None:
        while time.perf_counter() < stop:
            status, _ = request(port, "GET", path, token=token)
            if status == 200:
                counts[i] += 1
            else:
                errors[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return sum(counts) / elapsed, sum(errors)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="auth-bench-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "MEDIA_ROOT": str(workdir / "media"),
    }
    env.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)

    port = free_port()
    server = subprocess.Popen(
        [
            PY,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                request(port, "GET", "/health")
                break
            except OSError:
                time.sleep(0.1)
        status, body = request(
            port,
            "POST",
            "/api/auth/register",
            {"email": "bench@example.com", "password": "Bench-Password-123", "name": "Bench"},
        )
        assert status == 201, body
        token = json.loads(body)["data"]["accessToken"]
        assert request(port, "GET", "/api/auth/me", token=token)[0] == 200

        # Warm both paths (imports, connections) before measuring.
        load(port, "/bench/bare", None, 1.0, args.clients)
        load(port, "/api/auth/me", token, 1.0, args.clients)
        bare_runs, me_runs = [], []
        for _ in range(args.rounds):  # interleaved, so drift on a noisy machine hits both
            bare_runs.append(load(port, "/bench/bare", None, args.seconds, args.clients)[0])
            me_runs.append(load(port, "/api/auth/me", token, args.seconds, args.clients)[0])
        bare, me = sorted(bare_runs)[len(bare_runs) // 2], sorted(me_runs)[len(me_runs) // 2]
        engine = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite"
        print(f"gunicorn sync workers: {args.workers}, clients: {args.clients}, database: {engine}")
        print(f"bare DRF view (no auth):    {bare:8.0f} req/s")
        print(f"GET /api/auth/me:           {me:8.0f} req/s")
        print(f"ratio me/bare:              {me / bare:8.2f}  (1.00 = authentication costs nothing)")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
