"""Gunicorn settings for the container (`gunicorn config.wsgi --config config/gunicorn.py`).

Everything comes from the environment so one image fits every host:
- PORT (8000; GUNICORN_BIND overrides the whole address)
- WEB_CONCURRENCY: worker processes (2)
- GUNICORN_THREADS (32): the most threads per worker (gthread); they start as requests need them
- GUNICORN_TIMEOUT (120 s: uploads of large videos stream through a worker)
- GUNICORN_MAX_REQUESTS (50000; 0 = never) and GUNICORN_MAX_REQUESTS_JITTER (a quarter of it)

Threads: an AI call (text-to-speech, a chat stream, vision) holds its thread for seconds, mostly
waiting on a provider or in native code that releases the GIL (onnxruntime, ffmpeg). With one
thread per process, two such calls stalled every light request behind them. The per-user AI
concurrency bound (AI_USER_CONCURRENCY) stops one user from taking every thread.

Under load the thread count decides who waits. A worker hands requests to its threads first come,
first served, so with 4 threads a `/me` waited behind every sign-in (Argon2, ~0.2 s of CPU) and
search (the query's embedding) queued ahead of it. With as many threads as the connections a
worker holds, no request queues in gunicorn: the CPU is shared among the running requests, and a
light one finishes in its few milliseconds of CPU. bench/load_bench.py, 50 clients on 2 workers,
4 -> 32 threads: `/me` p99 1.5-1.9 s -> 0.8-1.0 s, req/s +5-14%; a search (~25 ms of CPU) now
shares the CPU instead of holding a thread, and its p99 rose 1.8-2.3 s -> 2.8-3.0 s. Threads
start only when requests need them, and each keeps its own database connection: budget
WEB_CONCURRENCY x GUNICORN_THREADS per host (plus the Celery workers) under PostgreSQL's
max_connections (100 by default), or put PgBouncer in front.

Recycling: a restart throws away what each process has warmed up (the embedding model, vector
matrices of recent searches, database connections) and costs a second of CPU. At 1000 requests
a busy worker restarted every few seconds, which cost about 15% of search throughput. 50000
still bounds slow memory growth of the AI libraries (hours apart at full load), and the jitter
keeps workers from restarting at the same moment.
"""

from __future__ import annotations

import os
from typing import Any

bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{int(os.environ.get('PORT', '8000'))}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "50000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", str(max_requests // 4)))
# Heartbeat files on tmpfs: a worker blocked on a slow disk is not mistaken for a hung one.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108  (gunicorn's documented setting)

# The app writes one structured line per request itself (with request id and user id).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
if os.environ.get("LOG_FORMAT", "json" if os.environ.get("APP_ENVIRONMENT") == "production" else "plain") == "json":
    # Gunicorn's own lines (boot, worker restarts, timeouts) in the same JSON as the app's.
    logconfig_dict: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "config.observability.logs.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(), "propagate": False},
            "gunicorn.access": {"handlers": [], "propagate": False},
        },
    }


def on_starting(server: Any) -> None:
    # Counter files of a previous run would be added to this run's (prometheus multiprocess mode).
    from core.metrics import multiprocess_dir_reset

    multiprocess_dir_reset()


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
