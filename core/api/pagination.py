from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.paginator import InvalidPage, Paginator
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from core.exceptions import InvalidInput

if TYPE_CHECKING:  # at run time DRF's views import the throttle and pagination classes from here
    from rest_framework.views import APIView

MAX_LIMIT = 100
DEFAULT_LIMIT = 20


class PagePagination(BasePagination):
    """`?page=&limit=` pagination; the list goes in `data`, the numbers in `meta.pagination`."""

    def paginate_queryset(
        self, queryset: QuerySet[Any, Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any]:
        self.page_number = _positive_int(request.query_params.get("page"), "page", default=1)
        self.limit = _positive_int(request.query_params.get("limit"), "limit", default=DEFAULT_LIMIT)
        if self.limit > MAX_LIMIT:
            raise InvalidInput(f"limit must be at most {MAX_LIMIT}.", errors={"limit": [f"At most {MAX_LIMIT}."]})
        paginator = Paginator(queryset, self.limit)
        self.total = paginator.count
        if self.page_number > max(paginator.num_pages, 1):
            self.page_items: list[Any] = []
        else:
            try:
                self.page_items = list(paginator.page(self.page_number))
            except InvalidPage as exc:  # pragma: no cover - guarded above
                raise NotFound(str(exc)) from exc
        return self.page_items

    def get_meta(self) -> dict[str, Any]:
        return {
            "pagination": {
                "page": self.page_number,
                "limit": self.limit,
                "total": self.total,
                "pages": math.ceil(self.total / self.limit) if self.total else 0,
            }
        }

    def get_paginated_response(self, data: Any, message: str = "OK") -> Response:
        return Response({"success": True, "message": message, "data": data, "meta": self.get_meta()})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "properties": {
                "success": {"type": "boolean", "example": True},
                "message": {"type": "string"},
                "data": schema,
                "meta": {
                    "type": "object",
                    "properties": {
                        "pagination": {
                            "type": "object",
                            "properties": {k: {"type": "integer"} for k in ("page", "limit", "total", "pages")},
                        }
                    },
                },
            },
        }

    def get_schema_operation_parameters(self, view: APIView | None) -> list[dict[str, Any]]:
        return [
            {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            },
        ]


def _positive_int(raw: str | None, name: str, *, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be an integer.", errors={name: ["Must be an integer."]}) from None
    if value < 1:
        raise InvalidInput(f"{name} must be at least 1.", errors={name: ["Must be at least 1."]})
    return value


def paginate(
    *,
    request: Request,
    queryset: QuerySet[Any],
    serializer_class: type[BaseSerializer[Any]],
    message: str = "OK",
    context: dict[str, Any] | None = None,
) -> Response:
    """Page `queryset`, serialize the page and answer with the list envelope."""
    paginator = PagePagination()
    page = paginator.paginate_queryset(queryset, request)
    serializer = serializer_class(page, many=True, context={"request": request, **(context or {})})
    return paginator.get_paginated_response(serializer.data, message=message)
