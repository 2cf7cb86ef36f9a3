"""drf-spectacular extensions for the portal's authentication classes."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "governance.api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`, issued by `manage.py issue_api_token USERNAME`.",
        }


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "governance.api.authentication.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


# --- Postprocessing: problem details and Idempotency-Key on every operation ---------------------

PROBLEM_COMPONENT = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Validation errors by field.",
        },
    },
    "required": ["type", "title", "status", "detail"],
}
_PROBLEM_STATUSES = {
    "400": "Invalid input.",
    "401": "Not authenticated.",
    "403": "Not allowed.",
    "404": "Not found (or not visible to the caller).",
    "405": "Method not allowed.",
    "409": "Conflict with the object's current state.",
    "429": "Too many requests: retry after `Retry-After` seconds.",
}
_POST_ONLY_STATUSES = {
    "415": "Unsupported media type (send JSON).",
    "422": "The Idempotency-Key was already used with another body.",
}
_IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "Same key and body within 24 h: the first response is returned again and nothing "
    "new is created; the same key with another body is a 422; while the first is running, a 409.",
}


def _problem_response(description: str, status: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
    }
    if status == "429":
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
    return response


def postprocess_problem_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Every operation documents the problem-details errors it can answer (the API's handler,
    middleware, throttles) with a ``ProblemDetails`` schema, and every POST the
    ``Idempotency-Key`` header (handled for all of /api/v1/ by the idempotency middleware)."""
    result.setdefault("components", {}).setdefault("schemas", {})["ProblemDetails"] = PROBLEM_COMPONENT
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            wanted = dict(_PROBLEM_STATUSES)
            if method in {"post", "put", "patch"}:
                wanted.update(_POST_ONLY_STATUSES)
            for status, description in wanted.items():
                existing = responses.get(status)
                if existing is None:
                    responses[status] = _problem_response(description, status)
                elif not existing.get("content"):
                    responses[status] = _problem_response(existing.get("description") or description, status)
            if method == "post":
                params = operation.setdefault("parameters", [])
                if not any(p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in params):
                    params.append(dict(_IDEMPOTENCY_PARAMETER))
    return result
