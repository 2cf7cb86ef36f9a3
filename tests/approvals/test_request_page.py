"""The request page as reviewers and requesters use it: a refused decision comes back with every
choice kept (never turned into an approval), nothing is pre-selected on medium risk and above, the
button names the action, a critical approval is confirmed; the page carries what a reviewer judges
by in a fixed number of queries; a reviewer whose part is done sees who the step waits for; and
after "changes requested" the requester edits and resubmits."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import services
from approvals.models import Decision, RequestStatus, StepStatus
from governance.exceptions import Conflict, NotAllowed
from inventory.choices import IntegrationStatus
from inventory.models import Integration

pytestmark = pytest.mark.django_db


def _checked(html: str, value: str) -> bool:
    """Whether the decision radio ``value`` is rendered checked."""
    match = re.search(rf'<input type="radio" name="decision" value="{value}"[^>]*>', html)
    assert match is not None, f"no {value} radio"
    return " checked" in match.group(0)


def _page(client: Any, req: Any) -> str:
    response = client.get(f"/approvals/requests/{req.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def _decide(client: Any, req: Any, **data: Any) -> Any:
    step = req.steps.get(status=StepStatus.ACTIVE, round=req.round)
    return client.post(f"/approvals/steps/{step.pk}/decide/", {"next": f"/approvals/requests/{req.pk}/", **data})


# --- A refused decision keeps every choice --------------------------------------------------------


def test_reject_without_comment_comes_back_with_reject_still_selected(
    web_as, reviewer, make_integration, submit, catalog
):
    req = submit(make_integration(tier="medium"), scopes=[catalog["files"], catalog["mail"]])
    client = web_as(reviewer)
    response = _decide(client, req, decision="reject", scopes_offered="1", approved_scopes=["msgraph:Files.Read"])
    html = response.content.decode()
    assert response.status_code == 400
    assert _checked(html, "reject") and not _checked(html, "approve")
    assert "A comment is required to reject" in html
    assert not Decision.objects.filter(request=req).exists()
    # The reason typed in the page that came back rejects, as meant.
    _decide(client, req, decision="reject", comment="No business case")
    req.refresh_from_db()
    assert req.status == RequestStatus.REJECTED


def test_a_refused_form_keeps_the_ticked_scopes_the_expiry_and_the_comment(
    web_as, reviewer, make_integration, submit, catalog
):
    req = submit(make_integration(tier="medium"), scopes=[catalog["files"], catalog["mail"]])
    response = _decide(
        web_as(reviewer),
        req,
        decision="approve",
        scopes_offered="1",
        approved_scopes=["msgraph:Mail.Read"],
        expires_at="not a date",
        comment="Only mail for now",
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert _checked(html, "approve")
    assert re.search(r'value="msgraph:Mail.Read" checked', html)
    assert not re.search(r'value="msgraph:Files.Read" checked', html)
    assert 'value="not a date"' in html and "Enter a date and time like" in html
    assert ">Only mail for now</textarea>" in html
    assert "Approve 1 scope</button>" in html


def test_a_refusal_by_the_service_also_keeps_the_form(web_as, reviewer, make_integration, submit, catalog):
    req = submit(make_integration(tier="medium"), scopes=[catalog["files"]])
    later = (timezone.now() + timedelta(days=4000)).strftime("%Y-%m-%d %H:%M")
    response = _decide(web_as(reviewer), req, decision="approve", expires_at=later, comment="long")
    html = response.content.decode()
    assert response.status_code == 400 and "can only be earlier than the default" in html
    assert _checked(html, "approve") and f'value="{later}"' in html
    assert not Decision.objects.filter(request=req).exists()


def test_the_queue_script_still_gets_json_for_a_refusal_and_a_success(web_as, reviewer, make_integration, submit):
    req = submit(make_integration(tier="medium"))
    step = req.steps.get(status=StepStatus.ACTIVE)
    client = web_as(reviewer)
    refused = client.post(f"/approvals/steps/{step.pk}/decide/", {"comment": "x"}, HTTP_ACCEPT="application/json")
    assert refused.status_code == 400
    assert refused.json()["ok"] is False and refused.json()["detail"] == "Choose a decision."
    assert refused.json()["errors"] == {"decision": ["Choose a decision."]}
    done = client.post(f"/approvals/steps/{step.pk}/decide/", {"decision": "approve"}, HTTP_ACCEPT="application/json")
    assert done.json() == {"ok": True, "message": f"Approved: Sales copilot ({step.name}).", "queue_count": 0}


# --- Nothing pre-selected, the button names the action, critical is confirmed ----------------------


def test_no_decision_is_preselected_on_medium_risk_on_the_page_and_in_the_queue(
    web_as, reviewer, make_integration, submit
):
    req = submit(make_integration(tier="medium"))
    client = web_as(reviewer)
    for html in (_page(client, req), client.get("/approvals/queue/").content.decode()):
        assert not _checked(html, "approve") and not _checked(html, "reject")
        assert "Submit decision</button>" in html


def test_a_low_risk_request_has_approve_preselected(web_as, reviewer, make_integration, submit):
    html = _page(web_as(reviewer), submit(make_integration(tier="low")))
    assert _checked(html, "approve") and "Approve 1 scope</button>" in html


def test_a_critical_approval_needs_its_confirmation(web_as, reviewer, second_reviewer, make_integration, submit):
    req = submit(make_integration(tier="critical"))
    client = web_as(reviewer)
    assert "approve this critical request" in _page(client, req)
    refused = _decide(client, req, decision="approve", comment="ok")
    assert refused.status_code == 400 and "Confirm that you approve this critical request." in refused.content.decode()
    assert not Decision.objects.filter(request=req).exists()
    assert _decide(client, req, decision="approve", confirm="on").status_code == 302
    assert Decision.objects.get(request=req).reviewer == reviewer
    # A rejection needs no confirmation, only its reason.
    assert _decide(web_as(second_reviewer), req, decision="reject", comment="No").status_code == 302


def test_ticking_no_scope_is_not_an_approval(web_as, reviewer, make_integration, submit):
    req = submit(make_integration(tier="medium"))
    response = _decide(web_as(reviewer), req, decision="approve", scopes_offered="1")
    assert response.status_code == 400 and "Tick at least one scope" in response.content.decode()


# --- What a reviewer judges by -------------------------------------------------------------------


def _judged(make_integration: Any, submit: Any, catalog: Any, reviewer: Any) -> Any:
    downstream = make_integration("Mail sender", status=IntegrationStatus.ACTIVE, tier="high")
    downstream.requested_scopes.set([catalog["hr"]])
    integration = make_integration(
        "Sales copilot",
        tier="medium",
        vendor="Contoso AI",
        data_classifications=["confidential"],
        acts_for_users=True,
        autonomy="autonomous",
        workload_identity="spiffe://corp/sales",
    )
    integration.risk_factors = [{"code": "acts_for_users", "points": 15, "reason": "Acts as the signed-in user"}]
    integration.save(update_fields=["risk_factors"])
    integration.invokes.set([downstream])
    return submit(integration, scopes=[catalog["files"], catalog["mail"]])


def test_the_request_page_carries_what_a_reviewer_judges_by(web_as, reviewer, make_integration, submit, catalog):
    req = _judged(make_integration, submit, catalog, reviewer)
    html = _page(web_as(reviewer), req)
    assert f'href="/inventory/{req.integration_id}/"' in html
    for fact in ("Drafts replies", "Contoso AI", "confidential", "Yes (delegated user context)", "Autonomous"):
        assert fact in html
    assert "Declared only" in html and "spiffe://corp/sales" in html
    assert "Risk: 30 points, medium" in html and "<strong>+15</strong> Acts as the signed-in user" in html
    assert re.search(r"msgraph:Mail.Read</code>.*?High</span></td><td>Read</td><td>No</td>", html, re.S)
    assert "Mail sender" in html and "hrdb:employees.read" in html  # the chain and what it reaches


def test_a_scope_already_held_is_marked_on_the_page(
    web_as, reviewer, second_reviewer, make_integration, submit, expand, catalog
):
    integration = make_integration("Held bot")
    services.request_decide(actor=second_reviewer, request=submit(integration), decision="approve")
    req = expand(integration, [catalog["mail"], catalog["files"]])
    html = _page(web_as(reviewer), req)
    assert re.search(r"msgraph:Files.Read</code>.*?<td>Yes</td>", html, re.S)


def _reviewed_twice(make_integration: Any, submit: Any, name: str, scopes: list[Any], earlier: Any) -> Any:
    """A medium-risk request that calls one other integration, sent back for changes once and
    resubmitted: its page has two rounds, a decision and a chain."""
    downstream = make_integration(f"{name} helper", status=IntegrationStatus.ACTIVE)
    integration = make_integration(name, tier="medium")
    integration.invokes.set([downstream])
    req = submit(integration, scopes=scopes)
    services.request_decide(actor=earlier, request=req, decision="request_changes", comment="Say why")
    return services.request_resubmit(actor=integration.business_owner, request=req)


def test_the_request_page_reads_a_fixed_number_of_queries(
    client, reviewer, second_reviewer, make_integration, submit, catalog
):
    one = _reviewed_twice(make_integration, submit, "One bot", [catalog["files"]], second_reviewer)
    many = _reviewed_twice(
        make_integration, submit, "Many bot", [catalog["files"], catalog["mail"], catalog["hr"]], second_reviewer
    )
    client.force_login(reviewer)
    client.get(f"/approvals/requests/{one.pk}/")  # the session and roles are read once per user
    with CaptureQueriesContext(connection) as few_rows:
        html = client.get(f"/approvals/requests/{one.pk}/").content.decode()
    assert "data-decision-form" in html and "One bot helper" in html
    with CaptureQueriesContext(connection) as more_rows:
        html = client.get(f"/approvals/requests/{many.pk}/").content.decode()
    assert "data-decision-form" in html and "hrdb:employees.read" in html and "Say why" in html
    assert len(more_rows) == len(few_rows), [query["sql"] for query in more_rows.captured_queries]


# --- A reviewer whose part is done ---------------------------------------------------------------


def test_after_approving_an_all_reviewers_step_the_page_says_who_it_waits_for(
    web_as, reviewer, second_reviewer, make_integration, submit
):
    req = submit(make_integration(tier="critical"))
    client = web_as(reviewer)
    _decide(client, req, decision="approve", confirm="on")
    html = _page(client, req)
    made = timezone.localtime(Decision.objects.get(request=req).created_at)
    assert f"You approved this step at {made:%H:%M}; waiting for reviewer2." in html
    assert "data-decision-form" not in html and "Who can decide" not in html


def test_who_can_decide_names_only_those_still_open(web_as, owner, reviewer, second_reviewer, make_integration, submit):
    req = submit(make_integration(tier="critical"))
    services.request_decide(actor=second_reviewer, request=req, decision="approve")
    html = _page(web_as(owner), req)
    assert "Who can decide: reviewer." in html and ", ." not in html


# --- Changes requested: edit and resubmit ---------------------------------------------------------


def _changes_requested(req: Any, reviewer: Any) -> Any:
    services.request_decide(actor=reviewer, request=req, decision="request_changes", comment="Name the vendor")
    req.refresh_from_db()
    return req


def _integration_post(integration: Integration, scope_ids: list[int], **changes: Any) -> dict[str, Any]:
    data = {
        "name": integration.name,
        "kind": integration.kind,
        "purpose": integration.purpose,
        "vendor": integration.vendor,
        "environment": integration.environment,
        "business_owner": integration.business_owner.username,
        "autonomy": integration.autonomy,
        "requested_scopes": scope_ids,
        "comment": "Vendor named",
    }
    return data | changes


def test_the_requester_sees_the_comment_and_a_link_to_edit_and_resubmit(
    web_as, owner, reviewer, make_integration, submit
):
    req = _changes_requested(submit(make_integration()), reviewer)
    client = web_as(owner)
    html = _page(client, req)
    assert "Name the vendor" in html and f'href="/approvals/requests/{req.pk}/resubmit/"' in html
    page = client.get(f"/approvals/requests/{req.pk}/resubmit/").content.decode()
    assert "Name the vendor" in page and 'name="purpose"' in page and 'name="requested_scopes"' in page


def test_a_registration_is_edited_and_back_in_review_in_one_go(
    web_as, owner, reviewer, make_integration, submit, catalog
):
    req = _changes_requested(submit(make_integration()), reviewer)
    integration = req.integration
    data = _integration_post(integration, [catalog["files"].pk, catalog["mail"].pk], vendor="Contoso AI")
    response = web_as(owner).post(f"/approvals/requests/{req.pk}/resubmit/", data)
    assert response.status_code == 302 and response["Location"] == f"/approvals/requests/{req.pk}/"
    req.refresh_from_db()
    integration.refresh_from_db()
    assert req.status == RequestStatus.IN_REVIEW and req.round == 2
    assert integration.vendor == "Contoso AI" and integration.status == IntegrationStatus.PENDING
    assert set(req.requested_scopes.values_list("code", flat=True)) == {"msgraph:Files.Read", "msgraph:Mail.Read"}
    assert req.steps.filter(round=2, status=StepStatus.ACTIVE).exists()


def test_an_expansion_is_resubmitted_with_other_scopes(
    web_as, owner, reviewer, second_reviewer, make_integration, submit, expand, catalog
):
    integration = make_integration("Held bot")
    services.request_decide(actor=second_reviewer, request=submit(integration), decision="approve")
    req = _changes_requested(expand(integration, [catalog["mail"], catalog["hr"]]), reviewer)
    integration.refresh_from_db()
    data = _integration_post(integration, [catalog["mail"].pk], purpose="Drafts replies to customers")
    assert web_as(owner).post(f"/approvals/requests/{req.pk}/resubmit/", data).status_code == 302
    req.refresh_from_db()
    integration.refresh_from_db()
    assert req.status == RequestStatus.IN_REVIEW and req.round == 2
    assert list(req.requested_scopes.values_list("code", flat=True)) == ["msgraph:Mail.Read"]
    assert integration.purpose == "Drafts replies to customers" and integration.status == IntegrationStatus.ACTIVE


def test_a_form_error_keeps_what_was_typed_and_resubmits_nothing(
    web_as, owner, reviewer, make_integration, submit, catalog
):
    req = _changes_requested(submit(make_integration()), reviewer)
    data = _integration_post(req.integration, [catalog["mail"].pk], purpose="", vendor="Contoso AI")
    response = web_as(owner).post(f"/approvals/requests/{req.pk}/resubmit/", data)
    html = response.content.decode()
    assert response.status_code == 400 and "Nothing was resubmitted" in html
    assert 'name="vendor" value="Contoso AI"' in html and "Vendor named</textarea>" in html
    assert re.search(rf'value="{catalog["mail"].pk}" id="scope-{catalog["mail"].pk}" checked', html)
    req.refresh_from_db()
    assert req.status == RequestStatus.CHANGES_REQUESTED and req.round == 1


def test_the_resubmit_page_is_404_for_an_outsider(web_as, outsider, reviewer, make_integration, submit, catalog):
    req = _changes_requested(submit(make_integration()), reviewer)
    client = web_as(outsider)
    assert client.get(f"/approvals/requests/{req.pk}/resubmit/").status_code == 404
    data = _integration_post(req.integration, [catalog["files"].pk])
    assert client.post(f"/approvals/requests/{req.pk}/resubmit/", data).status_code == 404
    req.refresh_from_db()
    assert req.status == RequestStatus.CHANGES_REQUESTED


def test_a_reviewer_who_sees_the_request_may_not_resubmit_it(
    web_as, reviewer, second_reviewer, make_integration, submit
):
    req = _changes_requested(submit(make_integration()), reviewer)
    assert web_as(second_reviewer).get(f"/approvals/requests/{req.pk}/resubmit/").status_code == 403


def test_a_request_that_does_not_wait_for_changes_sends_back_to_its_page(web_as, owner, make_integration, submit):
    req = submit(make_integration())
    response = web_as(owner).get(f"/approvals/requests/{req.pk}/resubmit/")
    assert response.status_code == 302 and response["Location"] == f"/approvals/requests/{req.pk}/"


def test_the_resubmission_service_refuses_a_request_in_review_and_an_outsider(
    owner, outsider, reviewer, make_integration, submit, catalog
):
    req = submit(make_integration())
    with pytest.raises(Conflict):
        services.request_resubmit_edited(actor=owner, request=req, values=None, scopes=[catalog["files"]])
    _changes_requested(req, reviewer)
    with pytest.raises(NotAllowed):
        services.request_resubmit_edited(actor=outsider, request=req, values=None, scopes=[catalog["files"]])
    req.refresh_from_db()
    assert req.status == RequestStatus.CHANGES_REQUESTED and req.round == 1


def test_a_refused_integration_change_undoes_the_whole_resubmission(owner, reviewer, make_integration, submit, catalog):
    from governance.exceptions import ValidationFailed

    req = _changes_requested(submit(make_integration()), reviewer)
    with pytest.raises(ValidationFailed):
        services.request_resubmit_edited(
            actor=owner, request=req, values={"name": "", "purpose": ""}, scopes=[catalog["files"]]
        )
    req.refresh_from_db()
    assert req.status == RequestStatus.CHANGES_REQUESTED and req.round == 1
    assert req.integration.status == IntegrationStatus.DRAFT


def test_a_refused_secret_is_not_sent_back_in_the_page(web_as, owner, reviewer, make_integration, submit, catalog):
    req = _changes_requested(submit(make_integration()), reviewer)
    secret = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    data = _integration_post(req.integration, [catalog["files"].pk], vendor=secret)
    response = web_as(owner).post(f"/approvals/requests/{req.pk}/resubmit/", data)
    html = response.content.decode()
    assert response.status_code == 400 and secret not in html and "Vendor named</textarea>" in html
    req.refresh_from_db()
    assert req.status == RequestStatus.CHANGES_REQUESTED
