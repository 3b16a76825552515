"""Every Prometheus metric of the product, the helpers the apps call, and the `/metrics` view.

Apps never touch the metric objects: they call the `record_*` helpers, so names, labels and
label hygiene live in this one module.

Multiple processes: gunicorn workers and Celery pool processes each count for themselves. When
the environment variable `PROMETHEUS_MULTIPROC_DIR` is set (before Python starts: prometheus_client
reads it at import) the counts go to files in that folder and every scrape adds them up, so any
worker can answer `/metrics`. The folder is emptied when gunicorn or the Celery worker starts
(config/gunicorn.py, config/observability/worker.py); give each process group its own folder.

Two gauges are read from shared stores at scrape time instead of being counted: the Celery queue
depth (from the broker) and the quota usage distribution (one aggregate query). Both are
failure-safe: a store that does not answer drops its sample and sets `mma_scrape_source_up` to 0.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_JOB_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

HTTP_REQUESTS = Counter(
    "mma_http_requests_total", "HTTP requests handled, by URL route (not raw path).", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "mma_http_request_duration_seconds",
    "Time from the first middleware to the response, by URL route.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
AI_CALLS = Counter("mma_ai_calls_total", "Calls to AI providers.", ["kind", "provider", "status"])
AI_TOKENS = Counter("mma_ai_tokens_total", "Tokens reported by AI providers.", ["kind", "provider"])
UNITS_CHARGED = Counter("mma_quota_units_charged_total", "Quota units charged (reservations and raises).", ["service"])
UNITS_RETURNED = Counter(
    "mma_quota_units_returned_total", "Quota units given back (settled below the estimate, refunds).", ["service"]
)
VIDEO_JOBS = Counter("mma_video_jobs_total", "Video jobs that reached a status.", ["status"])
VIDEO_SECONDS = Histogram(
    "mma_video_processing_seconds", "Processing time of finished video jobs.", ["status"], buckets=_JOB_BUCKETS
)
TASKS = Counter(
    "mma_celery_tasks_total", "Celery tasks by outcome (started, succeeded, failed, retried).", ["task", "state"]
)
TASK_SECONDS = Histogram(
    "mma_celery_task_duration_seconds", "Run time of Celery tasks.", ["task", "state"], buckets=_JOB_BUCKETS
)
RATE_LIMIT_FAIL_OPEN = Counter(
    "mma_rate_limit_fail_open_total",
    "Requests let through unchecked because the rate-limit counters (the cache) did not answer.",
    ["category"],
)
SIGNIN_REFUSED = Counter(
    "mma_signin_refused_total",
    "Sign-in attempts refused unchecked because a budget of failed sign-ins was spent.",
    ["budget"],
)
UPLOAD_SCANS = Counter(
    "mma_upload_scans_total",
    "Uploads checked by the virus scanner, by upload kind and result (clean, infected, unavailable).",
    ["kind", "result"],
)

UNMATCHED_ROUTE = "<unmatched>"
_MAX_LABEL = 64


def _label(value: object) -> str:
    # Label values come from code, not users, but a stray long string must not explode the series.
    text = str(getattr(value, "value", value) or "unknown")
    return text[:_MAX_LABEL]


# --- Helpers the apps call ----------------------------------------------------------------------


def record_rate_limit_fail_open(*, category: str) -> None:
    RATE_LIMIT_FAIL_OPEN.labels(_label(category)).inc()


def record_signin_refused(*, budget: str) -> None:
    SIGNIN_REFUSED.labels(_label(budget)).inc()


def record_http_request(*, method: str, route: str | None, status: int, seconds: float) -> None:
    labels = (method.upper()[:10], _label(route or UNMATCHED_ROUTE), str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_LATENCY.labels(*labels).observe(max(seconds, 0.0))


def record_ai_call(*, kind: str, provider: str, status: str, tokens: int = 0) -> None:
    """One call to an AI provider. `kind`: chat, whisper, tts, vision, embedding; `status`: ok, error,
    timeout, unavailable ... (a short fixed word, never an error message)."""
    AI_CALLS.labels(_label(kind), _label(provider), _label(status)).inc()
    if tokens > 0:
        AI_TOKENS.labels(_label(kind), _label(provider)).inc(tokens)


def record_units_charged(*, service: str, units: int) -> None:
    """A quota ledger movement. Negative `units` (settled below the estimate, refunds) count as
    returned, so `charged - returned` is the net the users were billed."""
    if units > 0:
        UNITS_CHARGED.labels(_label(service)).inc(units)
    elif units < 0:
        UNITS_RETURNED.labels(_label(service)).inc(-units)


def record_video_job(*, status: str, seconds: float | None = None) -> None:
    """A video job reached `status` (queued, processing, completed, failed ...); pass the processing
    time when the job finished."""
    VIDEO_JOBS.labels(_label(status)).inc()
    if seconds is not None:
        VIDEO_SECONDS.labels(_label(status)).observe(max(seconds, 0.0))


def record_upload_scan(*, kind: str, result: str) -> None:
    """One upload checked by ClamAV. `kind`: avatar, image, audio, video; `result`: clean,
    infected, unavailable."""
    UPLOAD_SCANS.labels(_label(kind), _label(result)).inc()


def record_task(*, task: str, state: str, seconds: float | None = None) -> None:
    TASKS.labels(_label(task), _label(state)).inc()
    if seconds is not None:
        TASK_SECONDS.labels(_label(task), _label(state)).observe(max(seconds, 0.0))


# --- Gauges read at scrape time -----------------------------------------------------------------

_REDIS_PRIORITY_SEP = "\x06\x16"
_REDIS_PRIORITY_STEPS = (3, 6, 9)
_STORE_TIMEOUT_SECONDS = 1.0


def celery_queue_names() -> list[str]:
    # The project's Celery app is the current one (config/__init__.py creates it at startup).
    from celery import current_app as app

    names = list(app.amqp.queues.keys()) or [app.conf.task_default_queue]
    for extra in settings.METRICS_EXTRA_QUEUES:
        if extra not in names:
            names.append(extra)
    return names


@lru_cache(maxsize=4)
def _redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(
        url, socket_connect_timeout=_STORE_TIMEOUT_SECONDS, socket_timeout=_STORE_TIMEOUT_SECONDS
    )


@lru_cache(maxsize=4)
def _sqla_engine(url: str) -> Any:
    import sqlalchemy

    connect_args = {"timeout": _STORE_TIMEOUT_SECONDS} if url.startswith("sqlite") else {}
    return sqlalchemy.create_engine(url, connect_args=connect_args, pool_pre_ping=True)


def queue_depths(broker_url: str, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting per queue, straight from the broker. Raises when the broker does not answer."""
    queues = list(queues)
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        client = _redis_client(broker_url)
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            # kombu keeps each priority level in its own list; the plain name is priority 0.
            pipe.llen(queue)
            for step in _REDIS_PRIORITY_STEPS:
                pipe.llen(f"{queue}{_REDIS_PRIORITY_SEP}{step}")
        lengths = pipe.execute()
        per_queue = len(_REDIS_PRIORITY_STEPS) + 1
        return {queue: sum(lengths[i * per_queue : (i + 1) * per_queue]) for i, queue in enumerate(queues)}
    if broker_url.startswith("sqla+"):
        import sqlalchemy

        engine = _sqla_engine(broker_url.removeprefix("sqla+"))
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        queue_table = options.get("queue_tablename", "kombu_queue")
        message_table = options.get("message_tablename", "kombu_message")
        with engine.connect() as conn:
            if not sqlalchemy.inspect(conn).has_table(message_table):
                return dict.fromkeys(queues, 0)  # no message was ever sent
            # Table names come from settings, never from a request; kombu marks taken messages invisible.
            query = sqlalchemy.text(
                f"SELECT q.name, COUNT(m.id) FROM {queue_table} q JOIN {message_table} m ON m.queue_id = q.id "  # noqa: S608
                "WHERE m.visible = :visible GROUP BY q.name"
            )
            counts = dict(conn.execute(query, {"visible": True}).all())
        return {queue: int(counts.get(queue, 0)) for queue in queues}
    raise ValueError(f"queue depth is not supported for broker scheme {broker_url.split(':', 1)[0]!r}")


# Reads the quota usage distribution (`quotas.selectors.quota_usage_buckets`, registered by
# quotas.apps): core imports no app, so the reader is handed in rather than imported.
_quota_buckets_source: Callable[[], dict[str, int]] | None = None


def quota_buckets_source_set(source: Callable[[], dict[str, int]]) -> None:
    global _quota_buckets_source
    _quota_buckets_source = source


def quota_usage_buckets() -> dict[str, int]:
    """Quota accounts by share of their limit used this period, from the registered reader."""
    if _quota_buckets_source is None:
        raise RuntimeError("no quota usage reader registered (is the quotas app installed?)")
    return _quota_buckets_source()


class ScrapeTimeCollector:
    """Reads the broker and the database when Prometheus scrapes (no process keeps these numbers)."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "mma_scrape_source_up", "Whether a store read at scrape time answered.", labels=["source"]
        )

        depth = GaugeMetricFamily("mma_celery_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"])
        try:
            for queue, count in queue_depths(settings.CELERY_BROKER_URL, celery_queue_names()).items():
                depth.add_metric([queue], count)
            up.add_metric(["broker"], 1)
        except Exception as exc:  # a scrape must never fail because the broker is down
            logger.warning("Queue depth unavailable: %s", type(exc).__name__)
            up.add_metric(["broker"], 0)
        yield depth

        accounts = GaugeMetricFamily(
            "mma_quota_accounts", "Quota accounts by share of their monthly limit used.", labels=["usage"]
        )
        units = GaugeMetricFamily(
            "mma_quota_units", "Units used and granted this period, all accounts.", labels=["kind"]
        )
        try:
            buckets = quota_usage_buckets()
            for bucket in ("under_50", "from_50_to_80", "from_80_to_100", "exhausted"):
                accounts.add_metric([bucket], buckets[bucket])
            units.add_metric(["used"], buckets["used"])
            units.add_metric(["limit"], buckets["limit"])
            up.add_metric(["database"], 1)
        except Exception as exc:
            logger.warning("Quota usage unavailable: %s", type(exc).__name__)
            up.add_metric(["database"], 0)
        yield accounts
        yield units
        yield up


_SCRAPE_REGISTRY = CollectorRegistry()
_SCRAPE_REGISTRY.register(ScrapeTimeCollector())


def process_registry() -> CollectorRegistry:
    """The registry holding this process's counters, or every process's in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def render_metrics(*, scrape_time_gauges: bool = True) -> bytes:
    output = generate_latest(process_registry())
    if scrape_time_gauges:
        output += generate_latest(_SCRAPE_REGISTRY)
    return output


def multiprocess_dir_reset() -> None:
    """Empty the multiprocess folder: files left by a previous run would be added to the new counts."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))


# --- Access ---------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def metrics_access_allowed(*, remote_addr: str | None, authorization: str | None) -> bool:
    """A matching `Authorization: Bearer <METRICS_TOKEN>` or a client address in `METRICS_ALLOWED_IPS`.

    Only the socket's address counts, never X-Forwarded-For: Prometheus scrapes the app directly,
    and a forwarded header is whatever the client wrote.
    """
    token = settings.METRICS_TOKEN
    if token and authorization:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(presented.strip().encode(), token.encode()):
            return True
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(tuple(settings.METRICS_ALLOWED_IPS)))


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_access_allowed(
        remote_addr=request.META.get("REMOTE_ADDR"), authorization=request.META.get("HTTP_AUTHORIZATION")
    ):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)
