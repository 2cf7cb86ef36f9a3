"""The control catalog over the API: ``/api/v1/controls/`` and ``/api/v1/frameworks/`` read the
same as the pages (IAM admins, reviewers, auditors; anyone else a 404 problem, an anonymous call a
401), gaps first, filters refused by name when malformed, a fixed number of queries however much
data, and every operation in the published schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from governance.controls import catalog, services
from governance.models import User
from tests.controls.test_pages import (
    MET,
    NOT_APPLICABLE,
    NOT_MET,
    PARTLY,
    READERS,
    RECORDS_URL,
    Catalog,
    grow,
    superuser,
    test_catalog,
)

pytestmark = pytest.mark.django_db

__all__ = ["superuser", "test_catalog"]  # fixtures shared with the pages' tests

CONTROLS = "/api/v1/controls/"
FRAMEWORKS = "/api/v1/frameworks/"
ENDPOINTS = [CONTROLS, f"{CONTROLS}{MET}/", FRAMEWORKS, f"{FRAMEWORKS}nist-ai-rmf-1.0/"]


@pytest.mark.parametrize("role", READERS)
def test_iam_admins_reviewers_auditors_and_superusers_read_every_endpoint(
    role: str, request: pytest.FixtureRequest, api_as: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    client = api_as(request.getfixturevalue(role))
    for url in ENDPOINTS:
        assert client.get(url).status_code == 200, url


def test_a_business_user_gets_a_404_problem_on_every_endpoint(
    outsider: User, api_as: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    client = api_as(outsider)
    for url in ENDPOINTS:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/problem+json"
    assert sum(test_catalog.runs.values()) == 0


def test_an_anonymous_call_is_a_401(api_client: APIClient, test_catalog: Catalog) -> None:
    for url in ENDPOINTS:
        response = api_client.get(url)
        assert response.status_code == 401 and response["WWW-Authenticate"] == "Token", url


def test_an_api_token_reads_the_catalog(
    auditor: User, token_client: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    assert token_client(auditor).get(CONTROLS).status_code == 200


def test_the_endpoints_are_read_only(
    iam_admin: User, api_as: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    client = api_as(iam_admin)
    assert client.post(CONTROLS, {}).status_code == 405
    assert client.delete(f"{FRAMEWORKS}csa-maestro/").status_code == 405


def test_the_control_list_gives_each_control_its_figures_and_items_gaps_first(
    reviewer: User, api_as: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    body = api_as(reviewer).get(CONTROLS).json()
    assert body["count"] == 4
    assert [row["id"] for row in body["results"]] == [NOT_MET, PARTLY, MET, NOT_APPLICABLE]
    partly = body["results"][1]
    assert partly["status"] == "partly" and partly["app"] == "inventory" and partly["title"] == f"Control {PARTLY}"
    share = partly["figures"][0]
    assert share == {
        "key": f"{PARTLY}.share",
        "label": f"Share for {PARTLY}",
        "value": 95.0,
        "unit": "%",
        "better": "higher",
        "threshold": {"met": 98.0, "partly": 90.0, "is_default": True},
        "status": "partly",
        "detail": share["detail"],
        "records_url": f"http://testserver{RECORDS_URL}",
    }
    assert share["detail"].startswith("Measured over")
    items = {(item["framework"], item["code"]) for item in partly["mapped_items"]}
    assert ("owasp-agentic-2026", "ASI03") in items and ("owasp-llm-2026", "LLM03:2026") in items
    asi03 = next(item for item in partly["mapped_items"] if item["code"] == "ASI03")
    assert asi03["title"] == "Identity and Privilege Abuse" and asi03["builtin"] is True
    na = body["results"][3]["figures"][0]
    assert na["value"] is None and na["status"] == "not_applicable" and na["records_url"] == ""


def test_one_control_shows_the_organisation_threshold(
    iam_admin: User, api_as: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    services.threshold_set(actor=iam_admin, figure_key=f"{PARTLY}.share", met=94, partly=80, reason="Agreed")
    body = api_as(iam_admin).get(f"{CONTROLS}{PARTLY}/").json()
    assert body["status"] == "met"
    assert body["figures"][0]["threshold"] == {"met": 94.0, "partly": 80.0, "is_default": False}


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ({"status": "gaps"}, [NOT_MET, PARTLY]),
        ({"status": "not_met"}, [NOT_MET]),
        ({"app": "governance"}, [NOT_APPLICABLE]),
        ({"app": "runtime"}, []),
        ({"status": "", "app": ""}, [NOT_MET, PARTLY, MET, NOT_APPLICABLE]),
    ],
)
def test_the_control_list_filters_by_status_and_app(
    query: dict[str, str], ids: list[str], auditor: User, api_as: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    body = api_as(auditor).get(CONTROLS, query).json()
    assert [row["id"] for row in body["results"]] == ids


@pytest.mark.parametrize(("name", "value"), [("status", "bogus"), ("app", "Inventory"), ("app", "inventory\n")])
def test_a_malformed_filter_is_a_400_naming_it(
    name: str, value: str, auditor: User, api_as: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    response = api_as(auditor).get(CONTROLS, {name: value})
    assert response.status_code == 400 and list(response.json()["errors"]) == [name]
    response = api_as(auditor).get(f"{FRAMEWORKS}csa-maestro/", {"status": "bogus"})
    assert response.status_code == 400 and list(response.json()["errors"]) == ["status"]


def test_an_unknown_control_or_framework_is_a_404_problem(
    auditor: User, api_as: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    for url in (f"{CONTROLS}no-such-control/", f"{FRAMEWORKS}no-such-framework/"):
        response = api_as(auditor).get(url)
        assert response.status_code == 404 and response.json()["status"] == 404


def test_the_framework_list_gives_every_framework_its_source_and_coverage(
    iam_admin: User, api_as: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    grow(iam_admin, "a", people=1)
    body = api_as(iam_admin).get(FRAMEWORKS).json()
    rows = {row["slug"]: row for row in body["results"]}
    assert list(rows) == [info.slug for info in catalog.frameworks()]
    for info in catalog.builtin_frameworks():
        row = rows[info.slug]
        assert (row["name"], row["source_url"], row["version"], row["builtin"]) == (
            info.name,
            info.source_url,
            info.version,
            True,
        )
        assert row["item_count"] == len(info.items) == sum(row["coverage"].values())
    own = rows["internal-a"]
    assert own["builtin"] is False and own["item_count"] == 5 and own["coverage"]["met"] == 5


def test_a_framework_lists_every_item_gaps_first_with_its_controls_and_evidence(
    reviewer: User, api_as: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    body = api_as(reviewer).get(f"{FRAMEWORKS}owasp-nhi-2025/").json()
    info = catalog.framework("owasp-nhi-2025")
    assert info is not None and body["source_url"] == info.source_url
    assert sorted(item["code"] for item in body["items"]) == sorted(item.code for item in info.items)
    rank = {"not_met": 0, "no_control": 1, "partly": 2, "not_applicable": 3, "met": 4}
    statuses = [item["status"] for item in body["items"]]
    assert statuses == sorted(statuses, key=rank.__getitem__)
    nhi1 = next(item for item in body["items"] if item["code"] == "NHI1:2025")
    assert nhi1["status"] == "partly" and nhi1["title"] == "Improper Offboarding"
    assert {control["id"]: control["status"] for control in nhi1["controls"]} == {MET: "met", NOT_MET: "not_met"}
    assert nhi1["controls"][0]["figures"][0]["key"].endswith(".share")


def test_a_framework_filters_its_items_by_status(
    reviewer: User, api_as: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    body = api_as(reviewer).get(f"{FRAMEWORKS}nist-csf-2.0/", {"status": "no_control"}).json()
    assert body["items"] and {item["status"] for item in body["items"]} == {"no_control"}
    assert body["item_count"] > len(body["items"]), "the count stays the framework's"
    gaps = api_as(reviewer).get(f"{FRAMEWORKS}nist-csf-2.0/", {"status": "gaps"}).json()["items"]
    assert {item["status"] for item in gaps} <= {"not_met", "partly", "no_control"}


def _queries(client: APIClient, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_each_endpoint_runs_a_fixed_number_of_queries_however_much_data(
    iam_admin: User, auditor: User, api_as: Callable[[User], APIClient], test_catalog: Catalog
) -> None:
    client = api_as(auditor)
    grow(iam_admin, "small", people=1)
    client.get(FRAMEWORKS)  # the caller's roles are read once and kept on the user
    small = {url: _queries(client, url) for url in ENDPOINTS}
    grow(iam_admin, "large", people=60)
    large = {url: _queries(client, url) for url in ENDPOINTS}
    assert small == large
    # The list: the thresholds, the organisation's frameworks and their items, the mappings, and
    # one query per control.
    assert small[CONTROLS] == 4 + 4


@pytest.fixture
def schema(api_as: Callable[[User], APIClient], auditor: User) -> dict[str, Any]:
    response = api_as(auditor).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return dict(response.json())


def test_the_schema_publishes_the_catalog_operations_with_named_status_enums(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    for path in ("/api/v1/controls/", "/api/v1/controls/{id}/", "/api/v1/frameworks/", "/api/v1/frameworks/{slug}/"):
        assert set(paths[path]) == {"get"}, path
        assert {"200", "401", "404"} <= set(paths[path]["get"]["responses"]), path
    components = schema["components"]["schemas"]
    assert components["ControlStatusEnum"]["enum"] == ["met", "partly", "not_met", "not_applicable"]
    assert set(components["FrameworkItemStatusEnum"]["enum"]) == {
        "met",
        "partly",
        "not_met",
        "not_applicable",
        "no_control",
    }
    figure = components["ControlFigure"]["properties"]
    assert figure["status"] == {"$ref": "#/components/schemas/ControlStatusEnum"}
    assert figure["value"]["nullable"] is True
