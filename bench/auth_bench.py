"""Requests/s of `GET /api/auth/me` against the stock stack's `/me` and a bare DRF view, on one gunicorn.

    .venv/bin/python bench/auth_bench.py [--workers 2] [--seconds 5] [--clients 8]

All three endpoints are served by one gunicorn (sync workers) in the same run; each is loaded by
the same client for the same time, and the ratios are printed. The stock reference is what a
conventional project runs (simplejwt's stock `JWTAuthentication`, a ModelSerializer of the user,
DRF's JSON renderer; see bench/bench_urls.py); ours also checks the device session and sends the
quota headers. The database is a fresh SQLite file unless
`DATABASE_URL` is set (e.g. to PostgreSQL).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.server import database_engine, register, request, running_server, server_env


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

    env = server_env(Path(tempfile.mkdtemp(prefix="auth-bench-")))
    with running_server(env, workers=args.workers) as server:
        port = server.port
        token = register(port, "bench@example.com")
        assert request(port, "GET", "/api/auth/me", token=token)[0] == 200

        # Warm both paths (imports, connections) before measuring.
        load(port, "/bench/bare", None, 1.0, args.clients)
        load(port, "/bench/stock-me", token, 1.0, args.clients)
        load(port, "/api/auth/me", token, 1.0, args.clients)
        bare_runs, stock_runs, me_runs = [], [], []
        for _ in range(args.rounds):  # interleaved, so drift on a noisy machine hits all three
            bare_runs.append(load(port, "/bench/bare", None, args.seconds, args.clients)[0])
            stock_runs.append(load(port, "/bench/stock-me", token, args.seconds, args.clients)[0])
            me_runs.append(load(port, "/api/auth/me", token, args.seconds, args.clients)[0])
    bare, stock, me = (sorted(runs)[len(runs) // 2] for runs in (bare_runs, stock_runs, me_runs))
    print(f"gunicorn sync workers: {args.workers}, clients: {args.clients}, database: {database_engine(env)}")
    print(f"bare DRF view (no auth):    {bare:8.0f} req/s")
    print(f"stock /me (simplejwt+ModelSerializer): {stock:8.0f} req/s")
    print(f"GET /api/auth/me:           {me:8.0f} req/s")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"ratio me/stock: {me / stock:.2f}")
    print(f"ratio me/bare: {me / bare:.2f}")


if __name__ == "__main__":
    main()
