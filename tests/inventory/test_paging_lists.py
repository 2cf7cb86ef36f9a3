"""The inventory's list filters rewritten for scale answer as before: the owner filter finds every
owner role by username, the grants' scope filter finds that scope's grants (newest first), each
in a fixed number of queries; counts below the bound are exact."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.inventory.conftest import grant_all


def test_owner_filter_finds_every_role_of_that_person(
    owner: Any, make_user: Any, reviewer: Any, make_integration: Any, api_as: Any, web_as: Any
) -> None:
    tech = make_user("tech-person")
    make_integration(owner, name="Owned outright")
    make_integration(owner, name="Built by tech", technical_owner=tech)
    make_integration(owner, name="Backed up by tech", backup_owner=tech)
    make_integration(owner, name="Not tech's")
    api = api_as(reviewer)
    body = api.get("/api/v1/integrations/", {"owner": "tech-person"}).json()
    assert [row["name"] for row in body["results"]] == ["Backed up by tech", "Built by tech"]
    assert body["count"] == 2 and body["count_is_estimate"] is False
    assert api.get("/api/v1/integrations/", {"owner": "nobody"}).json()["results"] == []
    page = web_as(reviewer).get("/inventory/", {"owner": "tech-person"}).content.decode()
    assert "Built by tech" in page and "Not tech" not in page


def test_grants_of_one_scope_newest_first_in_fixed_queries(
    owner: Any, reviewer: Any, make_integration: Any, api_as: Any, django_assert_num_queries: Any
) -> None:
    api = api_as(reviewer)

    def add(first: int, count: int) -> None:
        for index in range(first, first + count):
            scopes = ("msgraph:User.Read", "msgraph:Mail.Read") if index % 2 else ("msgraph:Mail.Read",)
            grant_all(make_integration(owner, name=f"Granted {index}", scopes=scopes), reviewer)

    add(0, 2)
    api.get("/api/v1/grants/", {"scope": "msgraph:User.Read"})  # warm caches (roles)
    with CaptureQueriesContext(connection) as few:
        assert len(api.get("/api/v1/grants/", {"scope": "msgraph:User.Read"}).json()["results"]) == 1
    add(2, 8)
    with django_assert_num_queries(len(few.captured_queries)):
        body = api.get("/api/v1/grants/", {"scope": "msgraph:User.Read"}).json()
    assert {row["scope"] for row in body["results"]} == {"msgraph:User.Read"} and body["count"] == 5
    granted = [row["granted_at"] for row in body["results"]]
    assert granted == sorted(granted, reverse=True)
    assert api.get("/api/v1/grants/", {"scope": "nope:none"}).json()["results"] == []
