"""The reviewer queue (inline and bulk decisions, JSON for the script, a plain POST without it),
the request page (names of who can decide, every step's decision), workflow configuration by
IAM admins, home panels and nav counts — and the fixed number of SQL queries of the lists."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.models import RequestStatus, StepStatus, Workflow
from benchmarks._approvals_data import pending_requests_bulk
from governance.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_queue_lists_what_waits_for_me_with_risk_scopes_and_diff(
    web_as, reviewer, make_integration, submit, expand, second_reviewer, catalog
):
    from approvals import services

    integration = make_integration("Held bot")
    services.request_decide(actor=second_reviewer, request=submit(integration), decision="approve")
    expand(integration, [catalog["mail"]])
    submit(make_integration("New bot", tier="low"))
    page = web_as(reviewer).get("/approvals/queue/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Held bot" in html and "New bot" in html
    assert "msgraph:Mail.Read" in html and "High" in html  # requested scope with its sensitivity
    assert "Already holds: <code>msgraph:Files.Read</code>" in html  # the expansion diff
    assert "Acts for users" in html  # risk factors
    assert html.index("Held bot") > 0


def test_queue_filters_by_type_and_tier(web_as, reviewer, make_integration, submit):
    submit(make_integration("Low bot", tier="low"))
    submit(make_integration("Mid bot", tier="medium"))
    client = web_as(reviewer)
    assert "Mid bot" not in client.get("/approvals/queue/?tier=low").content.decode()
    assert "Low bot" in client.get("/approvals/queue/?type=registration&tier=low").content.decode()
    assert "Low bot" not in client.get("/approvals/queue/?type=expansion").content.decode()
    assert "Low bot" not in client.get("/approvals/queue/?overdue=1").content.decode()


def test_queue_is_404_for_a_business_user(web_as, outsider):
    assert web_as(outsider).get("/approvals/queue/").status_code == 404


def test_inline_decision_answers_json_and_the_item_leaves_the_queue(web_as, reviewer, make_integration, submit):
    req = submit(make_integration())
    step = req.steps.get(status=StepStatus.ACTIVE)
    client = web_as(reviewer)
    response = client.post(
        f"/approvals/steps/{step.pk}/decide/", {"decision": "approve", "comment": "ok"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200 and response.json()["ok"] is True and response.json()["queue_count"] == 0
    assert "Sales copilot" not in client.get("/approvals/queue/").content.decode()


def test_inline_refusal_answers_json_with_the_reason(web_as, reviewer, make_integration, submit):
    req = submit(make_integration())
    step = req.steps.get(status=StepStatus.ACTIVE)
    response = web_as(reviewer).post(
        f"/approvals/steps/{step.pk}/decide/", {"decision": "reject"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400 and "comment" in response.json()["detail"].lower()


def test_plain_form_post_without_javascript_redirects_with_a_message(web_as, reviewer, make_integration, submit):
    req = submit(make_integration())
    step = req.steps.get(status=StepStatus.ACTIVE)
    response = web_as(reviewer).post(f"/approvals/steps/{step.pk}/decide/", {"decision": "approve"}, follow=True)
    assert response.redirect_chain[-1][0] == "/approvals/queue/"
    assert "Approved" in response.content.decode()
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED


def test_outsider_cannot_decide_a_step_from_the_web(web_as, outsider, make_integration, submit):
    req = submit(make_integration())
    step = req.steps.get(status=StepStatus.ACTIVE)
    assert web_as(outsider).post(f"/approvals/steps/{step.pk}/decide/", {"decision": "approve"}).status_code == 404


def test_auditor_cannot_decide_from_the_web(web_as, auditor, make_integration, submit):
    req = submit(make_integration())
    step = req.steps.get(status=StepStatus.ACTIVE)
    assert web_as(auditor).post(f"/approvals/steps/{step.pk}/decide/", {"decision": "approve"}).status_code == 403
    assert not req.decisions.exists()


def test_bulk_approve_takes_only_low_risk_items(web_as, reviewer, make_integration, submit):
    low = submit(make_integration("Low bot", tier="low"))
    mid = submit(make_integration("Mid bot", tier="medium"))
    steps = [r.steps.get(status=StepStatus.ACTIVE).pk for r in (low, mid)]
    response = web_as(reviewer).post("/approvals/queue/bulk-approve/", {"steps": steps}, follow=True)
    html = response.content.decode()
    assert "Approved 1 low-risk item" in html and "only low-risk items" in html
    low.refresh_from_db()
    mid.refresh_from_db()
    assert low.status == RequestStatus.APPROVED and mid.status == RequestStatus.IN_REVIEW


def test_request_page_names_who_can_decide_and_shows_each_decision(
    web_as, owner, reviewer, resource_owner, make_integration, submit, catalog
):
    from approvals import services

    req = submit(make_integration(tier="medium"), scopes=[catalog["hr"]])
    services.request_decide(actor=reviewer, request=req, decision="approve", comment="IAM fine")
    html = web_as(owner).get(f"/approvals/requests/{req.pk}/").content.decode()
    assert "Now waiting: Resource owner" in html
    assert "Who can decide: omar" in html
    assert "reviewer</strong>" not in html
    assert "IAM fine" in html and "Approve" in html
    assert "Withdraw this request" in html


def test_request_page_is_404_for_an_outsider(web_as, outsider, make_integration, submit):
    req = submit(make_integration())
    assert web_as(outsider).get(f"/approvals/requests/{req.pk}/").status_code == 404


def test_request_page_tells_a_reviewer_why_they_may_not_decide(web_as, make_user, make_integration, submit):
    from governance.roles import Pool, Role

    me = make_user("both", Role.REVIEWER, Pool.IAM_REVIEWERS)
    make_user("other", Role.REVIEWER, Pool.IAM_REVIEWERS)
    req = submit(make_integration(business_owner=me))
    html = web_as(me).get(f"/approvals/requests/{req.pk}/").content.decode()
    assert "Submit decision" not in html and "own this integration" in html


def test_withdraw_from_the_page(web_as, owner, make_integration, submit):
    req = submit(make_integration())
    web_as(owner).post(f"/approvals/requests/{req.pk}/withdraw/", {"reason": "x"})
    req.refresh_from_db()
    assert req.status == RequestStatus.WITHDRAWN


def test_request_list_shows_a_business_user_only_theirs(web_as, outsider, owner, make_integration, submit):
    submit(make_integration("Mine"))
    assert "Mine" in web_as(owner).get("/approvals/requests/").content.decode()
    assert "Mine" not in web_as(outsider).get("/approvals/requests/").content.decode()


def test_iam_admin_edits_a_workflow_step_in_the_portal_audited(web_as, iam_admin, workflows):
    wf = Workflow.objects.get(request_type="registration", risk_tier="low")
    step = wf.steps.get()
    client = web_as(iam_admin)
    assert client.get("/approvals/workflows/").status_code == 200
    form = {
        "order": 1,
        "name": "IAM review",
        "pool_kind": "group",
        "pool_group": step.pool_group_id,
        "rule": "quorum",
        "quorum": 1,
        "sla_hours": 12,
        "only_for_tiers": [],
    }
    bad = client.post(f"/approvals/workflows/{wf.pk}/steps/{step.pk}/", form)
    assert bad.status_code == 200 and "quorum needs at least 2" in bad.content.decode()
    form["quorum"] = 2
    assert client.post(f"/approvals/workflows/{wf.pk}/steps/{step.pk}/", form).status_code == 302
    step.refresh_from_db()
    assert step.rule == "quorum" and step.quorum == 2 and step.sla_hours == 12
    assert AuditEvent.objects.filter(action="workflow.changed", target_id=str(wf.pk)).exists()
    assert client.post("/approvals/workflows/", {"risk_tier": "critical", "days": 14}).status_code == 302
    from approvals.selectors import default_expiry_days

    assert default_expiry_days("critical") == 14


def test_workflow_pages_are_404_for_reviewers(web_as, reviewer, workflows):
    wf = Workflow.objects.first()
    assert wf is not None
    assert web_as(reviewer).get("/approvals/workflows/").status_code == 404
    assert web_as(reviewer).post(f"/approvals/workflows/{wf.pk}/steps/new/", {}).status_code == 404


def test_home_shows_queue_count_to_reviewers_and_open_requests_to_business_users(
    web_as, client, reviewer, owner, make_integration, submit
):
    submit(make_integration("Panel bot"))
    html = web_as(reviewer).get("/").content.decode()
    assert "Waiting for your decision" in html and "<strong>1</strong> step waiting" in html
    assert 'aria-label="1 waiting"' in html  # the nav count
    client.logout()
    html = web_as(owner).get("/").content.decode()
    assert "Your access requests" in html and "Panel bot" in html


@pytest.mark.parametrize("path", ["/approvals/queue/", "/api/v1/access-requests/?assigned_to_me=true"])
def test_queue_and_assigned_to_me_run_a_fixed_number_of_queries(path, web_as, reviewer, owner, catalog):
    client = web_as(reviewer)
    scopes = [catalog["files"], catalog["mail"]]
    pending_requests_bulk(n=5, owner=owner, reviewer=reviewer, scopes=scopes)
    client.get(path)  # warm the session and content types
    with CaptureQueriesContext(connection) as small:
        assert client.get(path).status_code == 200
    pending_requests_bulk(n=495, owner=owner, reviewer=reviewer, scopes=scopes)
    with CaptureQueriesContext(connection) as large:
        response = client.get(path)
    assert response.status_code == 200
    assert len(large) == len(small), [q["sql"][:120] for q in large.captured_queries]


def test_auditor_reads_the_queue_and_workflows_without_any_way_to_change_them(
    web_as, auditor, reviewer, make_integration, submit
):
    submit(make_integration())
    client = web_as(auditor)
    queue = client.get("/approvals/queue/")
    assert queue.status_code == 200 and "Submit decision" not in queue.content.decode()
    workflows = client.get("/approvals/workflows/")
    assert workflows.status_code == 200
    html = workflows.content.decode()
    assert "Low risk" in html and "Add a step" not in html and "Remove" not in html
    assert client.post("/approvals/workflows/", {"risk_tier": "low", "days": 1}).status_code == 403
