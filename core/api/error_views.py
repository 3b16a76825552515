"""Django's error views (`handler400` ... `handler500`) with the envelope under `/api/`.

`ApiErrorMiddleware` wraps the errors of everything inside it; these cover what is raised before
it runs: a forged `Host` header (DisallowedHost, raised by CommonMiddleware and SecurityMiddleware
when they read the host) and any other exception in the outer middleware. Elsewhere (admin,
Swagger UI) Django's own pages are kept.
"""

from __future__ import annotations

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from core.api.envelope import error_body


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    message = "The Host header is not allowed." if isinstance(exception, DisallowedHost) else "Bad Request"
    return JsonResponse(error_body(message=message, code="bad_request"), status=400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse(error_body(message="Forbidden", code="permission_denied"), status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(error_body(message="Not Found", code="not_found"), status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if not _is_api(request):
        return defaults.server_error(request)
    return JsonResponse(error_body(message="Internal Server Error", code="server_error"), status=500)
