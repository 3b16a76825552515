from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.api.envelope import error_body
from core.api.outages import outage_error

logger = logging.getLogger("core.api")

_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "server_error",
    503: "service_unavailable",
}


class ApiErrorMiddleware:
    """Gives errors that never reach a DRF view (unknown URLs, CSRF, crashes in middleware,
    oversized bodies) the same JSON envelope under `/api/`, instead of Django's HTML pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return self._envelope(response.status_code, response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        if (outage := outage_error(exception)) is not None:
            logger.warning("%s on %s: %s", outage.code, request.path, exception)
            response = JsonResponse(error_body(message=outage.message, code=outage.code), status=outage.status_code)
            for header, value in outage.headers.items():
                response[header] = value
            return response
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        extra = {"error": f"{type(exception).__name__}: {exception}"} if settings.DEBUG else None
        return JsonResponse(error_body(message="Internal server error.", code="server_error", extra=extra), status=500)

    @staticmethod
    def _envelope(status: int, original: HttpResponse) -> HttpResponse:
        try:
            message = HTTPStatus(status).phrase
        except ValueError:
            message = "Error"
        body = error_body(message=message, code=_CODES.get(status, "error"))
        response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
        for header in ("Allow", "Retry-After"):
            if original.has_header(header):
                response[header] = original[header]
        return response
