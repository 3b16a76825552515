"""Request bodies refused from their headers, before a byte of them is read.

A view that takes uploads names the setting that bounds its file (`body_limit_setting`, e.g.
"VIDEO_MAX_UPLOAD_BYTES") and its file field (`upload_field`); the body may be that plus room for
the multipart boundaries and form fields. Every other `/api/` view takes at most
DATA_UPLOAD_MAX_MEMORY_SIZE: Django checks that limit only when `request.body` is read, and DRF's
parsers read the stream instead, so without this check a JSON body of any declared size would be
read into memory.

A body whose declared length is over the limit answers 413 at once. The server then closes the
connection without reading the rest; a client that sends headers first and reads the answer (or
uses `Expect: 100-continue`) learns it before uploading 100 MB for nothing. A chunked body has no
declared length and is refused with 411: Django reads only `Content-Length` bytes, so it would be
seen as empty ("no file was sent"), which would mislead the client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.api.envelope import error_body

# Multipart boundaries, part headers and the option fields sent next to an uploaded file.
FORM_OVERHEAD_BYTES = 64 * 1024


def _human(size: int) -> str:
    return f"{size / 1_048_576:.4g} MB" if size >= 1_048_576 else f"{size / 1024:.4g} KB"


def body_limit(view_class: Any) -> tuple[int, int | None]:
    """The largest body `view_class` accepts, and the file limit it comes from (None for views
    that take no upload), in bytes."""
    setting = getattr(view_class, "body_limit_setting", None)
    if setting:
        file_limit = int(getattr(settings, setting))
        return file_limit + FORM_OVERHEAD_BYTES, file_limit
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE), None


def _declared_length(request: HttpRequest) -> int | None:
    raw = request.META.get("CONTENT_LENGTH")
    if not raw:
        return None
    try:
        return max(int(raw), 0)
    except ValueError:
        return None


class RequestBodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Callable, view_args: Any, view_kwargs: Any) -> Any:
        if not request.path.startswith("/api/"):
            return None
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return JsonResponse(
                error_body(
                    message="A Content-Length header is required: chunked request bodies are not accepted.",
                    code="length_required",
                ),
                status=411,
            )
        declared = _declared_length(request)
        limit, file_limit = body_limit(getattr(view_func, "view_class", None))
        if declared is None or declared <= limit:
            return None
        if file_limit is not None:
            # Same code as a file found too large while streaming: clients handle one.
            message = f"The upload ({_human(declared)}) is larger than the {_human(file_limit)} upload limit."
            field = getattr(getattr(view_func, "view_class", None), "upload_field", None)
            body = error_body(message=message, code="file_too_large", errors={field: [message]} if field else None)
        else:
            body = error_body(
                message=f"The request body ({_human(declared)}) is larger than the {_human(limit)} limit.",
                code="request_too_large",
            )
        return JsonResponse(body, status=413)
