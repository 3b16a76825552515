"""Liveness (`/health`, the seed's shape) and readiness (`/health/ready`: database, cache, broker,
a Celery worker's heartbeat and a supported ffmpeg).

Both are served by `ProbeMiddleware` before host checks and HTTPS redirects, so Docker and load
balancers can call them by container address over plain HTTP.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


class CheckFailed(Exception):
    """A check's own verdict; its message is safe to show (unlike a driver's error text)."""


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "status": "OK",
            "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
            "version": settings.APP_VERSION,
            "environment": settings.APP_ENVIRONMENT,
        }
    )


def check_database(alias: str = "default") -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_databases() -> None:
    # Every configured alias: a replica or a second database that is down makes the app unready too.
    for alias in connections:
        check_database(alias)


def _check_cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise CheckFailed("cache did not return the value just written")
    cache.delete(key)


def _check_broker() -> None:
    from config.celery import app

    # The URL from settings at call time (not the app's cached config) so a changed setting is seen.
    with app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
        # kombu's annotations say int; the intervals are seconds and fractions work (time.sleep).
        conn.ensure_connection(max_retries=1, interval_start=0.2, interval_step=0.2, timeout=2)  # type: ignore[arg-type]


def _check_worker() -> dict[str, Any]:
    from config.observability.heartbeat import heartbeat_latest

    beat = heartbeat_latest()
    stale_after = settings.WORKER_HEARTBEAT_STALE_SECONDS
    if beat is None:
        raise CheckFailed("no worker heartbeat")
    if beat.age > stale_after:
        raise CheckFailed(f"last worker heartbeat {beat.age:.0f}s ago (stale after {stale_after}s)")
    return {"hostname": beat.hostname, "age": round(beat.age, 1)}


def _check_ffmpeg() -> dict[str, Any]:
    from core import ffmpeg

    try:
        binary = ffmpeg.ffmpeg_binary()
    except ffmpeg.FfmpegUnavailable as exc:
        raise CheckFailed(str(exc)) from exc
    return {"version": binary.version, "pinned": binary.pinned}


READINESS_CHECKS: dict[str, Callable[[], dict[str, Any] | None]] = {
    "database": _check_databases,
    "cache": _check_cache,
    "broker": _check_broker,
    "worker": _check_worker,
    "ffmpeg": _check_ffmpeg,
}


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, Any]] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            details = check()
        except Exception as exc:  # any failure means "not ready"; the name says which part
            logger.warning("Readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
            checks[name] = {"status": "down", "error": type(exc).__name__}
            if isinstance(exc, CheckFailed):
                checks[name]["detail"] = str(exc)
        else:
            checks[name] = {"status": "up", **(details or {})}
    failing = [name for name, result in checks.items() if result["status"] != "up"]
    body: dict[str, Any] = {
        "status": "OK" if not failing else "UNAVAILABLE",
        "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
        "checks": checks,
    }
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
