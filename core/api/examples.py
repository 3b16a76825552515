"""Building blocks of the OpenAPI examples that each app keeps in its `openapi_examples.py`.

Examples are written in the wire format (camelCase keys), as a client sends or receives them.
A success example holds only the `data` part: the schema hook (`core.api.schema`) wraps it in
the envelope the view really sends, `{success, message, data, meta}`, taking the envelope's
`message` from the example's `summary` (so the docs show the view's own message as the title of
the example). Error examples are whole error envelopes, built by the same function the
exception handler uses.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from core.api.casing import camelize
from core.api.envelope import error_body

JSON = "application/json"
MULTIPART = "multipart/form-data"
ERROR_ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}
# The schema of `data` for endpoints that answer `data: null` (logout, deletes).
NULL_DATA = {"type": "object", "nullable": True, "description": "Always `null`."}


def request_example(name: str, value: dict[str, Any], *, media_type: str = JSON) -> OpenApiExample:
    """A request body. For multipart bodies, a file part is shown as a placeholder string."""
    return OpenApiExample(name, value=value, request_only=True, media_type=media_type)


def success_example(name: str, data: Any, *, message: str = "OK", status: int = 200) -> OpenApiExample:
    """A 2xx JSON answer: `data` only; `message` is the one the view sends for it."""
    return OpenApiExample(name, value=data, summary=message, response_only=True, status_codes=[str(status)])


def error_example(
    name: str,
    *,
    message: str,
    code: str,
    errors: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> OpenApiExample:
    """A whole error envelope (the status comes from the `error_response` it is given to)."""
    body = camelize(error_body(message=message, code=code, errors=errors, extra=extra))
    return OpenApiExample(name, value=body, response_only=True)


def error_response(description: str, *examples: OpenApiExample) -> OpenApiResponse:
    """An error status documented with the error envelope and real examples of it."""
    return OpenApiResponse(ERROR_ENVELOPE_REF, description=description, examples=list(examples))


def null_response(message: str, name: str = "Done") -> OpenApiResponse:
    """A 200 whose envelope carries `data: null` and only a message (logout, deletes)."""
    return OpenApiResponse(NULL_DATA, examples=[success_example(name, None, message=message)])


# --- Errors shared by several apps ------------------------------------------------------------

RATE_LIMITED = error_example(
    "Rate limited",
    message="Too many requests. Try again in 7 seconds.",
    code="rate_limited",
)
QUOTA_EXCEEDED = error_example(
    "Quota exceeded",
    message="Quota exceeded: this request needs 2 units and 1 of your 100 remain until 2026-12-01.",
    code="quota_exceeded",
    extra={"units_needed": 2, "remaining": 1, "used": 99, "limit": 100, "reset_date": "2026-12-01T00:00:00Z"},
)
# For endpoints that spend quota: the monthly allowance or the per-minute rate, both with Retry-After.
QUOTA_ERRORS = {
    429: error_response("Quota exhausted or rate limit hit; see `Retry-After`.", QUOTA_EXCEEDED, RATE_LIMITED)
}
