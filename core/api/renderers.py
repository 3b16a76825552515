from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import JSONRenderer

from core.api.casing import camelize


class CamelCaseJSONRenderer(JSONRenderer):
    """JSON with camelCase keys, as the mobile clients expect."""

    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        return super().render(camelize(data), accepted_media_type, renderer_context)
