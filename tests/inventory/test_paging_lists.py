"""The inventory's list filters rewritten for scale answer as before: the owner filter finds every
owner role by username, the grants' scope filter finds that scope's grants (newest first), each
in a fixed number of queries; counts below the bound are exact."""

from __future__ import annotations

import hashlib
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


def _searched(api: Any, words: str) -> tuple[list[str], str]:
    """The names the API lists for ``words`` and the SQL of the query that read its page."""
    with CaptureQueriesContext(connection) as queries:
        body = api.get("/api/v1/integrations/", {"q": words}).json()
    page_sql = next(
        query["sql"]
        for query in queries.captured_queries
        if "search_text" in query["sql"] and "ORDER BY" in query["sql"] and "EXPLAIN" not in query["sql"]
    )
    return [row["name"] for row in body["results"]], page_sql


def test_a_word_search_lists_the_same_page_sorted_or_walked(
    owner: Any, reviewer: Any, make_integration: Any, api_as: Any, monkeypatch: Any
) -> None:
    from inventory import filters

    for name in ("Zeta invoice", "Alpha invoice", "Mid invoice", "Alpha mail"):
        make_integration(owner, name=name)
    api = api_as(reviewer)
    expected = ["Alpha invoice", "Mid invoice", "Zeta invoice"]
    # Few matches expected: found by the trigram index, then sorted (an expression the name
    # index cannot give); many: the name index walked, in its own order.
    monkeypatch.setattr(filters, "planner_rows", lambda queryset: filters.SEARCH_SORTED_UP_TO)
    names, sorted_sql = _searched(api, "invoice")
    assert names == expected
    monkeypatch.setattr(filters, "planner_rows", lambda queryset: filters.SEARCH_SORTED_UP_TO + 1)
    names, walked_sql = _searched(api, "invoice")
    assert names == expected
    if connection.vendor == "postgresql":
        assert "COALESCE" in sorted_sql.split("ORDER BY")[1]
        assert "COALESCE" not in walked_sql.split("ORDER BY")[1]
    else:
        assert sorted_sql == walked_sql


def test_an_integration_with_a_long_purpose_registers_and_is_found(
    owner: Any, reviewer: Any, make_integration: Any, api_as: Any
) -> None:
    # The searched text (name, purpose, vendor...) can be long: no index may carry it whole,
    # or PostgreSQL refuses the row (a btree entry holds at most about 2.7 kB).
    # Words that do not compress away (a long run of one letter would fit once compressed).
    words = " ".join(hashlib.sha256(str(index).encode()).hexdigest() for index in range(200))
    purpose = f"Monthly close reconciliation. {words}"
    assert len(purpose) > 12_000
    make_integration(owner, name="Long-winded invoice bot", purpose=purpose)
    names, _ = _searched(api_as(reviewer), "reconciliation")
    assert names == ["Long-winded invoice bot"]
