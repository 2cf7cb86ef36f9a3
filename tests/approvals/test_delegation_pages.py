"""The delegation pages and API: "my delegations" (create with a colleague of my pool, revoke),
the IAM admin's reassignment page, the queue's "on behalf of" mark and actions, and the API
reading the same gates. Outsiders get 404; lists run a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals import services
from approvals.models import Delegation, StepAssignment
from governance.models import AuditEvent
from governance.roles import Pool, Role

pytestmark = pytest.mark.django_db

WHEN = "%Y-%m-%dT%H:%M"


@pytest.fixture
def make_raj(make_user: Any) -> Any:
    """Raj, of the reviewer's pool; made after a test's requests are opened, so that he is not
    assigned to their steps himself."""
    return lambda: make_user("raj", Role.REVIEWER, Pool.IAM_REVIEWERS)


@pytest.fixture
def raj(make_raj: Any) -> Any:
    return make_raj()


def delegate(delegator: Any, to: Any, *, start_in: timedelta = timedelta(), days: int = 5) -> Delegation:
    starts = timezone.now() + start_in
    return services.delegation_create(
        actor=delegator, delegator=delegator, delegate=to, starts_at=starts, ends_at=starts + timedelta(days=days)
    )


def test_a_reviewer_delegates_from_the_page_to_a_colleague_of_the_pool(reviewer, raj, security_reviewer, web_as):
    client = web_as(reviewer)
    page = client.get(reverse("approvals:delegations")).content.decode()
    assert '<option value="raj">' in page and '<option value="security">' not in page
    now = timezone.localtime()
    form = {
        "delegate": "raj",
        "starts_at": now.strftime(WHEN),
        "ends_at": (now + timedelta(days=10)).strftime(WHEN),
        "covers_approvals": "on",
        "covers_reviews": "on",
        "reason": "Annual leave",
    }
    response = client.post(reverse("approvals:delegations"), form)
    assert response.status_code == 302
    delegation = Delegation.objects.get()
    assert (delegation.delegator, delegation.delegate, delegation.reason) == (reviewer, raj, "Annual leave")
    refused = client.post(reverse("approvals:delegations"), {**form, "delegate": "security"})
    assert refused.status_code == 200 and "not an eligible colleague" in refused.content.decode()
    too_long = client.post(
        reverse("approvals:delegations"), {**form, "ends_at": (now + timedelta(days=120)).strftime(WHEN)}
    )
    assert "at most 90 days" in too_long.content.decode()
    assert Delegation.objects.count() == 1


def test_the_delegator_revokes_from_the_page_and_outsiders_get_404(reviewer, raj, outsider, web_as):
    delegation = delegate(reviewer, raj)
    url = reverse("approvals:delegation-revoke", args=[delegation.pk])
    assert web_as(outsider).post(url).status_code == 404
    listing = web_as(outsider).get(reverse("approvals:delegations")).content.decode()
    assert "in no reviewer pool" in listing and "raj" not in listing
    assert web_as(raj).post(url).status_code == 403, "the delegate sees it but may not revoke it"
    assert web_as(reviewer).post(url).status_code == 302
    delegation.refresh_from_db()
    assert delegation.revoked_at is not None and delegation.revoked_by == reviewer


def test_an_iam_admin_sees_every_delegation_and_sets_one_up_for_someone(reviewer, raj, iam_admin, web_as):
    delegate(reviewer, raj)
    client = web_as(iam_admin)
    page = client.get(reverse("approvals:delegations")).content.decode()
    assert "Every delegation" in page and "Who is away" in page
    now = timezone.localtime()
    client.post(
        reverse("approvals:delegations"),
        {
            "delegator": "raj",
            "delegate": "reviewer",
            "starts_at": (now + timedelta(days=20)).strftime(WHEN),
            "ends_at": (now + timedelta(days=25)).strftime(WHEN),
            "covers_approvals": "on",
        },
    )
    made = Delegation.objects.get(delegator=raj)
    assert made.created_by == iam_admin and not made.covers_reviews


def test_the_delegations_page_runs_a_fixed_number_of_queries(
    reviewer, make_user, iam_admin, web_as, django_assert_num_queries
):
    people = [make_user(f"colleague{n}", Role.REVIEWER, Pool.IAM_REVIEWERS) for n in range(10)]
    delegate(people[0], people[1])
    client = web_as(iam_admin)
    client.get(reverse("approvals:delegations"))
    with CaptureQueriesContext(connection) as small:
        assert client.get(reverse("approvals:delegations")).status_code == 200
    for n in range(1, 5):
        delegate(people[2 * n], people[2 * n + 1])
    with django_assert_num_queries(len(small.captured_queries)):
        page = client.get(reverse("approvals:delegations"))
    assert page.content.decode().count('id="delegation-') == 5


def test_the_reassign_page_is_the_iam_admins_alone(
    make_integration, submit, reviewer, make_raj, iam_admin, outsider, web_as
):
    req = submit(make_integration())
    raj = make_raj()
    assignment = StepAssignment.objects.get(step__request=req, user=reviewer)
    url = reverse("approvals:assignment-reassign", args=[assignment.pk])
    for person in (outsider, raj, reviewer):
        assert web_as(person).get(url).status_code == 404
        assert web_as(person).post(url, {"to_user": "raj", "reason": "x"}).status_code == 404
    client = web_as(iam_admin)
    page = client.get(url).content.decode()
    assert '<option value="raj">' in page
    assert client.post(url, {"to_user": "raj", "reason": ""}).status_code == 200
    response = client.post(url, {"to_user": "raj", "reason": "Reviewer on sick leave"})
    assert response.status_code == 302
    assert StepAssignment.objects.get(step__request=req, user=raj).is_open
    assert AuditEvent.objects.filter(action="access_request.reassigned").count() == 1
    assert client.get(url).status_code == 404, "a closed assignment is not reassigned twice"


def test_the_queue_marks_delegated_items_and_offers_reassign_to_iam_admins(
    make_integration, submit, reviewer, make_raj, iam_admin, web_as
):
    submit(make_integration("Covered bot"))
    raj = make_raj()
    delegate(reviewer, raj)
    page = web_as(raj).get(reverse("approvals:queue")).content.decode()
    assert "Covered bot" in page and "On behalf of reviewer" in page
    assert "Delegate my queue" in page and "Reassign" not in page
    admin_page = web_as(iam_admin).get(reverse("approvals:queue")).content.decode()
    assert "On behalf of" not in admin_page


def test_the_queue_runs_a_fixed_number_of_queries_for_a_delegate(
    make_integration, submit, reviewer, make_raj, web_as, django_assert_num_queries
):
    submit(make_integration("First"))
    raj = make_raj()
    delegate(reviewer, raj)
    client = web_as(raj)
    client.get(reverse("approvals:queue"))
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("approvals:queue"))
    # Out of the pool (still a reviewer), raj is not assigned the later steps himself: each
    # reaches rita and is covered for him.
    raj.groups.remove(Group.objects.get(name=Pool.IAM_REVIEWERS))
    for n in range(3):
        submit(make_integration(f"Later {n}"))
    with django_assert_num_queries(len(small.captured_queries)):
        page = client.get(reverse("approvals:queue")).content.decode()
    assert page.count("On behalf of reviewer") == 4


def test_the_api_shows_and_takes_a_delegates_decision(make_integration, submit, reviewer, make_raj, api_as, outsider):
    req = submit(make_integration())
    raj = make_raj()
    delegate(reviewer, raj)
    api = api_as(raj)
    mine = api.get("/api/v1/access-requests/?assigned_to_me=true").json()["results"]
    assert [row["id"] for row in mine] == [req.pk]
    response = api.post(
        f"/api/v1/access-requests/{req.pk}/decisions/", {"decision": "approve", "comment": "for rita"}, format="json"
    )
    assert response.status_code == 201
    body = api.get(f"/api/v1/access-requests/{req.pk}/").json()
    decision = body["steps"][0]["decisions"][0]
    assert (decision["reviewer"], decision["on_behalf_of"]) == ("raj", "reviewer")
    refused = api_as(outsider).post(
        f"/api/v1/access-requests/{req.pk}/decisions/", {"decision": "approve"}, format="json"
    )
    assert refused.status_code == 404


def test_the_request_page_offers_iam_admins_to_reassign_each_open_part(
    make_integration, submit, reviewer, iam_admin, web_as
):
    req = submit(make_integration("Reassigned bot"))
    assignment = StepAssignment.objects.get(step__request=req, user=reviewer)
    url = reverse("approvals:request-detail", args=[req.pk])
    link = reverse("approvals:assignment-reassign", args=[assignment.pk])
    assert link in web_as(iam_admin).get(url).content.decode()
    assert link not in web_as(reviewer).get(url).content.decode()
