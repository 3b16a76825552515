"""Celery signal receivers: task start/finish/failure lines, request ids across the queue, and
the worker's heartbeat and metrics endpoint. Connected by importing this module (config/celery.py).
"""

from __future__ import annotations

import logging
import logging.config
import time
from typing import Any
from uuid import UUID

from celery import signals
from django.conf import settings

from config.observability.context import (
    request_id_get,
    request_id_is_valid,
    request_id_reset,
    request_id_set,
)
from core import metrics

logger = logging.getLogger("celery.tasks")

_REQUEST_ID_HEADER = "request_id"
# task id -> (perf_counter at start, context token); a worker runs each task id once at a time.
_running: dict[str, tuple[float, Any]] = {}
_worker_state: dict[str, Any] = {}


def job_id_of(args: tuple | list | None, kwargs: dict | None) -> str | None:
    """The job a task works on: tasks take ids, by convention `job_id=` (or `<kind>_job_id=`) or the
    first positional argument."""
    kwargs = kwargs or {}
    for key, value in kwargs.items():
        if key.endswith("job_id") and isinstance(value, str | int | UUID):
            return str(value)
    if args and isinstance(args[0], str | int | UUID):
        return str(args[0])
    return None


@signals.setup_logging.connect
def _use_django_logging(loglevel: int | str | None = None, **_: Any) -> None:
    # Having a receiver stops Celery from replacing the handlers: worker lines get the same JSON
    # (or plain) format and request ids as the web's. The command's --loglevel still applies.
    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@signals.before_task_publish.connect
def _propagate_request_id(headers: dict | None = None, **_: Any) -> None:
    request_id = request_id_get()
    if headers is not None and request_id and _REQUEST_ID_HEADER not in headers:
        headers[_REQUEST_ID_HEADER] = request_id


def _incoming_request_id(task: Any) -> str | None:
    request = getattr(task, "request", None)
    value = getattr(request, _REQUEST_ID_HEADER, None) or (getattr(request, "headers", None) or {}).get(
        _REQUEST_ID_HEADER
    )
    return value if request_id_is_valid(value) else None


def _fields(task: Any, task_id: str, args: Any, kwargs: Any, event: str) -> dict[str, Any]:
    return {
        "event": event,
        "task": getattr(task, "name", str(task)),
        "task_id": task_id,
        "job_id": job_id_of(args, kwargs),
    }


@signals.task_prerun.connect
def _task_started(task_id: str, task: Any, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    token = request_id_set(_incoming_request_id(task) or request_id_get())
    _running[task_id] = (time.perf_counter(), token)
    fields = _fields(task, task_id, args, kwargs, "task_started")
    metrics.record_task(task=fields["task"], state="started")
    logger.info("task started %s id=%s job=%s", fields["task"], task_id, fields["job_id"] or "-", extra=fields)


@signals.task_failure.connect
def _task_failed(
    task_id: str, exception: BaseException, args: Any = None, kwargs: Any = None, sender: Any = None, **_: Any
) -> None:
    fields = _fields(sender, task_id, args, kwargs, "task_failed")
    fields["error"] = f"{type(exception).__name__}: {exception}"[:500]
    # Celery's own trace logger prints the traceback; this line is the one to search and count.
    logger.error(
        "task failed %s id=%s job=%s: %s",
        fields["task"],
        task_id,
        fields["job_id"] or "-",
        fields["error"],
        extra=fields,
    )


@signals.task_retry.connect
def _task_retried(request: Any = None, reason: Any = None, sender: Any = None, **_: Any) -> None:
    task_id = getattr(request, "id", None) or "-"
    fields = _fields(sender, task_id, getattr(request, "args", None), getattr(request, "kwargs", None), "task_retry")
    fields["reason"] = str(reason)[:500]
    logger.warning(
        "task retry %s id=%s job=%s: %s", fields["task"], task_id, fields["job_id"] or "-", reason, extra=fields
    )


@signals.task_postrun.connect
def _task_finished(
    task_id: str, task: Any, args: Any = None, kwargs: Any = None, state: str | None = None, **_: Any
) -> None:
    started, token = _running.pop(task_id, (None, None))
    seconds = time.perf_counter() - started if started is not None else None
    fields = _fields(task, task_id, args, kwargs, "task_finished")
    fields["state"] = state
    fields["duration_ms"] = round(seconds * 1000, 1) if seconds is not None else None
    outcome = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "retried"}.get(state or "", (state or "").lower())
    metrics.record_task(task=fields["task"], state=outcome or "unknown", seconds=seconds)
    logger.log(
        logging.INFO if state != "FAILURE" else logging.WARNING,
        "task finished %s id=%s job=%s state=%s %sms",
        fields["task"],
        task_id,
        fields["job_id"] or "-",
        state,
        fields["duration_ms"],
        extra=fields,
    )
    if token is not None:
        request_id_reset(token)


@signals.worker_init.connect
def _worker_init(**_: Any) -> None:
    # Main process, before the pool forks: stale counter files from the last run must go.
    metrics.multiprocess_dir_reset()


@signals.worker_ready.connect
def _worker_ready(sender: Any = None, **_: Any) -> None:
    from config.observability.heartbeat import HeartbeatThread
    from config.observability.worker import worker_server_start

    hostname = getattr(sender, "hostname", None) or "worker"
    heartbeat = HeartbeatThread(hostname=hostname)
    # The endpoint is bound before the first beat is written, so a worker that /health/ready
    # reports as up already answers on its own /health (it says 503 until that first beat).
    if settings.WORKER_METRICS_PORT:
        try:
            _worker_state["server"] = worker_server_start(
                address=settings.WORKER_METRICS_ADDRESS, port=settings.WORKER_METRICS_PORT, heartbeat=heartbeat
            )
        except OSError as exc:  # the port is taken: the worker still works, only unobserved
            logger.error("Worker metrics endpoint not started on port %s: %s", settings.WORKER_METRICS_PORT, exc)
    heartbeat.start()
    _worker_state["heartbeat"] = heartbeat


@signals.worker_shutdown.connect
def _worker_shutdown(**_: Any) -> None:
    server = _worker_state.pop("server", None)
    if server is not None:
        server.shutdown()
        server.server_close()
    heartbeat = _worker_state.pop("heartbeat", None)
    if heartbeat is not None:
        heartbeat.stop(clear=True)
