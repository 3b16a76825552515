"""OpenAPI post-processing: the schema shows the camelCase keys and the envelopes that go over the wire.

Every 2xx JSON body is wrapped in the success envelope, schema and examples alike: an example
is written as the `data` part only (see `core.api.examples`), and here becomes the whole body
the view sends, `{success, message, data, meta}`, with `meta.pagination` for paged answers.
"""

from __future__ import annotations

import math
from typing import Any

from core.api.casing import OPAQUE_KEYS, to_camel
from core.api.examples import ERROR_ENVELOPE_REF, RATE_LIMITED
from core.api.pagination import DEFAULT_LIMIT, PagePagination

ERROR_ENVELOPE = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean", "example": False},
        "message": {"type": "string", "example": "Descriptive error message"},
        "code": {"type": "string", "example": "validation_error"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["success", "message", "code", "errors"],
    "additionalProperties": True,
    "description": (
        "Some errors add keys of their own: `quota_exceeded` adds `unitsNeeded`, `remaining`, `used`, "
        "`limit` and `resetDate`; with DEBUG on, a 500 adds `error` (the exception, for development only)."
    ),
}
_ERROR_RESPONSES = {
    "400": "Invalid input: `errors` names each field.",
    "401": "Missing, expired or revoked token.",
    "404": "Not found, or not yours.",
    "429": "Rate limit or quota exceeded; see `Retry-After`.",
}
# Any operation that reads a body: a body over the size limit (refused from its declared length
# where possible) or in a content type the operation does not parse.
_BODY_ERROR_RESPONSES = {
    "413": "The body (or an uploaded file) is larger than the limit.",
    "415": "The body's content type, or an uploaded file's content, is not accepted.",
}
# Every endpoint is rate limited, so the 429 added below can always show a real refusal.
_ERROR_EXAMPLES = {"429": {"RateLimited": {"summary": RATE_LIMITED.name, "value": RATE_LIMITED.value}}}
COMPLETE_RESPONSES = "x-responses-complete"
_PAGINATION = {
    "type": "object",
    "properties": {key: {"type": "integer"} for key in ("page", "limit", "total", "pages")},
    "required": ["page", "limit", "total", "pages"],
}


def camelize_schema(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Show the wire format: camelCase keys, every body in the success or error envelope."""
    components = result.setdefault("components", {})
    for schema in components.get("schemas", {}).values():
        _camelize_object(schema)
    components.setdefault("schemas", {})["ErrorEnvelope"] = ERROR_ENVELOPE
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    parameter["name"] = to_camel(parameter["name"])
            for body in (operation.get("requestBody") or {}).get("content", {}).values():
                _camelize_object(body.get("schema", {}))
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status[0] in "45" and not response.get("content"):
                    # Declared without a body (e.g. `404: None` next to a binary 200): errors
                    # still answer with the envelope.
                    response["content"] = {"application/json": {"schema": dict(ERROR_ENVELOPE_REF)}}
                for media_type, body in (response.get("content") or {}).items():
                    _camelize_object(body.get("schema", {}))
                    if status.startswith("2") and media_type == "application/json":
                        _wrap_success(operation, body)
            # An operation that lists its own error statuses (`extensions={COMPLETE_RESPONSES: True}`)
            # gets no generic ones: each status it documents is one it really answers.
            complete = operation.pop(COMPLETE_RESPONSES, False)
            if not complete and (operation.get("security") is not None or operation.get("requestBody")):
                for status, description in _ERROR_RESPONSES.items():
                    content: dict[str, Any] = {"schema": dict(ERROR_ENVELOPE_REF)}
                    if status in _ERROR_EXAMPLES:
                        content["examples"] = _ERROR_EXAMPLES[status]
                    responses.setdefault(status, {"description": description, "content": {"application/json": content}})
            if operation.get("requestBody"):
                for status, description in _BODY_ERROR_RESPONSES.items():
                    envelope = {"application/json": {"schema": dict(ERROR_ENVELOPE_REF)}}
                    responses.setdefault(status, {"description": description, "content": envelope})
    return result


def _wrap_success(operation: dict[str, Any], body: dict[str, Any]) -> None:
    schema = body.get("schema")
    if schema and "success" in schema.get("properties", {}):
        return  # already an envelope
    paginated = _is_paginated(operation, schema)
    if paginated:
        _add_pagination_parameters(operation)
    body["schema"] = _success_envelope(schema, paginated=paginated)
    for example in (body.get("examples") or {}).values():
        if "value" in example:
            example["value"] = _example_envelope(example, paginated=paginated)


def _is_paginated(operation: dict[str, Any], schema: dict[str, Any] | None) -> bool:
    """Lists always come in pages (`core.api.pagination.paginate`); a detail with a paged list
    inside (a conversation's messages) says so with its `page` parameter."""
    if schema and schema.get("type") == "array":
        return True
    return any(p.get("in") == "query" and p.get("name") == "page" for p in operation.get("parameters", []))


def _add_pagination_parameters(operation: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    present = {(p.get("in"), p.get("name")) for p in parameters}
    for parameter in PagePagination().get_schema_operation_parameters(None):
        if ("query", parameter["name"]) not in present:
            parameters.append(parameter)


def _success_envelope(schema: dict[str, Any] | None, *, paginated: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"type": "object"}
    if paginated:
        meta = {"type": "object", "properties": {"pagination": _PAGINATION}, "required": ["pagination"]}
    return {
        "type": "object",
        "properties": {
            "success": {"type": "boolean", "example": True},
            "message": {"type": "string", "example": "Operation completed successfully"},
            "data": schema or {"type": "object", "nullable": True},
            "meta": meta,
        },
        "required": ["success", "message", "data", "meta"],
    }


def _example_envelope(example: dict[str, Any], *, paginated: bool) -> dict[str, Any]:
    """The body the view sends for this example's `data` (see `core.api.envelope.ok` and
    `core.api.pagination.PagePagination.get_meta`)."""
    data = example["value"]
    meta: dict[str, Any] = {}
    if paginated:
        # One page holding the example's items: the list itself, or the paged list in a detail.
        if isinstance(data, list):
            items = data
        else:
            items = next((value for value in (data or {}).values() if isinstance(value, list)), [])
        total = len(items)
        pages = math.ceil(total / DEFAULT_LIMIT)
        meta = {"pagination": {"page": 1, "limit": DEFAULT_LIMIT, "total": total, "pages": pages}}
    return {"success": True, "message": example.get("summary", "OK"), "data": data, "meta": meta}


def _camelize_object(schema: Any) -> None:
    if not isinstance(schema, dict):
        return
    properties = schema.get("properties")
    if isinstance(properties, dict):
        schema["properties"] = {to_camel(name): value for name, value in properties.items()}
        for name, value in schema["properties"].items():
            if name not in OPAQUE_KEYS:
                _camelize_object(value)
    if isinstance(schema.get("required"), list):
        schema["required"] = [to_camel(name) for name in schema["required"]]
    for key in ("items", "additionalProperties"):
        _camelize_object(schema.get(key))
    for key in ("allOf", "oneOf", "anyOf"):
        for item in schema.get(key, []) or []:
            _camelize_object(item)
