"""Health and metrics answered before host validation, HTTPS redirects, sessions and auth.

Docker, load balancers and Prometheus call these by container address (`Host: 172.18.0.5:8000`)
over plain HTTP inside the network, which `ALLOWED_HOSTS` and `SECURE_SSL_REDIRECT` would turn
into 400s and redirects. The views neither build URLs from the host nor use the session, so
skipping the rest of the stack for exactly these paths is safe; `/metrics` keeps its own
token/IP check.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

PROBE_PATHS = frozenset({"/health", "/health/ready", "/metrics"})


class ProbeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in PROBE_PATHS:
            return self.get_response(request)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        # Set like Django's handler would, so the request log labels the route.
        request.resolver_match = match
        return match.func(request, *match.args, **match.kwargs)
