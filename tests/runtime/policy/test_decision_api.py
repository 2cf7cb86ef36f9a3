"""``/api/v1/decisions/``: gateways ask the policy decision point (one request or a batch of up
to 100) and get the enforced version's decision with its reasons; every item is checked before
any is decided; every decision is logged with who asked; readers list the log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import User
from governance.roles import Role
from inventory.models import Grant, Integration
from runtime import checks
from runtime.models import PolicyDecision, PolicyStatus, PolicyVersion
from runtime.policy import entities, log
from runtime.policy.source import text_sha256
from tests.runtime.exchange_support import build_world
from tests.runtime.issuer_support import TestIssuer
from tests.runtime.policy.support import PolicyWorld, build_policy_world

pytestmark = pytest.mark.django_db

URL = "/api/v1/decisions/"
PROBLEM = "application/problem+json"


@pytest.fixture
def gateway(make_user: Callable[..., User]) -> User:
    return make_user("crm-gateway", Role.RESOURCE_SERVER, is_service_account=True)


@pytest.fixture
def world(owner: User) -> PolicyWorld:
    return build_policy_world(owner)


@pytest.fixture
def bare(owner: User) -> Integration:
    """An active integration that holds no grant."""
    return Integration.objects.create(
        name="Bare bot", kind="agent", purpose="Idle.", business_owner=owner, status="active"
    )


@pytest.fixture
def asks(api_as: Callable[[User], APIClient], gateway: User) -> Callable[[Any], Any]:
    client = api_as(gateway)

    def post(body: Any) -> Any:
        return client.post(URL, body, format="json")

    return post


def ask(integration: Integration | int, scope: str = "crm:read", **context: Any) -> dict[str, Any]:
    trace = context.pop("trace", None)
    body: dict[str, Any] = {
        "principal": {"integration": integration if isinstance(integration, int) else integration.pk},
        "action": context.pop("action", "use_scope"),
        "resource": {"scope": scope},
        "context": {"task": "Answer ticket 42", "chain_depth": 1, **context},
    }
    if trace is not None:
        body["trace"] = trace
    return body


def _enforce(text: str, *, number: int = 2) -> PolicyVersion:
    """Make ``text`` the enforced version (the promotion workflow is tested elsewhere)."""
    PolicyVersion.objects.filter(status=PolicyStatus.ENFORCED).update(status=PolicyStatus.RETIRED)
    return PolicyVersion.objects.create(
        number=number, title="Test version", cedar_text=text, sha256=text_sha256(text), status=PolicyStatus.ENFORCED
    )


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    return body


# --- Deciding -------------------------------------------------------------------------------------


def test_a_gateway_with_an_api_token_is_allowed_a_held_scope_and_told_why(
    token_client: Callable[[User], APIClient], gateway: User, world: PolicyWorld
) -> None:
    response = token_client(gateway).post(URL, ask(world.integration, trace="req-1"), format="json")
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["decision"] == "allow" and answer["reasons"] == ["permit-within-active-grants"]
    assert answer["errors"] == [] and answer["policy_version"] == 1
    assert len(answer["decision_id"]) == 32 and "permit-within-active-grants" in answer["explanation"]
    assert "shadow" not in answer
    row = PolicyDecision.objects.get(decision_id=answer["decision_id"])
    assert (row.point, row.caller, row.trace, row.decision) == ("api", gateway, "req-1", "allow")
    assert row.integration == world.integration and row.resource == 'Scope::"crm:read"'
    assert row.action == "use_scope" and row.context["task"] == "Answer ticket 42"


def test_a_deep_chain_is_denied_with_the_forbid_that_denied_it(asks: Callable[[Any], Any], world: PolicyWorld) -> None:
    answer = asks(ask(world.integration, chain_depth=4)).json()
    assert answer["decision"] == "deny" and answer["reasons"] == ["forbid-deep-chains"]
    assert answer["policy_version"] == 1 and answer["errors"] == []


def test_a_scope_not_held_is_denied_by_default(
    asks: Callable[[Any], Any], world: PolicyWorld, bare: Integration
) -> None:
    answer = asks(ask(bare, "crm:read")).json()
    assert answer["decision"] == "deny" and answer["reasons"] == []
    assert "deny by default" in answer["explanation"]


def test_declared_caller_attributes_and_the_delegated_user_reach_the_policies(
    asks: Callable[[Any], Any], world: PolicyWorld, make_user: Callable[..., User]
) -> None:
    carol = make_user("carol", is_active=False)
    body = ask(
        world.integration,
        delegated_user="carol",
        attributes={"tool": "search", "source_ip_trusted": True, "request_count": 3},
    )
    answer = asks(body).json()
    assert answer["decision"] == "deny" and answer["reasons"] == ["forbid-delegation-for-deactivated-user"]
    row = PolicyDecision.objects.get(decision_id=answer["decision_id"])
    assert row.context["caller"] == {"tool": "search", "source_ip_trusted": True, "request_count": 3}
    assert row.context["delegated_user"] == {"__entity": {"type": "Person", "id": str(carol.pk)}}


def test_a_batch_is_answered_in_order_and_each_decision_logged_with_its_trace(
    asks: Callable[[Any], Any], world: PolicyWorld, bare: Integration, gateway: User
) -> None:
    body = {
        "requests": [
            ask(world.integration, "crm:write", trace="a"),
            ask(world.integration, chain_depth=5, trace="b"),
            ask(bare, action="exchange_token"),
        ]
    }
    response = asks(body)
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [(r["decision"], r["reasons"], r["policy_version"]) for r in results] == [
        ("allow", ["permit-within-active-grants"], 1),
        ("deny", ["forbid-deep-chains"], 1),
        ("deny", [], 1),
    ]
    rows = {row.decision_id: row for row in PolicyDecision.objects.filter(caller=gateway)}
    assert [rows[r["decision_id"]].trace for r in results] == ["a", "b", ""]
    assert rows[results[2]["decision_id"]].action == "exchange_token"


def test_a_shadow_version_is_logged_beside_the_decision_but_never_returned(
    asks: Callable[[Any], Any], world: PolicyWorld
) -> None:
    enforced = PolicyVersion.objects.get(status=PolicyStatus.ENFORCED)
    text = (
        enforced.cedar_text + '\n@id("forbid-all")\n@description("Nothing.")\nforbid (principal, action, resource);\n'
    )
    PolicyVersion.objects.create(
        number=2, title="Stricter", cedar_text=text, sha256=text_sha256(text), status=PolicyStatus.SHADOW
    )
    answer = asks(ask(world.integration)).json()
    assert (
        answer["decision"] == "allow"
        and answer["policy_version"] == 1
        and set(answer)
        == {
            "decision",
            "reasons",
            "errors",
            "policy_version",
            "decision_id",
            "explanation",
        }
    )
    row = PolicyDecision.objects.get(decision_id=answer["decision_id"])
    assert row.shadow["2"]["decision"] == "deny" and "forbid-all" in row.shadow["2"]["reasons"]


def test_an_enforced_policy_that_errs_answers_deny_with_its_errors(
    asks: Callable[[Any], Any], world: PolicyWorld
) -> None:
    # Cedar skips a forbid that errs, which would let the permit through: the point denies.
    _enforce(
        '@id("permit-all")\n@description("Everything.")\npermit (principal, action, resource);\n\n'
        '@id("forbid-overflowing")\n@description("Errs: the sum leaves the 64-bit range.")\n'
        "forbid (principal, action, resource) when { context.chain_depth + 9223372036854775807 > 0 };\n"
    )
    answer = asks(ask(world.integration)).json()
    assert answer["decision"] == "deny" and answer["errors"] and answer["policy_version"] == 2
    assert "could not be evaluated" in answer["explanation"]
    assert PolicyDecision.objects.get(decision_id=answer["decision_id"]).decision == "deny"


def test_no_enforced_version_answers_deny_without_a_version(asks: Callable[[Any], Any], world: PolicyWorld) -> None:
    PolicyVersion.objects.filter(status=PolicyStatus.ENFORCED).update(status=PolicyStatus.RETIRED)
    answer = asks(ask(world.integration)).json()
    assert answer["decision"] == "deny" and answer["policy_version"] is None and answer["errors"]


def test_a_failure_to_read_what_a_request_names_is_a_503_and_nothing_is_decided(
    asks: Callable[[Any], Any], world: PolicyWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("connection lost")

    # A database failing mid-read is simulated: the one failure a test cannot cause for real.
    monkeypatch.setattr(entities, "load_integrations", broken)
    body = _problem(asks({"requests": [ask(world.integration)] * 2}), 503)
    assert "denied" in body["detail"] and "allow" not in str(body)
    assert not PolicyDecision.objects.exists()


def test_a_failure_to_log_is_a_503_and_never_an_allow(
    asks: Callable[[Any], Any], world: PolicyWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("disk full")

    # The database refusing the write is simulated: the one failure a test cannot cause for real.
    monkeypatch.setattr(log, "append", broken)
    body = _problem(asks(ask(world.integration)), 503)
    assert "denied" in body["detail"] and "allow" not in str(body)
    assert not PolicyDecision.objects.exists()


# --- Workload tokens --------------------------------------------------------------------------------


def test_a_workload_token_names_the_integration_it_is_bound_to(
    api_as: Callable[[User], APIClient], gateway: User, test_issuer: TestIssuer, owner: User
) -> None:
    bound = build_world(test_issuer, owner)
    body = {
        "principal": {"workload_token": bound.workload_token()},
        "action": "use_scope",
        "resource": {"scope": "crm:write"},
        "context": {"task": "Update the ticket"},
    }
    response = api_as(gateway).post(URL, body, format="json")
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["decision"] == "allow" and answer["reasons"] == ["permit-within-active-grants"]
    row = PolicyDecision.objects.get(decision_id=answer["decision_id"])
    assert row.integration == bound.integration and bound.workload_token() not in str(row.context)


def test_a_workload_token_that_does_not_verify_is_refused_naming_it_and_nothing_is_decided(
    api_as: Callable[[User], APIClient], gateway: User, test_issuer: TestIssuer, owner: User
) -> None:
    bound = build_world(test_issuer, owner)
    for token in (bound.workload_token(subject="system:serviceaccount:ai:stranger"), "not.a.jwt"):
        body = {
            "principal": {"workload_token": token},
            "action": "use_scope",
            "resource": {"scope": "crm:read"},
            "context": {},
        }
        problem = _problem(api_as(gateway).post(URL, body, format="json"), 422)
        assert list(problem["errors"]) == ["principal.workload_token"]
    assert not PolicyDecision.objects.exists()


# --- Refusals: every bad field named, nothing decided ----------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"principal": {}}, "principal"),
        ({"principal": {"integration": 1, "workload_token": "a.b.c"}}, "principal"),
        ({"principal": {"integration": "7"}}, "principal.integration"),
        ({"principal": {"integration": 0}}, "principal.integration"),
        ({"principal": {"workload_token": 7}}, "principal.workload_token"),
        ({"principal": {"name": "bot"}}, "principal.name"),
        ({"principal": "bot"}, "principal"),
        ({"action": "delete"}, "action"),
        ({"resource": {"scope": 5}}, "resource.scope"),
        ({"resource": {"scope": "crm:read", "system": "crm"}}, "resource.system"),
        ({"context": {"chain_depth": 0}}, "context.chain_depth"),
        ({"context": {"chain_depth": 11}}, "context.chain_depth"),
        ({"context": {"chain_depth": "2"}}, "context.chain_depth"),
        ({"context": {"task": "x" * 201}}, "context.task"),
        ({"context": {"task": "two\nlines"}}, "context.task"),
        ({"context": {"delegated_user": ""}}, "context.delegated_user"),
        ({"context": {"chain_dept": 2}}, "context.chain_dept"),
        ({"context": {"attributes": {"colour": "red"}}}, "context.attributes.colour"),
        ({"context": {"attributes": {"tool": 5}}}, "context.attributes.tool"),
        ({"context": {"attributes": {"tool": "x" * 201}}}, "context.attributes.tool"),
        ({"context": {"attributes": {"source_ip_trusted": "yes"}}}, "context.attributes.source_ip_trusted"),
        ({"context": {"attributes": {"request_count": True}}}, "context.attributes.request_count"),
        ({"context": {"attributes": {"request_count": 2**63}}}, "context.attributes.request_count"),
        ({"context": {"attributes": []}}, "context.attributes"),
        ({"context": None}, "context"),
        ({"trace": "t" * 65}, "trace"),
        ({"verdict": "allow"}, "verdict"),
    ],
)
def test_a_malformed_request_is_a_400_naming_the_field(
    asks: Callable[[Any], Any], world: PolicyWorld, change: dict[str, Any], field: str
) -> None:
    body = {**ask(world.integration), **change}
    problem = _problem(asks(body), 400)
    assert field in problem["errors"], problem
    assert not PolicyDecision.objects.exists()


def test_a_missing_part_is_a_400_naming_it(asks: Callable[[Any], Any], world: PolicyWorld) -> None:
    body = ask(world.integration)
    del body["context"]
    assert "context" in _problem(asks(body), 400)["errors"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"principal": {"integration": 987654}}, "principal.integration", "Unknown integration."),
        ({"resource": {"scope": "crm:nothing"}}, "resource.scope", "Unknown scope."),
        ({"context": {"delegated_user": "ghost"}}, "context.delegated_user", "Unknown user."),
    ],
)
def test_naming_something_unknown_is_a_422_that_says_only_unknown(
    asks: Callable[[Any], Any], world: PolicyWorld, change: dict[str, Any], field: str, message: str
) -> None:
    problem = _problem(asks({**ask(world.integration), **change}), 422)
    assert problem["errors"] == {field: [message]}
    assert not PolicyDecision.objects.exists()


def test_one_bad_item_refuses_the_whole_batch_naming_its_position(
    asks: Callable[[Any], Any], world: PolicyWorld
) -> None:
    good = ask(world.integration)
    malformed = [good, good, good, {**good, "resource": {"scope": 5}}]
    assert list(_problem(asks({"requests": malformed}), 400)["errors"]) == ["requests.3.resource.scope"]
    unknown = [
        good,
        good,
        good,
        {**good, "resource": {"scope": "crm:nothing"}},
        {**good, "context": {"delegated_user": "x"}},
    ]
    assert _problem(asks({"requests": unknown}), 422)["errors"] == {
        "requests.3.resource.scope": ["Unknown scope."],
        "requests.4.context.delegated_user": ["Unknown user."],
    }
    assert not PolicyDecision.objects.exists()


def test_a_batch_holds_one_to_a_hundred_requests(asks: Callable[[Any], Any], world: PolicyWorld) -> None:
    good = ask(world.integration)
    assert "requests" in _problem(asks({"requests": [good] * 101}), 400)["errors"]
    assert "requests" in _problem(asks({"requests": []}), 400)["errors"]
    assert not PolicyDecision.objects.exists()
    assert len(asks({"requests": [good] * 100}).json()["results"]) == 100


def test_a_body_in_both_forms_at_once_is_refused(asks: Callable[[Any], Any], world: PolicyWorld) -> None:
    good = ask(world.integration)
    problem = _problem(asks({**good, "requests": [good]}), 400)
    assert {"principal", "action", "resource", "context"} <= set(problem["errors"])
    _problem(asks([good]), 400)
    assert not PolicyDecision.objects.exists()


# --- Who may ask, who may read ----------------------------------------------------------------------


def test_anonymous_callers_are_refused(api_client: APIClient, world: PolicyWorld) -> None:
    _problem(api_client.post(URL, ask(world.integration), format="json"), 401)
    _problem(api_client.get(URL), 401)
    assert not PolicyDecision.objects.exists()


@pytest.mark.parametrize("who", ["outsider", "owner", "reviewer", "auditor"])
def test_only_resource_servers_and_iam_admins_may_ask(
    api_as: Callable[[User], APIClient], world: PolicyWorld, request: pytest.FixtureRequest, who: str
) -> None:
    user = request.getfixturevalue(who)
    _problem(api_as(user).post(URL, ask(world.integration), format="json"), 403)
    assert not PolicyDecision.objects.exists()


def test_an_iam_admin_may_ask(api_as: Callable[[User], APIClient], iam_admin: User, world: PolicyWorld) -> None:
    response = api_as(iam_admin).post(URL, ask(world.integration), format="json")
    assert response.status_code == 200 and response.json()["decision"] == "allow"


@pytest.mark.parametrize("who", ["gateway", "outsider", "owner"])
def test_the_log_is_not_for_gateways_or_business_users(
    api_as: Callable[[User], APIClient],
    asks: Callable[[Any], Any],
    world: PolicyWorld,
    request: pytest.FixtureRequest,
    who: str,
) -> None:
    # A decision they may not see answers 404, as a decision that does not exist does.
    decision_id = asks(ask(world.integration)).json()["decision_id"]
    client = api_as(request.getfixturevalue(who))
    listing = client.get(URL)
    assert listing.status_code == 200 and listing.json()["results"] == []
    _problem(client.get(f"{URL}{decision_id}/"), 404)


# --- Reading the log --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["reviewer", "auditor", "iam_admin"])
def test_readers_see_a_decision_with_who_asked(
    api_as: Callable[[User], APIClient],
    asks: Callable[[Any], Any],
    world: PolicyWorld,
    request: pytest.FixtureRequest,
    who: str,
) -> None:
    decision_id = asks(ask(world.integration, trace="req-9")).json()["decision_id"]
    client = api_as(request.getfixturevalue(who))
    body = client.get(f"{URL}{decision_id}/").json()
    assert body["decision_id"] == decision_id and body["caller"] == "crm-gateway" and body["trace"] == "req-9"
    assert body["integration"] == world.integration.pk and body["integration_name"] == "Support agent"
    assert body["owner"] == "owner" and body["policy_version"] == 1 and body["point"] == "api"
    assert body["decision"] == "allow" and body["reasons"] == ["permit-within-active-grants"]
    assert [row["decision_id"] for row in client.get(URL).json()["results"]] == [decision_id]
    _problem(client.get(f"{URL}{'0' * 32}/"), 404)
    _problem(client.get(f"{URL}not-an-id/"), 404)


def test_the_log_filters_by_integration_decision_action_version_and_time(
    api_as: Callable[[User], APIClient],
    asks: Callable[[Any], Any],
    reviewer: User,
    world: PolicyWorld,
    bare: Integration,
) -> None:
    allowed = asks(ask(world.integration, trace="allowed")).json()["decision_id"]
    denied = asks(ask(bare, action="exchange_token", trace="denied")).json()["decision_id"]
    client = api_as(reviewer)

    def listed(**params: Any) -> list[str]:
        response = client.get(URL, params)
        assert response.status_code == 200, response.content
        return [row["decision_id"] for row in response.json()["results"]]

    assert listed(integration=world.integration.pk) == [allowed]
    assert listed(decision="deny") == [denied]
    assert listed(action="use_scope") == [allowed]
    assert listed(trace="denied") == [denied]
    assert set(listed(policy_version=1)) == {allowed, denied} and listed(policy_version=2) == []
    assert listed(caller="crm-gateway", point="api") == [denied, allowed]
    now = timezone.now()
    assert listed(since=(now + timedelta(minutes=1)).isoformat()) == []
    assert listed(until=(now + timedelta(minutes=1)).isoformat()) == [denied, allowed]
    for param, value in (("decision", "maybe"), ("policy_version", "x"), ("since", "yesterday")):
        assert param in _problem(client.get(URL, {param: value}), 400)["errors"]


def test_the_log_filters_as_the_decisions_page_does(
    api_as: Callable[[User], APIClient], asks: Callable[[Any], Any], auditor: User, world: PolicyWorld
) -> None:
    before = asks(ask(world.integration)).json()["decision_id"]
    enforced = PolicyVersion.objects.get(status=PolicyStatus.ENFORCED)
    text = (
        enforced.cedar_text + '\n@id("forbid-all")\n@description("Nothing.")\nforbid (principal, action, resource);\n'
    )
    PolicyVersion.objects.create(
        number=2, title="Stricter", cedar_text=text, sha256=text_sha256(text), status=PolicyStatus.SHADOW
    )
    disagreeing = asks(ask(world.integration)).json()["decision_id"]
    client = api_as(auditor)

    def listed(**params: Any) -> list[str]:
        response = client.get(URL, params)
        assert response.status_code == 200, response.content
        return [row["decision_id"] for row in response.json()["results"]]

    assert listed(shadow_disagrees="true") == [disagreeing]
    assert listed(shadow_disagrees="false") == [before]
    assert "shadow_disagrees" in _problem(client.get(URL, {"shadow_disagrees": "maybe"}), 400)["errors"]


def test_the_log_cannot_be_changed_through_the_api(
    api_as: Callable[[User], APIClient], asks: Callable[[Any], Any], iam_admin: User, world: PolicyWorld
) -> None:
    decision_id = asks(ask(world.integration)).json()["decision_id"]
    client = api_as(iam_admin)
    assert client.patch(f"{URL}{decision_id}/", {"decision": "deny"}, format="json").status_code == 405
    assert client.delete(f"{URL}{decision_id}/").status_code == 405


# --- Query counts -----------------------------------------------------------------------------------


def _integrations(owner: User, world: PolicyWorld, count: int) -> list[Integration]:
    made = []
    for number in range(count):
        integration = Integration.objects.create(
            name=f"Agent {number}", kind="agent", purpose="Works.", business_owner=owner, status="active"
        )
        Grant.objects.create(integration=integration, scope=world.scopes["read"], source_type="tests", source_id="1")
        made.append(integration)
    return made


def test_a_batch_reads_the_entity_data_in_a_fixed_number_of_queries(
    asks: Callable[[Any], Any], world: PolicyWorld, owner: User, make_user: Callable[..., User]
) -> None:
    agents = _integrations(owner, world, 10)
    people = [make_user(f"person{number}", Role.BUSINESS_USER) for number in range(10)]
    scopes = ["crm:read", "crm:write", "crm:admin"]

    def batch(size: int) -> dict[str, Any]:
        return {
            "requests": [
                ask(agents[n % 10], scopes[n % 3], delegated_user=people[n % 10].username, trace=f"t{n}")
                for n in range(size)
            ]
        }

    asks(batch(50))  # once-per-process caches (parsed versions, stored snapshots) warm
    counts = []
    for size in (1, 50):
        with CaptureQueriesContext(connection) as ctx:
            response = asks(batch(size))
        assert response.status_code == 200, response.content
        assert len(response.json()["results"]) == size
        sql = [query["sql"] for query in ctx.captured_queries]
        # The log's one bulk INSERT is cut in two by SQLite's bound on query parameters.
        inserts = [text for text in sql if text.startswith('INSERT INTO "runtime_policydecision"')]
        assert 1 <= len(inserts) <= 2
        counts.append(len(sql) - len(inserts))
    assert counts[0] == counts[1], counts
    assert PolicyDecision.objects.count() == 50 + 1 + 50


def test_the_log_lists_in_a_fixed_number_of_queries(
    api_as: Callable[[User], APIClient], asks: Callable[[Any], Any], auditor: User, world: PolicyWorld, owner: User
) -> None:
    agents = _integrations(owner, world, 5)
    asks({"requests": [ask(agents[n % 5], trace=f"t{n}") for n in range(60)]})
    client = api_as(auditor)
    client.get(URL, {"page_size": 1})
    counts = []
    for size in (1, 60):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(URL, {"page_size": size})
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts
    assert len(response.json()["results"]) == 60


# --- Schema -----------------------------------------------------------------------------------------


def test_the_schema_documents_both_forms_their_answers_and_the_log(
    api_as: Callable[[User], APIClient], iam_admin: User
) -> None:
    schema = api_as(iam_admin).get("/api/v1/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    asking = schema["paths"]["/api/v1/decisions/"]["post"]
    assert asking["requestBody"]["required"] is True
    request_refs = {b["$ref"].rsplit("/", 1)[1] for b in components["DecisionAskOrBatchRequest"]["oneOf"]}
    assert request_refs == {"DecisionAskRequest", "DecisionBatchRequest"}
    assert components["DecisionBatchRequest"]["properties"]["requests"]["maxItems"] == 100
    assert components["DecisionAskRequest"]["additionalProperties"] is False
    attributes = components["DecisionContextRequest"]["properties"]["attributes"]
    assert set(attributes["properties"]) == {"source_ip_trusted", "tool", "request_count"}
    assert attributes["additionalProperties"] is False
    answer_refs = {b["$ref"].rsplit("/", 1)[1] for b in components["DecisionAnswerOrBatch"]["oneOf"]}
    assert answer_refs == {"DecisionAnswer", "DecisionBatchAnswer"}
    assert {"200", "400", "401", "403", "422", "503"} <= set(asking["responses"])
    assert "application/problem+json" in asking["responses"]["503"]["content"]
    listing = schema["paths"]["/api/v1/decisions/"]["get"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert {"integration", "decision", "action", "policy_version", "since", "until", "page"} <= names
    assert "get" in schema["paths"]["/api/v1/decisions/{decision_id}/"]


def test_an_idempotency_key_never_replays_an_old_allow(
    token_client: Callable[[User], APIClient], gateway: User, world: PolicyWorld
) -> None:
    client = token_client(gateway)
    body = ask(world.integration)
    first = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="same-key")
    assert first.json()["decision"] == "allow"
    Integration.objects.filter(pk=world.integration.pk).update(status="suspended")
    again = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="same-key")
    assert again.json()["decision"] == "deny" and again.json()["decision_id"] != first.json()["decision_id"]


def test_asking_has_its_own_limit_beside_the_apis(
    token_client: Callable[[User], APIClient], gateway: User, world: PolicyWorld, settings: Any
) -> None:
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "token": "1/min", "machine_token": "2/min"}
    client = token_client(gateway)
    statuses = [client.post(URL, ask(world.integration), format="json").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    # The rest of the API keeps its own limit for the same token, untouched by the asking.
    assert [client.get("/api/v1/scopes/").status_code for _ in range(2)] == [200, 429]


# --- Settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "sent"),
    [
        ({"colour": "Integer"}, {"colour": 5}),
        (["tool"], {"tool": "search"}),
        ({"Tool": "String"}, {"Tool": "search"}),
        ({"in": "Bool"}, {"in": True}),
    ],
    ids=["unknown-type", "not-an-object", "upper-case", "cedar-reserved-word"],
)
def test_a_bad_caller_attribute_setting_is_a_check_error_and_a_503_never_a_500_or_an_allow(
    asks: Callable[[Any], Any], world: PolicyWorld, settings: Any, declared: Any, sent: dict[str, Any]
) -> None:
    settings.RUNTIME_POLICY_CONTEXT_ATTRIBUTES = declared
    assert [error.id for error in checks.policy_settings_check()] == ["runtime.E003"]
    for body in (ask(world.integration), ask(world.integration, attributes=sent)):
        problem = _problem(asks(body), 503)
        assert "denied" in problem["detail"]
    assert not PolicyDecision.objects.exists()


def test_the_shipped_policy_settings_pass_the_check_and_a_bad_time_zone_does_not(settings: Any) -> None:
    assert checks.policy_settings_check() == []
    settings.RUNTIME_POLICY_TIME_ZONE = "Mars/Olympus_Mons"
    settings.RUNTIME_REPLAY_DEFAULT_LIMIT = 0
    errors = checks.policy_settings_check()
    assert [error.id for error in errors] == ["runtime.E003", "runtime.E003"]
    assert "RUNTIME_POLICY_TIME_ZONE" in errors[0].msg and "RUNTIME_REPLAY_DEFAULT_LIMIT" in errors[1].msg
