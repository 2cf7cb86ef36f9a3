"""``/api/v1/policies/``: IAM admins, reviewers and auditors read every version; IAM admins write
drafts (a repository's CI through ``PUT …/draft``) and move them; Cedar errors come back in place;
anyone else sees nothing; the list runs a fixed number of queries."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from approvals.models import AccessRequest
from governance.models import User
from governance.roles import Role
from runtime.models import PolicyStatus, PolicyVersion
from runtime.policy.source import text_sha256
from runtime.services import policies
from tests.runtime.policy.versions_support import (
    TYPO_TEXT,
    VENDOR_TEST,
    replayed,
    shipped,
    stricter_tests,
    stricter_text,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/policies/"
Client = Callable[[User], APIClient]


def _detail(version: PolicyVersion) -> str:
    return f"{URL}{version.pk}/"


def _draft(author: User, **values: object) -> PolicyVersion:
    return policies.policy_draft_create(
        actor=author,
        title=str(values.get("title", "Vendors get no admin scope")),
        cedar_text=str(values.get("cedar_text", stricter_text())),
        tests=stricter_tests(),
    )


def _body(**values: object) -> dict[str, object]:
    return {"title": "Vendors get no admin scope", "cedar_text": stricter_text(), "tests": stricter_tests(), **values}


def test_anonymous_callers_are_refused(api_client: APIClient) -> None:
    for response in (api_client.get(URL), api_client.get(_detail(shipped())), api_client.post(URL, _body())):
        assert response.status_code == 401
        assert response["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("role", [Role.IAM_ADMIN, Role.REVIEWER, Role.AUDITOR])
def test_admins_reviewers_and_auditors_read_every_version(
    api_as: Client, make_user: Callable[..., User], iam_admin: User, role: str
) -> None:
    draft = _draft(iam_admin)
    client = api_as(make_user("reader", role))
    rows = client.get(URL).json()["results"]
    assert [row["number"] for row in rows] == [2, 1]
    assert rows[0]["created_by"] == "admin" and rows[1]["status"] == "enforced" and rows[1]["created_by"] is None
    detail = client.get(_detail(draft)).json()
    assert detail["cedar_text"] == stricter_text() and detail["sha256"] == draft.sha256
    assert detail["tests"] == stricter_tests() and all(result["passed"] for result in detail["test_results"])
    assert detail["validation_errors"] == [] and detail["replays"] == []
    assert any("replay" in blocker for blocker in detail["promotion_blockers"])


def test_business_users_see_no_version(api_as: Client, owner: User) -> None:
    client = api_as(owner)
    assert client.get(URL).json()["results"] == []
    response = client.get(_detail(shipped()))
    assert response.status_code == 404 and response["Content-Type"].startswith("application/problem+json")
    for action in ("shadow", "retire", "run-tests", "request-enforcement"):
        assert client.post(f"{_detail(shipped())}{action}/", {}).status_code == 404
    assert client.put(f"{_detail(shipped())}draft", _body()).status_code == 404
    assert client.post(URL, _body()).status_code == 403
    assert client.post(f"{URL}rollback/", {}).status_code == 403
    assert PolicyVersion.objects.count() == 1


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.AUDITOR])
def test_reviewers_and_auditors_read_but_cannot_write(
    api_as: Client, make_user: Callable[..., User], iam_admin: User, role: str
) -> None:
    draft = _draft(iam_admin)
    replayed(draft, iam_admin)
    client = api_as(make_user("reader", role))
    assert client.post(URL, _body()).status_code == 403
    assert client.put(f"{_detail(draft)}draft", _body(title="Mine now")).status_code == 403
    for action in ("shadow", "retire", "run-tests", "request-enforcement"):
        response = client.post(f"{_detail(draft)}{action}/", {})
        assert response.status_code == 403, action
    assert client.post(f"{URL}rollback/", {}).status_code == 403
    draft.refresh_from_db()
    assert draft.status == PolicyStatus.DRAFT and draft.title == "Vendors get no admin scope"
    assert PolicyVersion.objects.count() == 2 and not AccessRequest.objects.exists()


def test_an_admin_writes_a_draft(api_as: Client, iam_admin: User) -> None:
    response = api_as(iam_admin).post(URL, _body(source_ref="policies@4f1c2e9"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"] == 2 and body["status"] == "draft" and body["source"] == "api"
    assert body["source_ref"] == "policies@4f1c2e9" and body["tests_passed"] is True
    assert body["sha256"] == text_sha256(stricter_text())


def test_a_typo_answers_422_with_its_line_and_column(api_as: Client, iam_admin: User) -> None:
    response = api_as(iam_admin).post(URL, _body(cedar_text=TYPO_TEXT, tests=[]))
    assert response.status_code == 422 and response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    [error] = body["policy_errors"]
    assert (error["line"], error["column"], error["policy_id"]) == (4, 18, "permit-held")
    assert "statuss" in error["message"]
    assert body["errors"]["cedar_text"][0].startswith("line 4, column 18 (policy permit-held)")
    assert PolicyVersion.objects.count() == 1


def _deep_brackets() -> str:
    return (
        '@id("deep")\n@description("Brackets nested far too deep.")\n'
        "forbid (principal, action, resource)\nwhen { " + "(" * 5000 + "true" + ")" * 5000 + " };\n"
    )


def _long_chain() -> str:
    codes = " || ".join(f'resource.code == "crm:{index}"' for index in range(60))
    return f'\n@id("forbid-listed")\n@description("Frozen.")\nforbid (principal, action, resource is Scope)\nwhen {{ {codes} }};\n'


ODD_BODIES: dict[str, Callable[[], object]] = {
    "tests not a list": lambda: _body(tests="all of them"),
    "a test that is a number": lambda: _body(tests=[1]),
    "an override that is a list": lambda: _body(tests=[{**VENDOR_TEST, "integration": ["Acme"]}]),
    "text that is a number": lambda: _body(cedar_text=5),
    "text past the size limit": lambda: _body(cedar_text=stricter_text() + "// padding\n" * 20_000),
    "brackets nested too deep": lambda: _body(cedar_text=_deep_brackets()),
    "a chain too deep to load": lambda: _body(cedar_text=shipped().cedar_text + _long_chain(), tests=[]),
    "a body that is a list": lambda: [_body()],
}


@pytest.mark.parametrize("odd", list(ODD_BODIES))
def test_odd_input_is_refused_by_name_and_creates_or_changes_nothing(api_as: Client, iam_admin: User, odd: str) -> None:
    client = api_as(iam_admin)
    draft = _draft(iam_admin)
    body = ODD_BODIES[odd]()
    for response in (client.post(URL, body, format="json"), client.put(f"{_detail(draft)}draft", body, format="json")):
        assert response.status_code in (400, 422), (odd, response.status_code, response.content[:300])
        assert response["Content-Type"].startswith("application/problem+json")
    draft.refresh_from_db()
    assert PolicyVersion.objects.count() == 2 and draft.cedar_text == stricter_text()


def test_text_nested_too_deep_is_refused_with_its_place(api_as: Client, iam_admin: User) -> None:
    response = api_as(iam_admin).post(URL, _body(cedar_text=_deep_brackets()), format="json")
    assert response.status_code == 422
    [error] = response.json()["policy_errors"]
    assert (error["line"], error["column"]) == (4, len("when { ") + policies.MAX_NESTING)


def test_a_document_nested_too_deep_is_a_400(api_as: Client, iam_admin: User) -> None:
    raw = '{"title": "Deep", "cedar_text": "x", "tests": ' + "[" * 5000 + "]" * 5000 + "}"
    response = api_as(iam_admin).post(URL, raw, content_type="application/json")
    assert response.status_code == 400 and PolicyVersion.objects.count() == 1


def test_crlf_text_is_stored_with_newlines_and_the_repository_hash(api_as: Client, iam_admin: User) -> None:
    response = api_as(iam_admin).post(URL, _body(cedar_text=stricter_text().replace("\n", "\r\n")), format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["sha256"] == text_sha256(stricter_text()) and "\r" not in body["cedar_text"]


def test_a_malformed_test_answers_422_naming_its_field(api_as: Client, iam_admin: User) -> None:
    tests = [*stricter_tests()[:2], {**VENDOR_TEST, "scope": {"acess": "admin"}}]
    response = api_as(iam_admin).post(URL, _body(tests=tests))
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["tests[2].scope.acess"]


def test_based_on_must_be_a_version(api_as: Client, iam_admin: User) -> None:
    response = api_as(iam_admin).post(URL, _body(based_on=999))
    assert response.status_code == 422 and "based_on" in response.json()["errors"]
    response = api_as(iam_admin).post(URL, {**_body(based_on=shipped().pk), "tests": shipped().tests})
    assert response.status_code == 201 and response.json()["based_on"] == shipped().pk


def test_ci_replaces_a_draft_with_its_commit(api_as: Client, make_user: Callable[..., User], iam_admin: User) -> None:
    draft = _draft(iam_admin, cedar_text=shipped().cedar_text)
    ci = make_user("policy-ci", Role.IAM_ADMIN, is_service_account=True, manager=iam_admin)
    text = stricter_text() + "\n// from git\n"
    response = api_as(ci).put(f"{_detail(draft)}draft", _body(cedar_text=text, source_ref="policies@9b0e1d2"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["sha256"] == text_sha256(text) and body["source"] == "api"
    assert body["source_ref"] == "policies@9b0e1d2" and body["edited_by"] == "policy-ci"
    assert body["cedar_text"] == text and body["tests_passed"] is True


def test_only_a_draft_is_replaced(api_as: Client, iam_admin: User) -> None:
    response = api_as(iam_admin).put(f"{_detail(shipped())}draft", _body())
    assert response.status_code == 409
    assert shipped().cedar_text != stricter_text()


def test_an_invalid_replacement_changes_nothing(api_as: Client, iam_admin: User) -> None:
    draft = _draft(iam_admin)
    response = api_as(iam_admin).put(f"{_detail(draft)}draft", _body(cedar_text=TYPO_TEXT))
    assert response.status_code == 422 and response.json()["policy_errors"][0]["line"] == 4
    draft.refresh_from_db()
    assert draft.cedar_text == stricter_text()


def test_shadow_retire_and_run_tests(api_as: Client, iam_admin: User) -> None:
    client = api_as(iam_admin)
    failing = _draft(iam_admin, cedar_text=shipped().cedar_text)
    assert client.post(f"{_detail(failing)}shadow/").status_code == 409
    tested = client.post(f"{_detail(failing)}run-tests/")
    assert tested.status_code == 200 and tested.json()["tests_passed"] is False
    passing = _draft(iam_admin)
    shadowed = client.post(f"{_detail(passing)}shadow/")
    assert shadowed.status_code == 200 and shadowed.json()["status"] == "shadow"
    retired = client.post(f"{_detail(passing)}retire/")
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert client.post(f"{_detail(shipped())}retire/").status_code == 409


def test_asking_for_enforcement_needs_a_fresh_replay(api_as: Client, iam_admin: User) -> None:
    client = api_as(iam_admin)
    draft = _draft(iam_admin)
    blocked = client.post(f"{_detail(draft)}request-enforcement/", {"justification": "Vendors out."})
    assert blocked.status_code == 409
    assert any("replay" in blocker for blocker in blocked.json()["errors"]["promotion_blockers"])
    replay = replayed(draft, iam_admin)
    asked = client.post(f"{_detail(draft)}request-enforcement/", {"justification": "Vendors out."})
    assert asked.status_code == 201, asked.content
    body = asked.json()
    req = AccessRequest.objects.get()
    assert body["change_request"] == req.pk and body["change_request_status"] == "in_review"
    assert [row["id"] for row in body["replays"]] == [replay.pk] and body["replays"][0]["fresh"] is True
    assert body["promotion_blockers"] == [f"Request #{req.pk} to enforce it is still open."]


def test_rollback_needs_a_previous_version(api_as: Client, iam_admin: User) -> None:
    response = api_as(iam_admin).post(f"{URL}rollback/", {"justification": "Back."})
    assert response.status_code == 409


def test_the_list_runs_the_same_queries_for_one_row_and_many(
    api_as: Client, make_user: Callable[..., User], iam_admin: User
) -> None:
    client = api_as(make_user("reader", Role.REVIEWER))
    client.get(URL)  # once-per-process caches warm
    counts = []
    for size in (1, 6):
        while PolicyVersion.objects.count() < size:
            author = make_user(None, Role.IAM_ADMIN)
            draft = _draft(author, title=f"Draft by {author.username}")
            replayed(draft, author)
            policies.policy_enforcement_request(actor=iam_admin, version=draft)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(URL)
        assert response.status_code == 200 and len(response.json()["results"]) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_list_filters_by_status(api_as: Client, iam_admin: User) -> None:
    _draft(iam_admin)
    rows = api_as(iam_admin).get(URL, {"status": "enforced"}).json()["results"]
    assert [row["number"] for row in rows] == [1]
    assert api_as(iam_admin).get(URL, {"status": "bogus"}).status_code == 400


def test_the_schema_documents_the_endpoints(api_client: APIClient, iam_admin: User) -> None:
    api_client.force_authenticate(user=iam_admin)
    paths = api_client.get("/api/v1/schema/", {"format": "json"}).json()["paths"]
    assert "put" in paths["/api/v1/policies/{id}/draft"]
    for action in ("shadow", "retire", "run-tests", "request-enforcement"):
        assert "post" in paths[f"/api/v1/policies/{{id}}/{action}/"]
    assert "post" in paths["/api/v1/policies/rollback/"]
    rejected = paths["/api/v1/policies/"]["post"]["responses"]["422"]["content"]["application/problem+json"]
    assert "policy_errors" in rejected["schema"]["properties"]
