"""OpenAPI post-processing: the schema shows the camelCase keys that go over the wire."""

from __future__ import annotations

from typing import Any

from config.api.casing import OPAQUE_KEYS, to_camel

ERROR_ENVELOPE = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean", "example": False},
        "message": {"type": "string", "example": "Descriptive error message"},
        "code": {"type": "string", "example": "validation_error"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["success", "message", "code", "errors"],
}
_ERROR_RESPONSES = {
    "400": "Invalid input: `errors` names each field.",
    "401": "Missing, expired or revoked token.",
    "404": "Not found, or not yours.",
    "429": "Rate limit or quota exceeded; see `Retry-After`.",
}


def camelize_schema(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
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
                for media_type, body in (response.get("content") or {}).items():
                    _camelize_object(body.get("schema", {}))
                    if status.startswith("2") and media_type == "application/json":
                        body["schema"] = _success_envelope(body.get("schema"))
            if operation.get("security") is not None or operation.get("requestBody"):
                for status, description in _ERROR_RESPONSES.items():
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
                        },
                    )
    return result


def _success_envelope(schema: dict[str, Any] | None) -> dict[str, Any]:
    if schema and "success" in schema.get("properties", {}):
        return schema  # already an envelope (paginated lists)
    return {
        "type": "object",
        "properties": {
            "success": {"type": "boolean", "example": True},
            "message": {"type": "string", "example": "Operation completed successfully"},
            "data": schema or {"type": "object", "nullable": True},
            "meta": {"type": "object"},
        },
        "required": ["success", "message", "data"],
    }


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
