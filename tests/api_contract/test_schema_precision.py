"""The schema says exactly what the API takes: what it allows is accepted, what it
forbids is a 400, and input that matches it but cannot be acted on is a 422. These are the rules
the fuzzing run (test_schemathesis.py) holds the whole API to, one example each."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers
from rest_framework.test import APIClient

from governance.api.schema import string_pattern
from governance.models import User
from governance.services import api_token_issue
from governance.validators import validate_single_line
from inventory.models import Integration

pytestmark = pytest.mark.django_db

INTEGRATION = {"name": "Notes bot", "kind": "chatbot", "purpose": "Summarises meetings."}


@pytest.fixture
def schema(api_as: Any, iam_admin: User) -> dict[str, Any]:
    response = api_as(iam_admin).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _operation(schema: dict[str, Any], operation_id: str) -> dict[str, Any]:
    for item in schema["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return op
    raise AssertionError(f"no operation {operation_id}")


# --- Strings: the published pattern is DRF's CharField -----------------------------------------

_CHARACTERS = st.sampled_from(["a", "é", " ", "\t", "\n", "\x00", "\x85", "\xa0", "\x1c", "\x7f", "\u2028", "\u3000"])


@settings(max_examples=300, deadline=None, database=None)
@given(
    value=st.text(_CHARACTERS, max_size=8),
    single_line=st.booleans(),
    blank=st.booleans(),
    bounds=st.sampled_from([(None, None), (None, 5), (3, 5), (None, 1), (2, None)]),
)
def test_a_request_string_pattern_accepts_exactly_what_the_field_accepts(
    value: str, single_line: bool, blank: bool, bounds: tuple[int | None, int | None]
) -> None:
    # DRF strips whitespace first (then a blank value skips the other checks), refuses NUL, counts
    # the length once stripped; a single-line field refuses control characters inside.
    low, high = bounds
    field = serializers.CharField(
        allow_blank=blank,
        min_length=low,
        max_length=high,
        validators=[validate_single_line] if single_line else [],
    )
    try:
        field.run_validation(value)
        accepted = True
    except serializers.ValidationError:
        accepted = False
    pattern = string_pattern(single_line=single_line, blank=blank, min_length=low, max_length=high)
    # A blank-allowed field's schema is oneOf [pattern, the empty string].
    published = bool(re.match(pattern, value)) or (blank and value == "")
    assert accepted == published


# --- 400: input that breaks the schema ----------------------------------------------------------


def test_a_number_where_the_schema_says_string_is_a_400_naming_the_field(api_as: Any, owner: User) -> None:
    response = api_as(owner).post("/api/v1/integrations/", {**INTEGRATION, "name": 0}, format="json")
    assert response.status_code == 400 and "name" in response.json()["errors"]
    assert not Integration.objects.exists()


def test_a_string_where_the_schema_says_boolean_is_a_400(api_as: Any, owner: User) -> None:
    response = api_as(owner).post("/api/v1/integrations/", {**INTEGRATION, "acts_for_users": "yes"}, format="json")
    assert response.status_code == 400 and "acts_for_users" in response.json()["errors"]


def test_a_date_time_that_is_not_rfc_3339_is_a_400(api_as: Any, owner: User) -> None:
    credential = {"type": "api_key", "identifier": "key-id-1", "created_at": "2030-01-31 09:00"}
    response = api_as(owner).post("/api/v1/integrations/", {**INTEGRATION, "credentials": [credential]}, format="json")
    assert response.status_code == 400 and "credentials.0.created_at" in response.json()["errors"]


@pytest.mark.parametrize("value", ["abc", "0", "201", "1.5"])
def test_page_size_is_a_whole_number_from_1_to_200(api_as: Any, auditor: User, value: str) -> None:
    response = api_as(auditor).get("/api/v1/audit-events/", {"page_size": value})
    assert response.status_code == 400 and "page_size" in response.json()["errors"]


def test_sorting_by_a_field_the_schema_does_not_list_is_a_400(api_as: Any, auditor: User) -> None:
    assert api_as(auditor).get("/api/v1/audit-events/", {"ordering": "-created_at,id"}).status_code == 200
    response = api_as(auditor).get("/api/v1/audit-events/", {"ordering": "-created_at,nmae"})
    assert response.status_code == 400 and "ordering" in response.json()["errors"]


def test_a_true_false_filter_takes_only_true_or_false(api_as: Any, owner: User) -> None:
    assert api_as(owner).get("/api/v1/grants/", {"active": "true"}).status_code == 200
    response = api_as(owner).get("/api/v1/grants/", {"active": "maybe"})
    assert response.status_code == 400 and "active" in response.json()["errors"]


def test_a_webhook_target_must_be_a_uri(api_as: Any, iam_admin: User) -> None:
    body = {"name": "Jira", "target_url": "https://jira.example.com/a}b%zz", "event_types": ["*"]}
    response = api_as(iam_admin).post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 400 and "target_url" in response.json()["errors"]


def test_an_idempotency_key_with_a_control_character_is_a_400(owner: User) -> None:
    _token, key = api_token_issue(actor=owner, user=owner)
    client = APIClient(headers={"Authorization": f"Token {key}"})
    response = client.post(
        "/api/v1/integrations/", INTEGRATION, format="json", headers={"Idempotency-Key": "key\x01one"}
    )
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["errors"]
    assert not Integration.objects.exists()


# --- 422: input that matches the schema but cannot be acted on -----------------------------------


def test_naming_a_user_who_does_not_exist_is_a_422_naming_the_field(api_as: Any, owner: User) -> None:
    response = api_as(owner).post("/api/v1/integrations/", {**INTEGRATION, "technical_owner": "nobody"}, format="json")
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Unprocessable content" and list(problem["errors"]) == ["technical_owner"]
    # Beside input that breaks the schema, it is a 400 naming both.
    response = api_as(owner).post(
        "/api/v1/integrations/", {**INTEGRATION, "technical_owner": "nobody", "kind": "robot"}, format="json"
    )
    assert response.status_code == 400 and {"technical_owner", "kind"} <= set(response.json()["errors"])
    assert not Integration.objects.exists()


def test_a_rule_between_fields_the_schema_cannot_state_is_a_422(api_as: Any, iam_admin: User) -> None:
    body = {"name": "Quarterly", "owner": iam_admin.username, "duration_days": 14, "reminder_days": [30]}
    response = api_as(iam_admin).post("/api/v1/campaign-definitions/", body, format="json")
    assert response.status_code == 422 and list(response.json()["errors"]) == ["reminder_days"]


# --- Lists filtered by an id ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/review-items/?campaign=424242",
        "/api/v1/campaigns/?definition=424242",
        "/api/v1/ownership-transfers/?integration=424242",
    ],
)
def test_filtering_a_list_by_an_id_that_matches_nothing_lists_nothing(api_as: Any, iam_admin: User, path: str) -> None:
    response = api_as(iam_admin).get(path)
    assert response.status_code == 200 and response.json()["results"] == []


def test_a_date_time_filter_takes_any_rfc_3339_offset(api_as: Any, auditor: User) -> None:
    # PostgreSQL refuses an offset beyond 15:59 kept in the value (it was a 500 there).
    response = api_as(auditor).get("/api/v1/audit-events/", {"since": "2030-04-24T00:08:01.876-18:46"})
    assert response.status_code == 200


# --- What the schema publishes -------------------------------------------------------------------


def test_every_operation_with_a_body_documents_413_415_and_422_as_problem_details(schema: dict[str, Any]) -> None:
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method not in {"post", "put", "patch"}:
                continue
            for status in ("413", "415", "422"):
                content = op["responses"][status]["content"]
                assert list(content) == ["application/problem+json"], f"{method.upper()} {path} {status}"
            assert op["responses"]["429"]["headers"]["Retry-After"]["required"] is True


def test_a_cross_field_rule_is_published(schema: dict[str, Any]) -> None:
    # Revoking a review item needs a comment: the schema's anyOf says so.
    component = schema["components"]["schemas"]["DecisionInRequest"]
    (rule,) = component["allOf"]
    when_revoked = next(branch for branch in rule["anyOf"] if "comment" in branch.get("properties", {}))
    assert when_revoked["properties"]["decision"]["enum"] == ["revoke"]
    assert when_revoked["required"] == ["decision", "comment"]


@pytest.mark.parametrize(
    ("source", "status", "target"),
    [
        ("integrations_create", "201", "integrations_retrieve"),
        ("integrations_create", "201", "integrations_submit_create"),
        ("integrations_submit_create", "200", "access_requests_list"),
        ("access_requests_list", "200", "access_requests_decisions_create"),
        ("campaign_definitions_create", "201", "campaigns_create"),
        ("campaigns_create", "201", "campaigns_launch_create"),
        ("campaigns_create", "201", "campaigns_items_list"),
        ("campaigns_items_list", "200", "review_items_decision_create"),
        ("webhooks_create", "201", "webhooks_destroy"),
    ],
)
def test_links_lead_from_what_creates_to_what_reads_and_decides(
    schema: dict[str, Any], source: str, status: str, target: str
) -> None:
    links = _operation(schema, source)["responses"][status].get("links", {})
    assert target in {link["operationId"] for link in links.values()}
