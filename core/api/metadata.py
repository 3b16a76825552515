"""`OPTIONS` answers in the success envelope, like every other `/api/` answer.

DRF's default metadata describes renderers, parsers and serializer fields in its own shape; the
schema at `/api/schema/` is where clients learn the API, so OPTIONS only says which methods the
path takes (also in the `Allow` header).
"""

from __future__ import annotations

from typing import Any

from rest_framework.metadata import BaseMetadata
from rest_framework.request import Request


class EnvelopeMetadata(BaseMetadata):
    def determine_metadata(self, request: Request, view: Any) -> dict[str, Any]:
        return {
            "success": True,
            "message": "Allowed methods",
            "data": {"name": view.get_view_name(), "methods": list(view.allowed_methods)},
            "meta": {},
        }
