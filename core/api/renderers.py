from __future__ import annotations

from typing import Any

from rest_framework.renderers import JSONRenderer

from core.api.casing import camelize


class CamelCaseJSONRenderer(JSONRenderer):
    """JSON with camelCase keys, as the mobile clients expect."""

    charset = "utf-8"

    def render(self, data: Any, accepted_media_type=None, renderer_context=None) -> bytes:
        return super().render(camelize(data), accepted_media_type, renderer_context)
