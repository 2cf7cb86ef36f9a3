"""The schema is the contract: /api/v1/schema/ renders, is valid OpenAPI 3, holds every
documented endpoint of the API, and documents the problem-details errors and Idempotency-Key."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from governance.api.idempotency import FRESH_ANSWER_PATHS

pytestmark = pytest.mark.django_db

# Every method and path the API promises its clients (its resource table). Path parameters are
# written as in the schema.
DOCUMENTED_ENDPOINTS = [
    ("get", "/api/v1/scopes/"),
    ("get", "/api/v1/integrations/"),
    ("post", "/api/v1/integrations/"),
    ("get", "/api/v1/integrations/{id}/"),
    ("patch", "/api/v1/integrations/{id}/"),
    ("post", "/api/v1/integrations/{id}/suspend/"),
    ("get", "/api/v1/integrations/{id}/history/"),
    ("get", "/api/v1/access-requests/"),
    ("get", "/api/v1/access-requests/{id}/"),
    ("post", "/api/v1/access-requests/{id}/decisions/"),
    ("post", "/api/v1/access-requests/{id}/withdraw/"),
    ("get", "/api/v1/grants/"),
    ("post", "/api/v1/grants/{id}/revoke/"),
    ("get", "/api/v1/campaigns/"),
    ("post", "/api/v1/campaigns/"),
    ("post", "/api/v1/campaigns/{id}/launch/"),
    ("get", "/api/v1/campaigns/{id}/items/"),
    ("post", "/api/v1/review-items/{id}/decision/"),
    ("get", "/api/v1/audit-events/"),
    ("get", "/api/v1/token-events/"),
    ("post", "/api/v1/decisions/"),
    ("get", "/api/v1/decisions/"),
    ("get", "/api/v1/decisions/{id}/"),
    ("post", "/api/v1/policies/{id}/replays/"),
    ("post", "/api/v1/policies/{id}/replay/"),
    ("get", "/api/v1/policy-replays/"),
    ("get", "/api/v1/policy-replays/{id}/"),
    ("get", "/api/v1/trusted-issuers/"),
    ("post", "/api/v1/trusted-issuers/"),
    ("get", "/api/v1/trusted-issuers/{id}/"),
    ("patch", "/api/v1/trusted-issuers/{id}/"),
    ("get", "/api/v1/webhooks/"),
    ("post", "/api/v1/webhooks/"),
    ("delete", "/api/v1/webhooks/{id}/"),
    ("get", "/api/v1/webhooks/{id}/deliveries/"),
    ("post", "/api/v1/webhook-deliveries/{id}/redeliver/"),
]
PROBLEM_STATUSES = {"400", "401", "403", "404", "409", "429"}


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = APIClient().get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # raises on any violation of the OpenAPI 3 JSON schema


def _normalise(path: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", "{id}", path)


def test_every_documented_endpoint_is_in_the_schema(schema):
    present = {(method, _normalise(path)) for path, item in schema["paths"].items() for method in item}
    missing = [f"{m.upper()} {p}" for m, p in DOCUMENTED_ENDPOINTS if (m, p) not in present]
    assert not missing, f"documented endpoints missing from the schema: {missing}"


def test_every_operation_documents_problem_details(schema):
    assert "ProblemDetails" in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = op["responses"]
            assert PROBLEM_STATUSES <= set(responses), (
                f"{method.upper()} {path} lacks {PROBLEM_STATUSES - set(responses)}"
            )
            problem = responses["404"]["content"]["application/problem+json"]["schema"]
            assert problem == {"$ref": "#/components/schemas/ProblemDetails"}
            assert "Retry-After" in responses["429"]["headers"]


def test_every_post_that_creates_documents_the_idempotency_key_header(schema):
    for path, item in schema["paths"].items():
        if "post" in item:
            headers = [p["name"] for p in item["post"].get("parameters", []) if p["in"] == "header"]
            # A question about now (a policy decision) is answered afresh, never replayed.
            expected = not path.startswith(FRESH_ANSWER_PATHS)
            assert ("Idempotency-Key" in headers) == expected, f"POST {path}"
