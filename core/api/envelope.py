"""Builders of the response envelope every `/api/` endpoint answers with."""

from __future__ import annotations

from typing import Any

from rest_framework import status as http
from rest_framework.response import Response


def ok(
    data: Any = None,
    *,
    message: str = "OK",
    status: int = http.HTTP_200_OK,
    meta: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A success response: `{success, message, data, meta}`."""
    return Response(
        {"success": True, "message": message, "data": data, "meta": meta or {}},
        status=status,
        headers=headers,
    )


def counted(count: int, noun: str) -> str:
    """ "1 result", "3 results": for messages that report a number of things."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def error_body(
    *,
    message: str,
    code: str,
    errors: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The error envelope: `{success: false, message, code, errors}` plus any extra keys."""
    body: dict[str, Any] = {"success": False, "message": message, "code": code, "errors": errors or {}}
    if extra:
        body.update(extra)
    return body
