"""The one place where exceptions become HTTP responses for `/api/`."""

from __future__ import annotations

import logging
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core.api.envelope import error_body
from core.api.outages import outage_error
from core.exceptions import ApplicationError

logger = logging.getLogger("core.api")

_DRF_CODES: dict[type[Exception], str] = {
    drf.ValidationError: "validation_error",
    drf.ParseError: "malformed_request",
    drf.NotAuthenticated: "not_authenticated",
    drf.AuthenticationFailed: "authentication_failed",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "rate_limited",
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        set_rollback()
        return Response(error_body(message="The request body is too large.", code="request_too_large"), status=413)
    elif isinstance(exc, SuspiciousOperation):
        # Raised by Django while parsing a body (too many form fields or files, a broken multipart
        # form): the client's fault, answered like Django answers it outside DRF, but in the envelope.
        set_rollback()
        return Response(_suspicious_body(exc), status=400)
    elif (outage := outage_error(exc)) is not None and outage is not exc:
        request = context.get("request")
        logger.warning("%s on %s: %s", outage.code, getattr(request, "path", "?"), exc)
        exc = outage

    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(
            error_body(message=exc.message, code=exc.code, errors=exc.errors, extra=exc.extra),
            status=exc.status_code,
            headers=exc.headers,
        )

    if isinstance(exc, drf.APIException):
        set_rollback()
        return _drf_response(exc)

    request = context.get("request")
    logger.exception("Unhandled error on %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"))
    set_rollback()
    extra = {"error": f"{type(exc).__name__}: {exc}"} if settings.DEBUG else None
    return Response(error_body(message="Internal server error.", code="server_error", extra=extra), status=500)


def _suspicious_body(exc: SuspiciousOperation) -> dict[str, Any]:
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return error_body(message=f"The request has more than {limit} form fields.", code="too_many_fields")
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return error_body(message=f"The request has more than {limit} files.", code="too_many_files")
    return error_body(message="The request is malformed.", code="bad_request")


def _drf_response(exc: drf.APIException) -> Response:
    headers: dict[str, str] = {}
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    errors: dict[str, Any] = {}
    detail = exc.detail

    if isinstance(exc, drf.ValidationError):
        errors = _field_errors(detail)
        message = _summary(errors) or "The request is invalid."
    elif isinstance(detail, dict):
        # simplejwt's InvalidToken carries {"detail", "code", "messages"}.
        message = str(detail.get("detail", "Authentication failed."))
        if detail.get("code"):
            code = str(detail["code"])
    else:
        message = str(detail)
        detail_code = getattr(detail, "code", None)
        if (
            detail_code
            and detail_code not in {"invalid", "error", "not_authenticated"}
            and code
            in {
                "authentication_failed",
                "permission_denied",
            }
        ):
            code = str(detail_code)

    if isinstance(exc, drf.Throttled):
        # drf-stubs leave out the `wait` attribute Throttled.__init__ sets.
        wait = math.ceil(getattr(exc, "wait", None) or 1)
        headers["Retry-After"] = str(wait)
        message = f"Too many requests. Try again in {wait} seconds."
    auth_header = getattr(exc, "auth_header", None)  # set by DRF's handling of 401s, untyped
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    return Response(error_body(message=message, code=code, errors=errors), status=exc.status_code, headers=headers)


def _field_errors(detail: Any) -> dict[str, list[str]]:
    """`{field: [messages]}` always: errors of list items and nested objects are named by their
    dotted path (`ids.0`, `items.2.name`), so every error body has the one documented shape."""
    errors: dict[str, list[str]] = {}
    _collect(detail, "", errors)
    return errors


def _collect(value: Any, path: str, errors: dict[str, list[str]]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _collect(inner, f"{path}.{key}" if path else str(key), errors)
    elif isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        for index, inner in enumerate(value):
            _collect(inner, f"{path}.{index}" if path else str(index), errors)
    else:
        items = value if isinstance(value, list) else [value]
        if items:
            errors.setdefault(path or "nonFieldErrors", []).extend(str(item) for item in items)


def _summary(errors: dict[str, Any]) -> str:
    for field, messages in errors.items():
        first = messages
        while isinstance(first, (list, dict)) and first:
            first = first[0] if isinstance(first, list) else next(iter(first.values()))
        if isinstance(first, str):
            if field in {"non_field_errors", "nonFieldErrors"}:
                return first
            return f"{field}: {first}"
    return ""
