"""Delegation and reassignment of approval steps: a reviewer away hands their open steps to a
colleague of the same pool, who decides them in their own name on the reviewer's behalf, through
guardian object permissions the queue and the decision service read; separation of duties holds
for the delegate as themselves and as the person they stand in for; an IAM admin moves one open
assignment to another reviewer. Every grant, revocation and move is audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import selectors, services
from approvals.models import (
    Decision,
    Delegation,
    RequestStatus,
    StepAssignment,
    StepAssignmentUserObjectPermission,
    StepStatus,
)
from governance.exceptions import Conflict, NotAllowed, ValidationFailed
from governance.models import AuditEvent, OutboundEmail
from governance.roles import Pool, Role
from inventory import services as inventory_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def rita(reviewer: Any) -> Any:
    """The IAM reviewer who goes on leave."""
    return reviewer


@pytest.fixture
def colleague(make_user: Any) -> Any:
    """Raj, of rita's pool. Made after the requests of a test are opened, so that he is not
    assigned to their steps himself."""

    def make(username: str = "raj") -> Any:
        return make_user(username, Role.REVIEWER, Pool.IAM_REVIEWERS)

    return make


def delegate(delegator: Any, to: Any, *, actor: Any = None, days: int = 7, start_in: timedelta = timedelta()) -> Any:
    starts = timezone.now() + start_in
    return services.delegation_create(
        actor=actor or delegator,
        delegator=delegator,
        delegate=to,
        starts_at=starts,
        ends_at=starts + timedelta(days=days),
        reason="Annual leave",
    )


def rita_assignment(req: Any, rita: Any) -> StepAssignment:
    return StepAssignment.objects.get(step__request=req, user=rita)


# --- Validation ---------------------------------------------------------------------------------


def test_a_delegation_names_a_colleague_of_the_same_pool(rita, colleague, security_reviewer):
    with pytest.raises(ValidationFailed) as exc:
        delegate(rita, security_reviewer)
    assert "reviewer pool" in exc.value.errors["delegate"][0]
    with pytest.raises(ValidationFailed):
        delegate(rita, rita)
    assert Delegation.objects.count() == 0
    assert delegate(rita, colleague()).delegate.username == "raj"


def test_a_delegation_lasts_at_most_ninety_days_and_ends_after_it_starts(rita, colleague):
    raj = colleague()
    with pytest.raises(ValidationFailed) as exc:
        delegate(rita, raj, days=91)
    assert "90 days" in exc.value.errors["ends_at"][0]
    with pytest.raises(ValidationFailed):
        services.delegation_create(
            actor=rita, delegator=rita, delegate=raj, starts_at=timezone.now(), ends_at=timezone.now() - timedelta(1)
        )


def test_delegations_of_one_person_cannot_overlap(rita, colleague):
    raj, sam = colleague(), colleague("sam")
    delegate(rita, raj, days=10)
    with pytest.raises(Conflict):
        delegate(rita, sam, days=3, start_in=timedelta(days=2))
    delegate(rita, sam, days=3, start_in=timedelta(days=11))
    assert Delegation.objects.filter(delegator=rita).count() == 2


def test_a_delegate_who_is_away_then_too_is_refused(rita, colleague):
    raj = colleague()
    delegate(raj, rita, days=5)
    with pytest.raises(ValidationFailed) as exc:
        delegate(rita, raj, days=3)
    assert "away then too" in exc.value.errors["delegate"][0]


def test_only_the_delegator_or_an_iam_admin_sets_one_up(rita, colleague, iam_admin, outsider):
    raj = colleague()
    with pytest.raises(NotAllowed):
        delegate(rita, raj, actor=outsider)
    made = delegate(rita, raj, actor=iam_admin)
    assert made.created_by == iam_admin
    event = AuditEvent.objects.get(action="delegation.created", target_id=str(made.pk))
    assert event.actor_username == "admin" and event.owner_username == "reviewer"


# --- The delegate decides on the delegator's behalf ----------------------------------------------


def test_the_delegate_sees_and_decides_the_delegators_step_on_their_behalf(make_integration, submit, rita, colleague):
    req = submit(make_integration())
    raj = colleague()
    assert list(selectors.queue_for(raj)) == []
    delegation = delegate(rita, raj)
    mine = rita_assignment(req, rita)
    # The gate reads a guardian object permission on rita's assignment.
    assert StepAssignmentUserObjectPermission.objects.filter(
        user=raj, content_object=mine, permission__codename="decide_stepassignment"
    ).exists()
    assert list(selectors.queue_for(raj)) == [mine]
    assert selectors.queue_open_count(raj) == 1
    assert selectors.step_may_decide(raj, req, mine.step) is None
    made = services.request_decide(actor=raj, request=req, decision="approve", comment="covering for rita")
    assert (made.reviewer, made.on_behalf_of) == (raj, rita)
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED
    decided = AuditEvent.objects.get(action="access_request.step_decided", target_id=str(req.pk))
    assert decided.actor_username == "raj" and (decided.after or {}).get("on_behalf_of") == "reviewer"
    started = AuditEvent.objects.get(action="delegation.started", target_id=str(delegation.pk))
    assert (started.after or {}).get("covered_steps") == 1


def test_a_step_assigned_while_the_delegation_runs_is_covered_at_once(make_integration, submit, rita, colleague):
    raj = colleague()
    delegate(rita, raj)
    # Raj joined the pool before this request: he is assigned himself and covers nothing.
    submit(make_integration("First bot"))
    assert selectors.queue_open_count(raj) == 1
    assert not StepAssignmentUserObjectPermission.objects.filter(user=raj).exists()


def test_steps_reaching_the_delegator_later_are_covered_as_they_are_assigned(
    make_integration, submit, rita, colleague, catalog, resource_owner
):
    # Omar owns the HR system: the second step of a medium request is his alone.
    raj = colleague()
    services.delegation_create(
        actor=resource_owner,
        delegator=resource_owner,
        delegate=raj,
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(days=3),
    )
    req = submit(make_integration(tier="medium"), scopes=[catalog["hr"]])
    services.request_decide(actor=rita, request=req, decision="approve")
    second = req.steps.get(status=StepStatus.ACTIVE)
    assert second.name == "Resource owner"
    omar_assignment = StepAssignment.objects.get(step=second, user=resource_owner)
    assert list(selectors.queue_for(raj)) == [omar_assignment]
    covered = AuditEvent.objects.get(action="delegation.assignment_covered", target_id=str(req.pk))
    after = covered.after or {}
    assert (after.get("delegate"), after.get("delegator")) == ("raj", "omar")


# --- Separation of duties for delegates ----------------------------------------------------------


def test_a_delegate_never_decides_a_request_they_asked_for(make_integration, submit, rita, colleague):
    raj = colleague()
    req = submit(make_integration(), actor=raj)
    delegate(rita, raj)
    assert list(selectors.queue_for(raj)) == [], "the queue never offers it"
    with pytest.raises(NotAllowed) as exc:
        services.request_decide(actor=raj, request=req, decision="approve")
    assert "your own request" in exc.value.detail


def test_a_delegate_never_decides_an_integration_they_own(make_integration, submit, rita, colleague):
    raj = colleague()
    req = submit(make_integration(technical_owner=raj))
    delegate(rita, raj)
    with pytest.raises(NotAllowed) as exc:
        services.request_decide(actor=raj, request=req, decision="approve")
    assert "own this integration" in exc.value.detail


def test_a_delegate_who_decided_an_earlier_step_cannot_decide_the_next_for_someone(
    make_integration, submit, rita, catalog, resource_owner
):
    req = submit(make_integration(tier="medium"), scopes=[catalog["hr"]])
    services.delegation_create(
        actor=resource_owner,
        delegator=resource_owner,
        delegate=rita,
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(days=3),
    )
    services.request_decide(actor=rita, request=req, decision="approve")
    second = req.steps.get(status=StepStatus.ACTIVE)
    assert list(selectors.queue_for(rita)) == [], "rita decided step one: she may not stand in on step two"
    with pytest.raises(NotAllowed) as exc:
        services.request_decide(actor=rita, request=req, decision="approve", step_id=second.pk)
    assert "already decided the step" in exc.value.detail


def test_a_decision_made_for_someone_counts_against_them_at_the_next_step(
    make_integration, submit, rita, colleague, catalog, resource_owner
):
    # Rita is also an owner of the HR system: without the delegation she would decide step two.
    catalog["hr"].system.owners.add(rita)
    req = submit(make_integration(tier="medium"), scopes=[catalog["hr"]])
    raj = colleague()
    delegate(rita, raj)
    services.request_decide(actor=raj, request=req, decision="approve", comment="for rita")
    second = req.steps.get(status=StepStatus.ACTIVE)
    assert not StepAssignment.objects.filter(step=second, user=rita).exists(), "rita's name decided step one"
    assert not StepAssignment.objects.filter(step=second, user=raj).exists()
    with pytest.raises(NotAllowed):
        services.request_decide(actor=rita, request=req, decision="approve", step_id=second.pk)


def test_a_delegation_never_gives_a_second_decision_on_one_step(make_integration, submit, rita, colleague):
    raj = colleague()
    req = submit(make_integration())  # both are assigned to the IAM review
    delegate(rita, raj)
    assert selectors.queue_open_count(raj) == 1, "his own item only, not rita's too"
    step = req.steps.get()
    with transaction.atomic(), pytest.raises(IntegrityError):
        Decision.objects.create(step=step, request=req, reviewer=raj, on_behalf_of=rita, decision="approve")
        Decision.objects.create(step=step, request=req, reviewer=rita, on_behalf_of=rita, decision="approve")


def test_the_delegator_deciding_first_leaves_nothing_to_the_delegate(make_integration, submit, rita, colleague):
    req = submit(make_integration())
    raj = colleague()
    delegate(rita, raj)
    services.request_decide(actor=rita, request=req, decision="approve")
    assert selectors.queue_open_count(raj) == 0
    with pytest.raises(Conflict):
        services.request_decide(actor=raj, request=req, decision="approve")


# --- End, revocation, expiry ----------------------------------------------------------------------


def test_revoking_withdraws_the_permissions_at_once_and_is_audited(make_integration, submit, rita, colleague):
    req = submit(make_integration())
    raj = colleague()
    delegation = delegate(rita, raj)
    services.delegation_revoke(actor=rita, delegation=delegation, reason="back early")
    assert not StepAssignmentUserObjectPermission.objects.filter(user=raj).exists()
    assert selectors.queue_open_count(raj) == 0
    with pytest.raises(NotAllowed):
        services.request_decide(actor=raj, request=req, decision="approve")
    revoked = AuditEvent.objects.get(action="delegation.revoked", target_id=str(delegation.pk))
    assert (revoked.after or {}).get("permissions_removed") == 1 and revoked.reason == "back early"
    with pytest.raises(Conflict):
        services.delegation_revoke(actor=rita, delegation=delegation)


def test_the_delegate_cannot_revoke_and_outsiders_do_not_see_it(rita, colleague, outsider):
    raj = colleague()
    delegation = delegate(rita, raj)
    with pytest.raises(NotAllowed):
        services.delegation_revoke(actor=raj, delegation=delegation)
    assert list(selectors.delegations_for(outsider)) == []
    assert list(selectors.delegations_for(raj)) == [delegation]


def test_an_ended_delegation_stops_at_once_and_the_sweep_removes_its_permissions(
    make_integration, submit, rita, colleague
):
    submit(make_integration())
    raj = colleague()
    delegation = delegate(rita, raj, days=2)
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        # The gate reads the delegation's dates: nothing before the sweep has run.
        assert selectors.queue_open_count(raj) == 0
        assert StepAssignmentUserObjectPermission.objects.filter(user=raj).count() == 1
        assert services.delegations_sync() == {"started": 0, "ended": 1, "covered": 0}
        assert services.delegations_sync() == {"started": 0, "ended": 0, "covered": 0}, "idempotent"
    assert not StepAssignmentUserObjectPermission.objects.filter(user=raj).exists()
    ended = AuditEvent.objects.get(action="delegation.ended", target_id=str(delegation.pk))
    assert ended.actor_kind == "system" and ended.owner_username == "reviewer"


def test_a_scheduled_delegation_starts_at_the_sweep_after_its_start(make_integration, submit, rita, colleague):
    req = submit(make_integration())
    raj = colleague()
    delegation = delegate(rita, raj, start_in=timedelta(days=1))
    assert selectors.queue_open_count(raj) == 0
    assert not StepAssignmentUserObjectPermission.objects.exists()
    with time_machine.travel(timezone.now() + timedelta(days=1, minutes=5)):
        assert services.delegations_sync()["started"] == 1
        assert list(selectors.queue_for(raj)) == [rita_assignment(req, rita)]
    assert AuditEvent.objects.filter(action="delegation.started", target_id=str(delegation.pk)).count() == 1


def test_the_delegate_is_told_by_email(rita, colleague):
    raj = colleague()
    delegation = delegate(rita, raj)
    email = OutboundEmail.objects.get(key=f"delegation-{delegation.pk}-created")
    assert email.recipient == raj and "stand in" in email.subject


# --- Reassignment by an IAM admin ----------------------------------------------------------------


def test_an_iam_admin_reassigns_an_open_step_with_the_same_due_time(
    make_integration, submit, rita, colleague, iam_admin
):
    req = submit(make_integration())
    raj = colleague()
    old = rita_assignment(req, rita)
    new = services.assignment_reassign(actor=iam_admin, assignment=old, to_user=raj, reason="Rita is on sick leave")
    old.refresh_from_db()
    assert (old.is_open, old.reassigned_to, old.closed_reason) == (False, raj, "Rita is on sick leave")
    assert new.user == raj and new.is_open and new.due_at == old.due_at
    assert list(selectors.queue_for(raj)) == [new]
    assert selectors.queue_open_count(rita) == 0
    with pytest.raises(NotAllowed) as exc:
        services.request_decide(actor=rita, request=req, decision="approve")
    assert "reassigned this step to raj" in exc.value.detail
    event = AuditEvent.objects.get(action="access_request.reassigned", target_id=str(req.pk))
    assert event.before == {"reviewer": "reviewer"} and (event.after or {}).get("reviewer") == "raj"
    assert OutboundEmail.objects.filter(recipient=raj, key__contains="assigned").exists()
    services.request_decide(actor=raj, request=req, decision="approve")
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED


def test_only_iam_admins_reassign_and_never_to_someone_duties_keep_out(
    make_integration, submit, rita, colleague, iam_admin, second_reviewer
):
    raj = colleague()
    req = submit(make_integration(), actor=raj)
    old = rita_assignment(req, rita)
    with pytest.raises(NotAllowed):
        services.assignment_reassign(actor=second_reviewer, assignment=old, to_user=raj, reason="r")
    with pytest.raises(ValidationFailed) as exc:
        services.assignment_reassign(actor=iam_admin, assignment=old, to_user=raj, reason="r")
    assert "to_user" in exc.value.errors
    with pytest.raises(ValidationFailed):
        services.assignment_reassign(actor=iam_admin, assignment=old, to_user=raj, reason=" ")
    assert not AuditEvent.objects.filter(action="access_request.reassigned").exists()


def test_a_reassigned_reviewer_no_longer_counts_for_an_all_reviewers_step(
    make_integration, submit, rita, colleague, iam_admin, second_reviewer
):
    req = submit(make_integration(tier="critical"))
    step = req.steps.get(status=StepStatus.ACTIVE)
    assert step.rule == "all" and {a.user for a in step.assignments.all()} == {rita, second_reviewer}
    raj = colleague()
    services.assignment_reassign(
        actor=iam_admin, assignment=rita_assignment(req, rita), to_user=raj, reason="Rita left the team"
    )
    services.request_decide(actor=second_reviewer, request=req, decision="approve")
    services.request_decide(actor=raj, request=req, decision="approve")
    step.refresh_from_db()
    assert step.status == StepStatus.APPROVED, "two approvals of the two reviewers now on the step"


def test_a_co_owner_of_the_integration_never_decides_its_requests(make_integration, submit, rita, colleague, owner):
    integration = make_integration()
    raj = colleague()
    inventory_services.integration_delegate_add(actor=owner, integration=integration, person=raj)
    req = submit(integration)
    step = req.steps.get()
    assert not StepAssignment.objects.filter(step=step, user=raj).exists(), "never assigned"
    delegate(rita, raj)
    assert selectors.queue_open_count(raj) == 0, "nor covered for rita"
    with pytest.raises(NotAllowed) as exc:
        services.request_decide(actor=raj, request=req, decision="approve")
    assert "co-owner" in exc.value.detail
