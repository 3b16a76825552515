"""The id of the request (or task) being handled, visible to every log record it produces.

A context variable rather than a thread-local: it follows the request through threads and
async code alike, and a Celery task sets it from the id of the request that queued it.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar, Token

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# Ids from clients and proxies are echoed into logs and headers: keep them short and inert
# (no spaces, quotes or control characters that could forge a log line or a header).
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def request_id_is_valid(value: str | None) -> bool:
    return value is not None and _VALID_REQUEST_ID.fullmatch(value) is not None


def request_id_new() -> str:
    return uuid.uuid4().hex


def request_id_get() -> str | None:
    return _request_id.get()


def request_id_set(value: str | None) -> Token:
    return _request_id.set(value)


def request_id_reset(token: Token) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Stamps `record.request_id` on every record that passes the handler (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        return True
