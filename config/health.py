"""Liveness (`/health`, the seed's shape) and readiness (`/health/ready`: database, cache, broker)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


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


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(key)


def _check_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


READINESS_CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "cache": _check_cache,
    "broker": _check_broker,
}


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, str]] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure means "not ready"; the name says which part
            logger.warning("Readiness check %s failed: %s", name, exc)
            checks[name] = {"status": "down", "error": type(exc).__name__}
        else:
            checks[name] = {"status": "up"}
    failing = [name for name, result in checks.items() if result["status"] != "up"]
    body = {
        "status": "OK" if not failing else "UNAVAILABLE",
        "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
        "checks": checks,
    }
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
