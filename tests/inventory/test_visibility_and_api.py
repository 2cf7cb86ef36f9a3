"""Visibility (owners / everyone else 404), edit rights (403) and the API contract."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from governance.roles import Role
from inventory.models import Integration

pytestmark = pytest.mark.django_db

ACTIONS = ["suspend", "submit", "reactivate", "retire", "transfer"]


def test_second_business_user_gets_404_on_page_and_api(
    owner: Any, outsider: Any, make_integration: Any, web_as: Any, api_as: Any
) -> None:
    integ = make_integration(owner)
    assert web_as(outsider).get(reverse("inventory:detail", args=[integ.pk])).status_code == 404
    assert web_as(outsider).get(reverse("inventory:edit", args=[integ.pk])).status_code == 404
    api = api_as(outsider)
    assert api.get(f"/api/v1/integrations/{integ.pk}/").status_code == 404
    assert api.get(f"/api/v1/integrations/{integ.pk}/history/").status_code == 404
    assert api.patch(f"/api/v1/integrations/{integ.pk}/", {"name": "x"}, format="json").status_code == 404
    listed = api.get("/api/v1/integrations/").json()
    assert listed["count"] == 0


@pytest.mark.parametrize("action", ACTIONS)
def test_outsider_gets_404_on_every_action_endpoint(
    action: str, owner: Any, outsider: Any, make_integration: Any, api_as: Any, web_as: Any
) -> None:
    integ = make_integration(owner)
    response = api_as(outsider).post(
        f"/api/v1/integrations/{integ.pk}/{action}/", {"reason": "x", "to_user": "outsider"}, format="json"
    )
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")
    web_name = {"transfer": "transfer-propose"}.get(action, action)
    assert web_as(outsider).post(reverse(f"inventory:{web_name}", args=[integ.pk]), {"reason": "x"}).status_code == 404
    integ.refresh_from_db()
    assert integ.status == "draft"


def test_owners_of_every_kind_see_it(owner: Any, make_user: Any, make_integration: Any, api_as: Any) -> None:
    tech = make_user("tech", Role.BUSINESS_USER)
    backup = make_user("backup", Role.BUSINESS_USER)
    integ = make_integration(owner, technical_owner=tech, backup_owner=backup)
    for person in (owner, tech, backup):
        assert api_as(person).get(f"/api/v1/integrations/{integ.pk}/").status_code == 200


def test_reviewer_sees_but_cannot_edit(
    owner: Any, reviewer: Any, make_integration: Any, api_as: Any, web_as: Any
) -> None:
    integ = make_integration(owner)
    api = api_as(reviewer)
    assert api.get(f"/api/v1/integrations/{integ.pk}/").status_code == 200
    assert api.patch(f"/api/v1/integrations/{integ.pk}/", {"name": "Renamed"}, format="json").status_code == 403
    assert api.post(f"/api/v1/integrations/{integ.pk}/suspend/", {"reason": "x"}, format="json").status_code == 403
    assert web_as(reviewer).get(reverse("inventory:edit", args=[integ.pk])).status_code == 403
    integ.refresh_from_db()
    assert integ.name == "Notes bot"


def test_auditor_reads_everything_and_changes_nothing(
    owner: Any, auditor: Any, make_integration: Any, api_as: Any, web_as: Any, catalog: Any
) -> None:
    integ = make_integration(owner)
    api = api_as(auditor)
    assert api.get(f"/api/v1/integrations/{integ.pk}/").status_code == 200
    assert api.get(f"/api/v1/integrations/{integ.pk}/history/").status_code == 200
    assert api.patch(f"/api/v1/integrations/{integ.pk}/", {"name": "x"}, format="json").status_code == 403
    assert (
        api.post("/api/v1/integrations/", {"name": "x", "kind": "agent", "purpose": "p"}, format="json").status_code
        == 403
    )
    for action in ACTIONS:
        assert api.post(f"/api/v1/integrations/{integ.pk}/{action}/", {"reason": "x"}, format="json").status_code == 403
    assert web_as(auditor).post(reverse("inventory:suspend", args=[integ.pk]), {"reason": "x"}).status_code == 403
    assert Integration.objects.get(pk=integ.pk).name == "Notes bot"


def test_api_register_and_submit_shows_pending_with_risk_factors(owner: Any, api_as: Any, catalog: Any) -> None:
    body = {
        "name": "Mail helper",
        "kind": "agent",
        "purpose": "Answers mail.",
        "vendor": "Acme AI",
        "data_classifications": ["confidential"],
        "acts_for_users": True,
        "autonomy": "human_in_loop",
        "requested_scopes": ["msgraph:Mail.Read"],
        "credentials": [{"type": "oauth_client", "identifier": "client-1234"}],
        "ticket_ref": "CHG-1",
        "tags": ["sales"],
        "submit": True,
    }
    response = api_as(owner).post("/api/v1/integrations/", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "pending"
    assert data["business_owner"] == "owner"
    assert data["requested_scopes"] == ["msgraph:Mail.Read"]
    codes = {f["code"] for f in data["risk_factors"]}
    assert {"delegated_user_context", "third_party_vendor", "confidential_data", "shared_secrets_only"} <= codes
    assert data["risk_score"] == sum(f["points"] for f in data["risk_factors"])
    for key in (
        "id",
        "credentials",
        "invokes",
        "risk_tier",
        "created_at",
        "updated_at",
        "workload_identity",
        "environment",
    ):
        assert key in data


def test_api_refuses_secret_looking_credential_naming_the_field(owner: Any, api_as: Any, catalog: Any) -> None:
    body = {
        "name": "Leaky",
        "kind": "agent",
        "purpose": "p",
        "credentials": [{"type": "api_key", "identifier": "sk-proj-abcdefghijklmnop1234567890"}],
    }
    response = api_as(owner).post("/api/v1/integrations/", body, format="json")
    # Well-formed (the schema cannot tell a secret from an identifier): a 422, not a 400.
    assert response.status_code == 422
    problem = response.json()
    assert "credentials.0.identifier" in problem["errors"]
    assert "secret" in problem["errors"]["credentials.0.identifier"][0]
    assert not Integration.objects.filter(name="Leaky").exists()


def test_api_validation_errors_name_the_field(owner: Any, api_as: Any, catalog: Any) -> None:
    response = api_as(owner).post(
        "/api/v1/integrations/", {"kind": "robot", "purpose": "p", "requested_scopes": ["nope:x"]}, format="json"
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {"name", "kind", "requested_scopes"} <= set(errors)


def test_scopes_endpoint_filters(owner: Any, api_as: Any, catalog: Any) -> None:
    api = api_as(owner)
    data = api.get("/api/v1/scopes/", {"system": "hrdb"}).json()
    assert {s["code"] for s in data["results"]} == {"hrdb:compensation.read", "hrdb:admin"}
    data = api.get("/api/v1/scopes/", {"access": "write"}).json()
    assert [s["code"] for s in data["results"]] == ["msgraph:Calendars.ReadWrite"]
    first = api.get("/api/v1/scopes/", {"q": "mail"}).json()["results"][0]
    assert set(first) >= {"code", "system", "name", "description", "sensitivity", "access"}
    assert api_as(owner).get("/api/v1/scopes/msgraph:Mail.Read/").status_code == 200


def test_scopes_endpoint_needs_authentication(api_client: Any, catalog: Any) -> None:
    assert api_client.get("/api/v1/scopes/").status_code == 401
    assert api_client.get("/api/v1/integrations/").status_code == 401


def test_list_filters(owner: Any, make_integration: Any, api_as: Any, reviewer: Any) -> None:
    make_integration(owner, name="Alpha", ticket_ref="CHG-7")
    make_integration(owner, name="Beta", scopes=("hrdb:admin",), vendor="Acme")
    api = api_as(reviewer)
    names = lambda **q: [r["name"] for r in api.get("/api/v1/integrations/", q).json()["results"]]  # noqa: E731
    assert names(ticket_ref="CHG-7") == ["Alpha"]
    assert names(risk_tier="low") == ["Alpha"]
    assert names(owner="owner") == ["Alpha", "Beta"]
    assert names(q="beta") == ["Beta"]
    assert names(ordering="-name") == ["Beta", "Alpha"]
    assert names(owner="nobody") == []


def test_patch_adding_scopes_to_active_integration_requests_them_never_grants(
    owner: Any, reviewer: Any, make_integration: Any, api_as: Any, catalog: Any
) -> None:
    from inventory.models import Grant
    from inventory.signals import integration_scopes_added
    from tests.inventory.conftest import grant_all

    integ = make_integration(owner)
    grant_all(integ, reviewer)
    seen: list[Any] = []

    def receiver(sender: Any, **kw: Any) -> None:
        seen.append([s.code for s in kw["added_scopes"]])

    integration_scopes_added.connect(receiver)
    try:
        r = api_as(owner).patch(
            f"/api/v1/integrations/{integ.pk}/",
            {"requested_scopes": ["msgraph:User.Read", "msgraph:Mail.Read"]},
            format="json",
        )
    finally:
        integration_scopes_added.disconnect(receiver)
    assert r.status_code == 200, r.json()
    assert seen == [["msgraph:Mail.Read"]]
    assert list(Grant.objects.filter(integration=integ, status="active").values_list("scope__code", flat=True)) == [
        "msgraph:User.Read"
    ]


def test_history_endpoint_shows_who_changed_what(
    owner: Any, make_user: Any, make_integration: Any, api_as: Any
) -> None:
    integ = make_integration(owner)
    r = api_as(owner).patch(
        f"/api/v1/integrations/{integ.pk}/", {"purpose": "Summarises meetings and calls."}, format="json"
    )
    assert r.status_code == 200
    history = api_as(owner).get(f"/api/v1/integrations/{integ.pk}/history/").json()["results"]
    changed = [e for e in history if e["source"] == "history" and any(c["field"] == "purpose" for c in e["changes"])]
    assert changed, history
    entry = changed[0]
    assert entry["who"] == "owner"
    change = next(c for c in entry["changes"] if c["field"] == "purpose")
    assert change == {"field": "purpose", "old": "Summarises meetings.", "new": "Summarises meetings and calls."}
    audit = [e for e in history if e["action"] == "integration.changed"]
    assert audit and audit[0]["who"] == "owner"


def test_history_shows_scope_and_chain_changes_in_a_fixed_number_of_queries(
    owner: Any, make_integration: Any, api_as: Any, web_as: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    integ = make_integration(owner)
    helper = make_integration(owner, name="Helper bot")
    api = api_as(owner)
    url = f"/api/v1/integrations/{integ.pk}/"
    r = api.patch(url, {"requested_scopes": ["msgraph:User.Read", "msgraph:Mail.Read"]}, format="json")
    assert r.status_code == 200, r.json()
    assert api.patch(url, {"invokes": [helper.pk]}, format="json").status_code == 200

    def counted(client: Any, path: str) -> tuple[Any, int]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert response.status_code == 200
        return response, len(queries.captured_queries)

    history, api_few = counted(api, f"{url}history/")
    changes = [c for e in history.json()["results"] if e["source"] == "history" for c in e["changes"]]
    assert {
        "field": "requested_scopes",
        "old": ["msgraph:User.Read"],
        "new": ["msgraph:Mail.Read", "msgraph:User.Read"],
    } in changes
    assert {"field": "invokes", "old": [], "new": [helper.pk]} in changes
    web = web_as(owner)
    _, page_few = counted(web, f"/inventory/{integ.pk}/")

    for n in range(10):
        assert api.patch(url, {"purpose": f"Summarises meeting {n}."}, format="json").status_code == 200
    history, api_many = counted(api, f"{url}history/")
    assert len(history.json()["results"]) > 20
    _, page_many = counted(web, f"/inventory/{integ.pk}/")
    assert (api_many, page_many) == (api_few, page_few)


def test_transfer_is_proposed_and_accepted_by_the_new_owner_only(
    owner: Any, outsider: Any, make_user: Any, make_integration: Any, api_as: Any
) -> None:
    newcomer = make_user("newcomer", Role.BUSINESS_USER)
    integ = make_integration(owner)
    r = api_as(owner).post(f"/api/v1/integrations/{integ.pk}/transfer/", {"to_user": "newcomer"}, format="json")
    assert r.status_code == 201, r.json()
    tid = r.json()["id"]
    integ.refresh_from_db()
    assert integ.business_owner == owner  # nothing changes until accepted
    assert api_as(outsider).post(f"/api/v1/ownership-transfers/{tid}/accept/", {}, format="json").status_code == 404
    assert api_as(owner).post(f"/api/v1/ownership-transfers/{tid}/accept/", {}, format="json").status_code == 403
    r = api_as(newcomer).post(f"/api/v1/ownership-transfers/{tid}/accept/", {}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    integ.refresh_from_db()
    assert integ.business_owner == newcomer
    assert api_as(newcomer).get(f"/api/v1/integrations/{integ.pk}/").status_code == 200
    assert api_as(owner).get(f"/api/v1/integrations/{integ.pk}/").status_code == 404


def test_list_endpoint_runs_fixed_queries_at_5_and_50(
    owner: Any, reviewer: Any, make_integration: Any, api_as: Any, django_assert_num_queries: Any
) -> None:
    api = api_as(reviewer)
    for n in range(5):
        make_integration(owner, name=f"I{n}", credentials=[{"type": "api_key", "identifier": f"k{n}"}])
    api.get("/api/v1/integrations/")  # warm caches (roles)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert len(api.get("/api/v1/integrations/").json()["results"]) == 5
    for n in range(5, 50):
        make_integration(owner, name=f"I{n}", credentials=[{"type": "api_key", "identifier": f"k{n}"}])
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(api.get("/api/v1/integrations/").json()["results"]) == 50


def test_grant_list_endpoint_runs_fixed_queries_at_2_and_20(
    owner: Any, reviewer: Any, iam_admin: Any, make_integration: Any, api_as: Any, django_assert_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from governance.actors import Actor
    from inventory import services
    from inventory.models import Grant
    from tests.inventory.conftest import grant_all

    def add(count: int) -> None:
        for n in range(count):
            integ = make_integration(owner, name=f"Granted {n} of {count}", scopes=("msgraph:User.Read",))
            grant_all(integ, reviewer)
            # An ended grant shows who ended it: a revoked one per integration.
            grant = Grant.objects.get(integration=integ)
            services.grant_revoke(actor=iam_admin, grant=grant, reason="Not needed")
            services.grant_create_many(
                actor=Actor.system(on_behalf_of=owner),
                integration=integ,
                scopes=[grant.scope],
                source_type="test",
                source_id=f"again-{integ.pk}",
                approvers=[reviewer],
                expires_at=None,
            )

    api = api_as(owner)  # an owner: the list goes through the visibility subquery
    add(1)
    api.get("/api/v1/grants/")  # warm caches (roles)
    with CaptureQueriesContext(connection) as small:
        assert len(api.get("/api/v1/grants/").json()["results"]) == 2
    add(9)
    with django_assert_num_queries(len(small.captured_queries)):
        body = api.get("/api/v1/grants/").json()["results"]
    assert len(body) == 20
    assert {row["ended_by"] for row in body} == {None, iam_admin.username}
    assert all(row["approvers"] == [reviewer.username] for row in body)


def test_register_with_the_same_idempotency_key_creates_one(owner: Any, api_client: Any, catalog: Any) -> None:
    from governance.services import api_token_issue

    _token, key = api_token_issue(actor=owner, user=owner)
    api = api_client
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")  # the kernel's idempotency middleware keys on the caller
    body = {"name": "Once", "kind": "agent", "purpose": "p", "requested_scopes": ["msgraph:User.Read"]}
    first = api.post("/api/v1/integrations/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/api/v1/integrations/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert Integration.objects.filter(name="Once").count() == 1
    other = api.post("/api/v1/integrations/", {**body, "name": "Twice"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 422


def test_outsider_sees_no_transfer_and_cannot_decline(
    owner: Any, outsider: Any, make_user: Any, make_integration: Any, api_as: Any
) -> None:
    from inventory import services

    heir = make_user("heir", Role.BUSINESS_USER)
    t = services.ownership_transfer_propose(actor=owner, integration=make_integration(owner), to_user=heir)
    api = api_as(outsider)
    assert api.get("/api/v1/ownership-transfers/").json()["count"] == 0
    assert api.get(f"/api/v1/ownership-transfers/{t.pk}/").status_code == 404
    assert api.post(f"/api/v1/ownership-transfers/{t.pk}/decline/", {}, format="json").status_code == 404
    assert api_as(heir).get(f"/api/v1/ownership-transfers/{t.pk}/").status_code == 200


def test_auditor_cannot_answer_a_transfer(
    owner: Any, auditor: Any, make_user: Any, make_integration: Any, api_as: Any
) -> None:
    from inventory import services

    heir = make_user("heir", Role.BUSINESS_USER)
    t = services.ownership_transfer_propose(actor=owner, integration=make_integration(owner), to_user=heir)
    assert api_as(auditor).post(f"/api/v1/ownership-transfers/{t.pk}/accept/", {}, format="json").status_code == 403
    t.refresh_from_db()
    assert t.status == "proposed"


def test_search_matches_words_in_purpose_vendor_ticket_and_tags_whatever_the_case(
    owner: Any, make_integration: Any, api_as: Any
) -> None:
    from inventory import services

    integ = make_integration(owner, name="Alpha", vendor="Acme", ticket_ref="CHG-42", tags=["Pilot"])
    api = api_as(owner)
    names = lambda q: [r["name"] for r in api.get("/api/v1/integrations/", {"q": q}).json()["results"]]  # noqa: E731
    assert names("MEETINGS") == ["Alpha"] and names("acme") == ["Alpha"] and names("chg-42") == ["Alpha"]
    assert names("pilot alpha") == ["Alpha"] and names("pilot beta") == []
    services.integration_update(actor=owner, integration=integ, values={"purpose": "Writes invoices."})
    assert names("invoices") == ["Alpha"] and names("meetings") == []
