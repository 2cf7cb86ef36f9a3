"""What a request may carry, and how the portal says no: a body over the limit is a 413, deeply
nested JSON a 400, an id too large for the database a form error, a NUL character a 404/400 —
problem details on the API, never a 500 or an HTML page there — and an integration lists at
most so many tags, credentials and invoked integrations (a 400 naming the field beyond)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from governance.models import User
from inventory.models import Integration
from tests.inventory.conftest import form_data

pytestmark = pytest.mark.django_db

BODY = {"name": "Deal desk copilot", "kind": "agent", "purpose": "Prepares deal summaries."}
PROBLEM = "application/problem+json"
HUGE_ID = "99999999999999999999"  # 20 digits: beyond a 64-bit key


def test_json_nested_a_thousand_levels_deep_is_a_400_problem(owner: User, api_as: Any) -> None:
    client = api_as(owner)
    client.raise_request_exception = False
    for depth in (1000, 40):  # too deep to parse; parses, yet deeper than any request needs
        body = "[" * depth + "]" * depth
        response = client.generic("POST", "/api/v1/integrations/", body, content_type="application/json")
        assert response.status_code == 400, (depth, response.status_code)
        assert response["Content-Type"] == PROBLEM and "nested" in response.json()["detail"]
    assert not Integration.objects.exists()


def test_a_body_over_the_limit_is_a_413_problem_on_the_api_and_a_413_page_elsewhere(
    owner: User, api_as: Any, web_as: Any
) -> None:
    big = json.dumps({**BODY, "purpose": "x" * 10_000_000})
    api = api_as(owner)
    for headers in ({}, {"HTTP_IDEMPOTENCY_KEY": "CHG1"}):
        response = api.generic("POST", "/api/v1/integrations/", big, content_type="application/json", **headers)
        assert response.status_code == 413 and response["Content-Type"] == PROBLEM
        assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in response.json()["detail"]
    page = web_as(owner).post(reverse("inventory:create"), big, content_type="application/x-www-form-urlencoded")
    assert page.status_code == 413 and page["Content-Type"].startswith("text/html")
    assert not Integration.objects.exists()
    # Within the limit, the body is read.
    purpose = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 2)
    response = api.post("/api/v1/integrations/", {**BODY, "purpose": purpose}, format="json")
    assert response.status_code == 201, response.content[:300]


@pytest.mark.parametrize("field", ["requested_scopes", "invokes"])
def test_an_id_too_large_for_the_database_is_a_form_error(
    field: str, owner: User, web_as: Any, api_as: Any, catalog: Any
) -> None:
    response = web_as(owner).post(reverse("inventory:create"), form_data(owner.username, **{field: [HUGE_ID]}))
    assert response.status_code == 400
    assert f'id="id_{field}-error"' in response.content.decode()
    assert not Integration.objects.exists()
    # The API says the same (its serializers already refused such an id).
    response = api_as(owner).post("/api/v1/integrations/", {**BODY, "invokes": [int(HUGE_ID)]}, format="json")
    # Refused as input (400) or as an unknown reference (422), naming the field — never a 500.
    assert response.status_code in (400, 422)
    assert [key.split(".")[0] for key in response.json()["errors"]] == ["invokes"]


def test_a_nul_character_in_a_lookup_is_a_404_problem(owner: User, api_as: Any, catalog: Any) -> None:
    # PostgreSQL refuses NUL in text: without the check this was a 500 there.
    response = api_as(owner).get("/api/v1/scopes/a%00b/")
    assert response.status_code == 404 and response["Content-Type"] == PROBLEM


def test_a_nul_character_in_the_query_string_is_a_400(owner: User, api_as: Any, web_as: Any) -> None:
    response = api_as(owner).get("/api/v1/integrations/?q=a%00b")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    assert web_as(owner).get("/inventory/?q=a%00b").status_code == 400


def test_more_tags_or_credentials_than_the_limit_is_a_400_naming_the_field(
    owner: User, api_as: Any, catalog: Any
) -> None:
    client = api_as(owner)
    tags = [f"t{n}" for n in range(settings.INTEGRATION_MAX_TAGS + 1)]
    response = client.post("/api/v1/integrations/", {**BODY, "tags": tags}, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["tags"]
    credentials = [
        {"type": "api_key", "identifier": f"key-{n}"} for n in range(settings.INTEGRATION_MAX_CREDENTIALS + 1)
    ]
    response = client.post("/api/v1/integrations/", {**BODY, "credentials": credentials}, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["credentials"]
    assert not Integration.objects.exists()
    at_limit = {**BODY, "tags": tags[:-1], "credentials": credentials[:-1]}
    assert client.post("/api/v1/integrations/", at_limit, format="json").status_code == 201


@override_settings(INTEGRATION_MAX_INVOKES=2, INTEGRATION_MAX_TAGS=3)
def test_the_limits_are_settings_and_hold_on_every_path(
    owner: User, api_as: Any, web_as: Any, make_integration: Any
) -> None:
    others = [make_integration(owner, name=f"Tool {n}") for n in range(3)]
    response = api_as(owner).post("/api/v1/integrations/", {**BODY, "invokes": [o.pk for o in others]}, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["invokes"]
    page = web_as(owner).post(reverse("inventory:create"), form_data(owner.username, tags="a, b, c, d"))
    assert page.status_code == 400 and 'id="id_tags-error"' in page.content.decode()
    assert Integration.objects.count() == 3


@pytest.mark.parametrize(
    "field, value",
    [("business_owner", "own\x00er"), ("requested_scopes", ["crm:read\x00"]), ("technical_owner", "\x00")],
)
def test_a_nul_character_in_a_name_the_api_looks_up_is_a_422_naming_the_field(
    field: str, value: Any, owner: User, api_as: Any, catalog: Any
) -> None:
    # PostgreSQL refuses NUL in a query's text: without the check the lookup was a 500 there.
    client = api_as(owner)
    response = client.post("/api/v1/integrations/", {**BODY, field: value}, format="json")
    assert response.status_code == 422 and response["Content-Type"] == PROBLEM
    assert list(response.json()["errors"]) == [field]
    created = client.post("/api/v1/integrations/", BODY, format="json")
    assert created.status_code == 201
    patched = client.patch(f"/api/v1/integrations/{created.json()['id']}/", {field: value}, format="json")
    assert patched.status_code == 422 and list(patched.json()["errors"]) == [field]
