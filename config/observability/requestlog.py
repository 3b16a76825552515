"""One log line and one metrics sample per request, under a request id the client can see.

Outermost middleware, so the duration covers every other middleware and even requests that
never reach a view (redirects, 404s, rejected hosts) are logged and counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from config.observability.context import (
    request_id_is_valid,
    request_id_new,
    request_id_reset,
    request_id_set,
)
from core import metrics
from core.client_address import client_ip

logger = logging.getLogger("http.request")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_META = "HTTP_X_REQUEST_ID"
# Container and Prometheus probes hit these every few seconds: logged at DEBUG, still counted.
QUIET_PATHS = frozenset({"/health", "/health/ready", "/metrics"})


def _user_id(request: HttpRequest) -> int | str | None:
    # Bearer-token API calls record their user on `api_user`; admin pages use the session user.
    user = getattr(request, "api_user", None) or getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.pk


def _route(request: HttpRequest) -> str | None:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    # The pattern (`api/video/jobs/<uuid:job_id>`), not the path: one series per endpoint.
    return match.route or match.view_name or None


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        incoming = request.META.get(_REQUEST_ID_META)
        request_id: str = incoming if isinstance(incoming, str) and request_id_is_valid(incoming) else request_id_new()
        # An attribute HttpRequest's type does not declare, hence the untyped handle.
        annotated: Any = request
        annotated.request_id = request_id
        token = request_id_set(request_id)
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            response[REQUEST_ID_HEADER] = request_id
            self._record(request, response.status_code, seconds)
            return response
        finally:
            request_id_reset(token)

    @staticmethod
    def _record(request: HttpRequest, status: int, seconds: float) -> None:
        route = _route(request)
        metrics.record_http_request(method=request.method or "", route=route, status=status, seconds=seconds)
        duration_ms = round(seconds * 1000, 1)
        user_id = _user_id(request)
        address = client_ip(request)
        level = logging.DEBUG if request.path in QUIET_PATHS and status < 500 else logging.INFO
        if status >= 500:
            level = logging.ERROR
        logger.log(
            level,
            "%s %s %s %sms user=%s ip=%s",
            request.method,
            request.path,
            status,
            duration_ms,
            user_id if user_id is not None else "-",
            address or "-",
            extra={
                "event": "http_request",
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "user_id": user_id,
                "client_ip": address,
            },
        )
