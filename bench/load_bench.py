"""Load: 50 concurrent clients against the production deployment (gunicorn with config/gunicorn.py,
production settings, PostgreSQL and Redis), on loopback only, for a bounded time.

    .venv/bin/python bench/load_bench.py [--clients 50] [--seconds 45] [--threads N]

Each client is a closed loop with its own user: it picks `/api/auth/me`, the quota, a search over
its own ~40 stored vectors (the query embedded by MiniLM), the video list, a sign-in or a token
refresh (weights in MIX) and goes again at once. Printed: req/s, p50/p95/p99 per endpoint, and
the count of non-2xx answers other than 429s (expected ones are counted apart). Rate limits are
off (RATE_LIMITS_ENABLED=false): 50 clients on one address would be measuring their own 429s.
Quotas are raised so searches never run out. `--threads` overrides the deployment's threads per
worker (GUNICORN_THREADS) to compare settings.

PostgreSQL: a database `<name>_loadbench` is created next to the one in DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/mma) and dropped afterwards. Redis: REDIS_URL (default
redis://127.0.0.1:6379/15), flushed at the start.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.server import PY, ROOT, running_server

PASSWORD = "Load-Bench-Password-123"  # noqa: S105  (a throwaway user of a throwaway database)
# endpoint -> weight of the mix (light reads dominate, as in a mobile app's traffic).
MIX = {"me": 30, "quota": 20, "videoList": 20, "search": 15, "refresh": 10, "signIn": 5}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


@contextmanager
def bench_database(base_url: str):
    import psycopg

    parts = urlsplit(base_url)
    name = f"{parts.path.lstrip('/') or 'mma'}_loadbench"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Client:
    """One keep-alive connection, reopened whenever the server closes it (sync workers do)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: dict | None = None, token: str = "") -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = json.dumps(body) if body is not None else None
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return response.status, (json.loads(data) if data else {})
        raise RuntimeError("unreachable")


def setup(port: int, clients: int) -> list[dict]:
    users = []
    for index in range(clients):
        email = f"load-{index}@example.com"
        body = {"email": email, "password": PASSWORD, "name": "Load"}
        status, data = Client(port).call("POST", "/api/auth/register", body)
        assert status == 201, data
        users.append({"email": email, **data["data"]})

    # Every user searches its own vectors (chunks of about 32 tokens), as app users do: one user
    # can't run 50 searches at once in production (AI_USER_CONCURRENCY), so a shared owner would
    # measure a queue on one quota row that the deployment never lets form.
    def embed(user: dict, seed: int) -> int:
        text = " ".join(
            f"Sentence number {i} talks about topic {i % 17} and item {i * 7 % 101}." for i in range(seed, seed + 80)
        )
        body = {"text": text, "chunkSize": 32, "chunkOverlap": 0}
        status, data = Client(port).call("POST", "/api/embeddings/create", body, user["accessToken"])
        assert status == 201, data
        return int(data["data"]["chunks"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        chunks = list(pool.map(embed, users, [index * 80 % 400 for index in range(len(users))]))
    print(f"search spaces: {len(users)} users, {min(chunks)}-{max(chunks)} stored vectors each")
    return users


def run(port: int, users: list[dict], seconds: float) -> tuple[dict, float]:
    results: dict[str, list[tuple[int, float]]] = defaultdict(list)
    lock = threading.Lock()
    start = threading.Event()
    deadline = [0.0]
    names = list(MIX)
    weights = [MIX[name] for name in names]

    def loop(user: dict, seed: int) -> None:
        rng = random.Random(seed)
        client = Client(port)
        access, refresh = user["accessToken"], user["refreshToken"]
        local: list[tuple[str, int, float]] = []
        start.wait()
        while time.monotonic() < deadline[0]:
            name = rng.choices(names, weights)[0]
            began = time.perf_counter()
            try:
                if name == "me":
                    status, _ = client.call("GET", "/api/auth/me", token=access)
                elif name == "quota":
                    status, _ = client.call("GET", "/api/user/quota", token=access)
                elif name == "videoList":
                    status, _ = client.call("GET", "/api/video/jobs", token=access)
                elif name == "search":
                    query = f"topic {rng.randrange(17)} and item {rng.randrange(101)}"
                    status, _ = client.call(
                        "POST", "/api/embeddings/search", {"query": query, "limit": 10, "threshold": -1}, access
                    )
                elif name == "refresh":
                    status, data = client.call("POST", "/api/auth/refresh", {"refreshToken": refresh})
                    if status == 200:
                        access, refresh = data["data"]["accessToken"], data["data"]["refreshToken"]
                else:
                    status, data = client.call(
                        "POST", "/api/auth/login", {"email": user["email"], "password": PASSWORD}
                    )
                    if status == 200:
                        access, refresh = data["data"]["accessToken"], data["data"]["refreshToken"]
            except OSError:
                status = 0
            local.append((name, status, time.perf_counter() - began))
        with lock:
            for name, status, elapsed in local:
                results[name].append((status, elapsed))

    threads = [threading.Thread(target=loop, args=(user, i)) for i, user in enumerate(users)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    deadline[0] = began + seconds
    start.set()
    for thread in threads:
        thread.join()
    return results, time.monotonic() - began


def report(results: dict, elapsed: float) -> None:
    total = sum(len(v) for v in results.values())
    print(
        f"\n{'endpoint':<11} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'429':>5} {'other non-2xx':>13}"
    )
    for name in [*MIX, "all"]:
        rows = [r for v in results.values() for r in v] if name == "all" else results.get(name, [])
        times = [elapsed_s * 1000 for _status, elapsed_s in rows]
        limited = sum(1 for status, _ in rows if status == 429)
        other = sum(1 for status, _ in rows if not 200 <= status < 300 and status != 429)
        print(
            f"{name:<11} {len(rows):>8} {len(rows) / elapsed:>7.1f} {percentile(times, 0.5):>8.1f} "
            f"{percentile(times, 0.95):>8.1f} {percentile(times, 0.99):>8.1f} {limited:>5} {other:>13}"
        )
    print(f"\n{total} requests in {elapsed:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument("--threads", type=int, default=0, help="threads per worker (default: the deployment's)")
    args = parser.parse_args()

    base_db = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mma")
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    with bench_database(base_db) as database_url, tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        env = {
            **os.environ,
            "APP_ENVIRONMENT": "production",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "RATE_LIMITS_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            "MEDIA_ROOT": str(Path(tmp) / "media"),
            "EMBEDDINGS_CACHE_DIR": str(Path(tmp) / "vectors"),
            "STATIC_ROOT": str(Path(tmp) / "static"),
            "WEB_CONCURRENCY": str(args.workers),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        for name in ("PROMETHEUS_MULTIPROC_DIR", "GUNICORN_THREADS", "GUNICORN_MAX_REQUESTS"):
            env.pop(name, None)  # the deployment's defaults
        if args.threads:
            env["GUNICORN_THREADS"] = str(args.threads)
        subprocess.run([PY, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        # The deployment's own gunicorn configuration (gthread, recycling), as production runs it.
        with running_server(env, workers=args.workers, extra_args=["--config", "config/gunicorn.py"]) as server:
            port = server.port
            users = setup(port, args.clients)
            shell = "from quotas.models import QuotaAccount; QuotaAccount.objects.update(limit=10**9)"
            subprocess.run([PY, "manage.py", "shell", "-c", shell], cwd=ROOT, env=env, check=True)
            print(f"uptime before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
            printed = subprocess.run(
                [PY, "-m", "gunicorn", "config.wsgi", "--config", "config/gunicorn.py", "--print-config"],
                cwd=ROOT, env=env, capture_output=True, text=True,
            ).stdout  # fmt: skip
            config = {
                k.strip(): v.strip()
                for k, v in (line.split(" = ", 1) for line in printed.splitlines() if " = " in line)
            }
            print(
                "gunicorn: workers={} worker_class={} threads={} max_requests={} jitter={}".format(
                    *(
                        config.get(k, "?").strip()
                        for k in ("workers", "worker_class", "threads", "max_requests", "max_requests_jitter")
                    )
                )
            )
            print(f"{args.clients} clients, {args.seconds:.0f} s")
            results, elapsed = run(port, users, args.seconds)
            print(f"uptime after:  {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
            report(results, elapsed)


if __name__ == "__main__":
    main()
