"""The access-request and grant endpoints: visibility (others 404), actions (403 when
seen but not allowed), auditors read-only, filters, and the full flow with tokens as a ticketing
system drives it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from approvals import services
from approvals.models import RequestStatus
from governance.actors import Actor
from governance.models import OutboundEmail
from governance.services import api_token_issue
from inventory.models import Grant, GrantStatus, IntegrationStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def req(make_integration, submit, reviewer):  # noqa: ANN001, ANN201
    return submit(make_integration(ticket_ref="CHG0001"))


@pytest.fixture
def grant(req, reviewer):  # noqa: ANN001, ANN201
    services.request_decide(actor=reviewer, request=req, decision="approve")
    return Grant.objects.get(integration=req.integration)


def test_outsider_gets_404_on_every_access_request_endpoint(api_as, outsider, req):
    client = api_as(outsider)
    assert client.get(f"/api/v1/access-requests/{req.pk}/").status_code == 404
    assert (
        client.post(f"/api/v1/access-requests/{req.pk}/decisions/", {"decision": "approve"}, format="json").status_code
        == 404
    )
    assert client.post(f"/api/v1/access-requests/{req.pk}/withdraw/", {}, format="json").status_code == 404
    assert client.get("/api/v1/access-requests/").json()["count"] == 0


def test_outsider_gets_404_on_every_grant_endpoint(api_as, outsider, grant):
    client = api_as(outsider)
    assert client.get(f"/api/v1/grants/{grant.pk}/").status_code == 404
    assert client.post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "x"}, format="json").status_code == 404
    assert client.get("/api/v1/grants/").json()["count"] == 0


def test_anonymous_gets_401(req):
    assert APIClient().get("/api/v1/access-requests/").status_code == 401


def test_owner_reviewer_and_auditor_see_the_request_with_steps(api_as, owner, reviewer, auditor, req):
    for user in (owner, reviewer, auditor):
        body = api_as(user).get(f"/api/v1/access-requests/{req.pk}/").json()
        assert body["status"] == "in_review" and body["requester"] == "owner"
        [step] = body["steps"]
        assert step["name"] == "IAM review" and step["reviewers"] == ["reviewer"] and step["decisions"] == []


def test_steps_show_who_decided_what_when_and_why(api_as, owner, reviewer, req):
    api_as(reviewer).post(
        f"/api/v1/access-requests/{req.pk}/decisions/", {"decision": "approve", "comment": "fine"}, format="json"
    )
    [step] = api_as(owner).get(f"/api/v1/access-requests/{req.pk}/").json()["steps"]
    [decision] = step["decisions"]
    assert decision["reviewer"] == "reviewer" and decision["decision"] == "approve" and decision["comment"] == "fine"
    assert decision["created_at"] and decision["approved_scopes"] == ["msgraph:Files.Read"]


def test_auditor_cannot_withdraw(api_as, auditor, req):
    assert api_as(auditor).post(f"/api/v1/access-requests/{req.pk}/withdraw/", {}, format="json").status_code == 403


def test_reviewer_cannot_withdraw_someone_elses_request(api_as, reviewer, req):
    assert api_as(reviewer).post(f"/api/v1/access-requests/{req.pk}/withdraw/", {}, format="json").status_code == 403


def test_requester_withdraws_and_a_later_decision_is_a_conflict(api_as, owner, reviewer, req):
    response = api_as(owner).post(f"/api/v1/access-requests/{req.pk}/withdraw/", {"reason": "later"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    response = api_as(reviewer).post(
        f"/api/v1/access-requests/{req.pk}/decisions/", {"decision": "approve"}, format="json"
    )
    assert response.status_code == 409 and "withdrawn" in response.json()["detail"]


def test_decision_input_is_validated_as_problem_details(api_as, reviewer, req):
    client = api_as(reviewer)
    bad = client.post(f"/api/v1/access-requests/{req.pk}/decisions/", {"decision": "maybe"}, format="json")
    assert bad.status_code == 400 and "decision" in bad.json()["errors"]
    no_comment = client.post(f"/api/v1/access-requests/{req.pk}/decisions/", {"decision": "reject"}, format="json")
    assert no_comment.status_code == 400 and "comment" in no_comment.json()["errors"]
    unknown = client.post(
        f"/api/v1/access-requests/{req.pk}/decisions/",
        {"decision": "approve", "approved_scopes": ["nope:x"]},
        format="json",
    )
    # Well-formed, but naming a scope that does not exist: a 422 (the schema allows any code).
    assert unknown.status_code == 422 and "approved_scopes" in unknown.json()["errors"]


def test_filters_status_integration_ticket_ref_and_assigned_to_me(
    api_as, reviewer, security_reviewer, req, make_integration, submit
):
    other = submit(make_integration("Other", ticket_ref="CHG0002"))
    services.request_withdraw(actor=other.requester, request=other)
    client = api_as(reviewer)
    ids = lambda q: [r["id"] for r in client.get(f"/api/v1/access-requests/?{q}").json()["results"]]  # noqa: E731
    assert ids("status=in_review") == [req.pk]
    assert ids(f"integration={other.integration_id}") == [other.pk]
    assert ids("ticket_ref=CHG0001") == [req.pk]
    assert ids("assigned_to_me=true") == [req.pk]
    assert [
        r["id"] for r in api_as(security_reviewer).get("/api/v1/access-requests/?assigned_to_me=true").json()["results"]
    ] == []


def test_grants_filters_integration_scope_active_expires_before(api_as, owner, grant):
    client = api_as(owner)
    ids = lambda q: [r["id"] for r in client.get(f"/api/v1/grants/?{q}").json()["results"]]  # noqa: E731
    assert ids(f"integration={grant.integration_id}") == [grant.pk]
    assert ids("scope=msgraph:Files.Read") == [grant.pk]
    assert ids("scope=msgraph:Mail.Read") == []
    assert ids("active=true") == [grant.pk] and ids("active=false") == []
    soon = (timezone.now() + timedelta(days=400)).isoformat()
    assert ids(f"expires_before={soon.replace('+', '%2B')}") == [grant.pk]
    body = client.get(f"/api/v1/grants/{grant.pk}/").json()
    assert (
        body["source_type"] == "approvals.accessrequest"
        and body["approvers"] == ["reviewer"]
        and body["active"] is True
    )


@pytest.mark.parametrize("path", ["/api/v1/grants/", "/api/v1/access-requests/"])
def test_an_integration_filter_that_is_not_a_whole_number_is_a_400_naming_it(api_as, owner, grant, path):
    # schemathesis found ?integration=-1.76e+231 reaching SQLite as an integer too large for it (a 500)
    client = api_as(owner)
    bad = client.get(f"{path}?integration=-1.76e%2B231")
    assert bad.status_code == 400 and bad["Content-Type"] == "application/problem+json"
    assert "integration" in bad.json()["errors"]
    # Ids are whole numbers from 1 to 2**63-1 (the schema says so): beyond, a 400 as well.
    huge = client.get(f"{path}?integration=99999999999999999999")
    assert huge.status_code == 400 and "integration" in huge.json()["errors"]
    unknown = client.get(f"{path}?integration=999999999")
    assert unknown.status_code == 200 and unknown.json()["results"] == []


def test_owner_revokes_a_grant_with_a_reason(api_as, owner, grant):
    client = api_as(owner)
    assert client.post(f"/api/v1/grants/{grant.pk}/revoke/", {}, format="json").status_code == 400
    response = client.post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "no longer used"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    again = client.post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "twice"}, format="json")
    assert again.status_code == 409


def test_reviewer_who_does_not_own_it_cannot_revoke(api_as, reviewer, grant):
    assert (
        api_as(reviewer).post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "x"}, format="json").status_code == 403
    )


def test_iam_admin_can_revoke_and_auditor_cannot(api_as, iam_admin, auditor, grant):
    assert api_as(auditor).post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "x"}, format="json").status_code == 403
    assert (
        api_as(iam_admin).post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "x"}, format="json").status_code == 200
    )


def test_request_and_decisions_stay_visible_after_the_grant_is_revoked(api_as, owner, grant, req):
    api_as(owner).post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "done"}, format="json")
    body = api_as(owner).get(f"/api/v1/access-requests/{req.pk}/").json()
    assert body["status"] == "approved" and body["steps"][0]["decisions"][0]["reviewer"] == "reviewer"


def test_full_medium_flow_through_the_api_with_tokens(
    make_integration, submit, reviewer, resource_owner, owner, catalog
):
    """A ticketing system's service account follows the request; each reviewer decides with
    their own token; the integration ends active with grants and the requester got the emails."""
    integration = make_integration("Ticketed bot", tier="medium", ticket_ref="RITM0042")
    req = submit(integration, scopes=[catalog["files"], catalog["hr"]])
    system = Actor.system(on_behalf_of=None)

    def client_for(user):  # noqa: ANN001, ANN202
        _, key = api_token_issue(actor=system, user=user, name="test")
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return c

    iam, res_owner, requester = client_for(reviewer), client_for(resource_owner), client_for(owner)
    [found] = requester.get("/api/v1/access-requests/?ticket_ref=RITM0042").json()["results"]
    assert found["id"] == req.pk
    [mine] = iam.get("/api/v1/access-requests/?assigned_to_me=true").json()["results"]
    assert mine["id"] == req.pk
    r1 = iam.post(
        f"/api/v1/access-requests/{req.pk}/decisions/", {"decision": "approve", "comment": "IAM ok"}, format="json"
    )
    assert r1.status_code == 201, r1.json()
    [mine] = res_owner.get("/api/v1/access-requests/?assigned_to_me=true").json()["results"]
    until = (timezone.now() + timedelta(days=30)).isoformat()
    r2 = res_owner.post(
        f"/api/v1/access-requests/{req.pk}/decisions/",
        {
            "decision": "approve",
            "comment": "HR data ok for a month",
            "approved_scopes": ["hrdb:employees.read"],
            "expires_at": until,
        },
        format="json",
    )
    assert r2.status_code == 201, r2.json()
    body = requester.get(f"/api/v1/access-requests/{req.pk}/").json()
    assert body["status"] == RequestStatus.APPROVED
    assert [s["status"] for s in body["steps"]] == ["approved", "approved"]
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.ACTIVE
    grants = requester.get(f"/api/v1/grants/?integration={integration.pk}&active=true").json()["results"]
    assert [g["scope"] for g in grants] == ["hrdb:employees.read"]
    assert grants[0]["expires_at"].startswith(until[:10])
    assert Grant.objects.filter(integration=integration, status=GrantStatus.ACTIVE).count() == 1
    assert OutboundEmail.objects.filter(recipient=owner, key__startswith="approval-outcome-").count() == 1


def test_decision_with_the_same_idempotency_key_is_recorded_once(api_client, reviewer, make_integration, submit):
    from governance.services import api_token_issue

    req = submit(make_integration("Idem bot", tier="medium"))
    _token, key = api_token_issue(actor=reviewer, user=reviewer)
    client = api_client
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")  # the kernel's idempotency middleware keys on the caller
    url = f"/api/v1/access-requests/{req.pk}/decisions/"
    first = client.post(url, {"decision": "approve", "comment": "ok"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(url, {"decision": "approve", "comment": "ok"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert req.decisions.count() == 1
    other_body = client.post(
        url, {"decision": "approve", "comment": "changed"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert other_body.status_code == 422
    assert client.post(url, {"decision": "approve"}, format="json").status_code in (403, 409)
