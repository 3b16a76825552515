"""camelCase on the wire, snake_case in Python.

Keys are converted recursively, except the values under `OPAQUE_KEYS`: those hold the user's own
JSON (embedding metadata, search filters) and must round-trip byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

OPAQUE_KEYS = frozenset({"metadata", "filter"})

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])([A-Z])")


def to_camel(key: str) -> str:
    if "_" not in key:
        return key
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_snake(key: str) -> str:
    return _CAMEL_BOUNDARY.sub(r"_\1", key).lower() if key[:1].islower() else key


def camelize(data: Any) -> Any:
    return _convert(data, to_camel)


def underscoreize(data: Any) -> Any:
    return _convert(data, to_snake)


def _convert(data: Any, convert_key: Callable[[str], str]) -> Any:
    if isinstance(data, dict):
        return {
            (convert_key(key) if isinstance(key, str) else key): (
                value if key in OPAQUE_KEYS else _convert(value, convert_key)
            )
            for key, value in data.items()
        }
    if isinstance(data, (list, tuple)):
        return [_convert(item, convert_key) for item in data]
    return data
