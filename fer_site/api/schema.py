"""OpenAPI schema additions: the error responses every operation may give, in the one error shape, and
what the serializers refuse that drf-spectacular does not say."""

from __future__ import annotations

from typing import Any

ERROR_COMPONENT = "Error"

_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "A stable word for programs, e.g. invalid, throttled.",
                },
                "message": {"type": "string", "description": "What went wrong, for people."},
                "details": {"description": "Specifics (field errors, the refused image, the wait) or null."},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}

_COMMON = {
    "400": "The input is not valid (`invalid`, `parse_error`, ...).",
    "401": "No credentials, or an API key that is not valid (`not_authenticated`, `authentication_failed`).",
    "403": "The key lacks this endpoint's scope (`missing_scope`), or the user is not staff.",
    "406": "The Accept header asks for something other than JSON.",
    "429": "Too many requests for this key (`throttled`); see Retry-After.",
}
_WITH_BODY = {
    "413": "The body or an image is too large (`request_too_large`, `too_large`, `too_many_pixels`).",
    "415": "The Content-Type is not accepted (`unsupported_media_type`, `unsupported_format`).",
}
_WITH_ID = {"404": "Nothing with this id (`not_found`)."}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Document the error responses of every API operation (a drf-spectacular postprocessing hook)."""
    # Views that document an error themselves (ErrorSerializer) have already added the component.
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault(ERROR_COMPONENT, _ERROR_SCHEMA)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            errors = dict(_COMMON)
            if method in ("post", "put", "patch"):
                errors |= _WITH_BODY
            if "{" in path:
                errors |= _WITH_ID
            for code, description in errors.items():
                response = operation["responses"].setdefault(code, _error_response(description))
                if code == "429":
                    response.setdefault("headers", _RETRY_AFTER)
    return result


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}},
    }


# DRF's CharField refuses the NUL character ("Null characters are not allowed.").
NO_NUL_PATTERN = "^[^\\x00]*$"


def state_request_rules(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Say what every view refuses beyond its fields' schema (a drf-spectacular postprocessing hook).

    A request body an operation documents is one it needs: without it the view answers 400. Text in a
    request (a body's strings, a query parameter) never holds the NUL character.
    """
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
                for media in operation["requestBody"].get("content", {}).values():
                    _refuse_nul(media.get("schema"))
            for parameter in operation.get("parameters", []):
                _refuse_nul(parameter.get("schema"))
    # With COMPONENT_SPLIT_REQUEST, the request side of a serializer is its own component.
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            _refuse_nul(component)
    return result


def _refuse_nul(schema: Any) -> None:
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not {"format", "enum", "pattern"} & set(schema):
        schema["pattern"] = NO_NUL_PATTERN
    for sub in (schema.get("properties") or {}).values():
        _refuse_nul(sub)
    for key in ("items", "additionalProperties"):
        _refuse_nul(schema.get(key))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            _refuse_nul(sub)
