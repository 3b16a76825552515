"""How the API writes a moment outside a serializer (headers, error details): ISO 8601 in UTC with `Z`."""

from __future__ import annotations

from datetime import datetime


def iso_z(moment: datetime) -> str:
    """`2026-03-01T00:00:00Z`: what the mobile client parses, the same as the serializers' UTC output."""
    return moment.isoformat().replace("+00:00", "Z")
