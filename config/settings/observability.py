"""Operations: log format and logging, /metrics access, worker metrics, heartbeats and reapers."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import IS_PRODUCTION, env
from config.settings.stores import INSTANCE_DIR, REDIS_URL

# --- Operations: logs, metrics, worker health ----------------------------------------------
# json: one JSON object per line (for log shippers); plain: readable lines for a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="") or ("json" if IS_PRODUCTION else "plain")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("LOG_FORMAT must be json or plain.")
# /metrics answers a matching bearer token or a client address in the list (addresses or CIDR
# networks, e.g. the Docker network Prometheus scrapes from); everything else gets 403. Production
# trusts no address unless the list is set: a reverse proxy on the same host connects from
# loopback, so a loopback default would publish the metrics through it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[] if IS_PRODUCTION else ["127.0.0.1", "::1"])
# Queues whose depth /metrics reports besides the configured ones (routes to undeclared queues).
METRICS_EXTRA_QUEUES = env.list("METRICS_EXTRA_QUEUES", default=[])
# Workers serve /metrics and /health on this port (0 = off); Prometheus scrapes it.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
WORKER_METRICS_ADDRESS = env.str("WORKER_METRICS_ADDRESS", default="0.0.0.0")  # noqa: S104  (inside a container)
# Heartbeats go where web and workers both see them: the cache when it is Redis, else files.
WORKER_HEARTBEAT_STORE = env.str("WORKER_HEARTBEAT_STORE", default="") or ("cache" if REDIS_URL else "file")
if WORKER_HEARTBEAT_STORE not in {"cache", "file"}:
    raise ImproperlyConfigured("WORKER_HEARTBEAT_STORE must be cache or file.")
WORKER_HEARTBEAT_DIR = Path(env.str("WORKER_HEARTBEAT_DIR", default="") or INSTANCE_DIR / "worker-heartbeats")
WORKER_HEARTBEAT_INTERVAL = env.float("WORKER_HEARTBEAT_INTERVAL", default=10.0)
WORKER_HEARTBEAT_STALE_SECONDS = env.int("WORKER_HEARTBEAT_STALE_SECONDS", default=60)
# Every worker runs these reapers itself in a thread, this often (0 = only beat runs them), so a
# job whose worker was killed ends completed or failed within minutes even with no beat running.
WORKER_REAPER_INTERVAL_SECONDS = env.float("WORKER_REAPER_INTERVAL_SECONDS", default=60.0)
WORKER_REAPER_TASKS = ["video.reap_stale_jobs", "ai_services.reap_stale_jobs"]
# Celery keeps Django's logging (same format, request ids) instead of installing its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Logging ---------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.observability.context.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "config.observability.logs.JsonFormatter"},
        "plain": {"()": "config.observability.logs.PlainFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # The request log (config/observability/requestlog.py) has one line per request already:
        # Django's 4xx warnings would repeat it; its 5xx errors carry the traceback, so they stay.
        # Replaces Django's default console handler (DEBUG only, unformatted) with ours.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "gunicorn.error": {"level": LOG_LEVEL},
    },
}
