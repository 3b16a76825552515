"""The HTTP API: REST framework, the OpenAPI schema, rate limits and CORS."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import APP_NAME, APP_VERSION, DEBUG, env

# --- REST framework --------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.SessionJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["core.api.renderers.CamelCaseJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.CamelCaseJSONParser",
        "core.api.parsers.CamelCaseMultiPartParser",
        "core.api.parsers.CamelCaseFormParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["core.ratelimit.CategoryThrottle"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.PagePagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.handlers.api_exception_handler",
    "DEFAULT_METADATA_CLASS": "core.api.metadata.EnvelopeMetadata",
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": f"{APP_NAME} API",
    "DESCRIPTION": "REST API for mobile multimodal AI apps: accounts, AI services, video, embeddings.",
    "VERSION": APP_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "displayOperationId": False},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.camelize_schema",
    ],
}

# Rate limits (core/ratelimit.py, accounts/signin_protection.py), each from the environment as
# `N/period` (period: 10s, 1m, 15m, 1h, 1d; empty turns a burst window off). The defaults are the
# seed's table; the categories below it are what the table's "5 attempts per 15 minutes" became:
# a budget of failed credential checks, and generous request caps of sign-up, sign-in and refresh.
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _rate(name: str, default: str) -> tuple[int, int] | None:
    value = env.str(name, default=default)
    if not value.strip():
        return None
    match = _RATE.match(value)
    if not match or int(match[1]) < 1:
        raise ImproperlyConfigured(f"{name} must look like 5/15m (requests/period), not {value!r}.")
    return int(match[1]), int(match[2] or 1) * _PERIOD_SECONDS[match[3]]


def _category(name: str, rate: str, burst: str = "") -> dict[str, tuple[int, int] | None]:
    return {"rate": _rate(f"RATE_LIMIT_{name}", rate), "burst": _rate(f"RATE_LIMIT_{name}_BURST", burst)}


RATE_LIMITS = {
    # The seed's table: every request counts, per user when signed in, else per client address.
    "general": _category("GENERAL", "60/1m", "20/10s"),
    "ai": _category("AI", "10/1m", "5/10s"),
    "upload": _category("UPLOAD", "3/1m", "1/5s"),
    "download": _category("DOWNLOAD", "100/1m", "50/10s"),
    # Password confirmations of a signed-in user (change password, deactivate, delete), per user.
    "auth": _category("AUTH", "5/15m", "2/10s"),
    # Requests per client address: sign-ups (a hosted auth service's default), sign-ins, refreshes.
    "signup": _category("SIGNUP", "30/5m"),
    "signin": _category("SIGNIN", "60/1m"),
    "refresh": _category("REFRESH", "120/1m"),
    # Failed credential checks (wrong password or unknown email; never successes or invalid input):
    # per email from one address (the seed's 5 per 15 minutes), per address across emails (a
    # spray), and per email from addresses the account has never signed in from (many addresses).
    "auth_failures": _category("AUTH_FAILURES", "5/15m"),
    "auth_address_failures": _category("AUTH_ADDRESS_FAILURES", "20/15m"),
    "auth_email_failures": _category("AUTH_EMAIL_FAILURES", "10/15m"),
}
for _name, _policy in RATE_LIMITS.items():
    if _policy["rate"] is None:
        raise ImproperlyConfigured(f"RATE_LIMIT_{_name.upper()} must be set (RATE_LIMITS_ENABLED turns limits off).")
RATE_LIMITS_ENABLED = env.bool("RATE_LIMITS_ENABLED", default=True)

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_EXPOSE_HEADERS = [
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-Quota-Limit",
    "X-Quota-Used",
    "X-Quota-Reset",
    "X-Request-ID",
]
