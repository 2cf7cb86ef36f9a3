"""Policy changes: a decision about something that is not an integration (a runtime policy version
to enforce or roll back), opened by the app that owns it and decided by the approvals workflow
like any request — its own one-step workflow of IAM admins, the queue, emails, SLA and escalation,
decisions and their audit trail. Separation of duties keeps the requester and the version's
authors out even though they are IAM admins; the outcome is handed to the handler registered for
the type, inside the decision's transaction, and a handler's refusal undoes the decision."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.db import IntegrityError, connection, transaction
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.operations import RunPython
from django.test.utils import CaptureQueriesContext

from approvals import services, tasks
from approvals.extensions import (
    change_handler,
    change_kind_registered,
    register_change_kind,
    unregister_change_kind,
)
from approvals.models import (
    AccessRequest,
    Decision,
    RequestStatus,
    RequestType,
    StepAssignment,
    StepStatus,
    Workflow,
)
from approvals.views import decision_choices
from approvals.webhooks import access_request as webhook_representation
from governance.actors import Actor
from governance.exceptions import Conflict, NotAllowed, Unprocessable, ValidationFailed
from governance.models import AuditEvent, OutboundEmail, User
from governance.roles import Pool, Role

pytestmark = pytest.mark.django_db

LABEL = "Runtime policy v7 — block dev agents"
URL = "/runtime/policies/7/"


@dataclass
class Recorder:
    """A change handler that records each call: the request, the status it was given, who acted,
    and the request's status as the database held it during the call."""

    calls: list[tuple[int, str, str, str]] = field(default_factory=list)
    refuse: Exception | None = None

    def __call__(self, req: AccessRequest, status: str, actor: Actor) -> None:
        stored = AccessRequest.objects.get(pk=req.pk).status
        self.calls.append((req.pk, status, actor.user.username, stored))
        if self.refuse is not None:
            raise self.refuse


@pytest.fixture
def handler() -> Iterator[Recorder]:
    recorder = Recorder()
    with change_kind_registered(RequestType.POLICY_CHANGE, on_decided=recorder):
        yield recorder


@pytest.fixture
def admins(make_user: Callable[..., User], workflows: None) -> dict[str, User]:
    """Four IAM admins: alice asks for the change, bob wrote the version, carol and dave may decide."""
    return {name: make_user(name, Role.IAM_ADMIN) for name in ("alice", "bob", "carol", "dave")}


def _open(admins: dict[str, User], **extra: Any) -> AccessRequest:
    values: dict[str, Any] = {
        "actor": admins["alice"],
        "type": RequestType.POLICY_CHANGE,
        "subject_label": LABEL,
        "subject_url": URL,
        "payload": {"version_id": 7, "action": "enforce"},
        "justification": "Development agents must not reach production data.",
        "excluded_reviewers": [admins["bob"]],
    }
    return services.change_request_open(**(values | extra))


@pytest.fixture
def change(admins: dict[str, User], handler: Recorder) -> AccessRequest:
    return _open(admins)


def _assigned(req: AccessRequest) -> set[str]:
    return set(StepAssignment.objects.filter(step__request=req).values_list("user__username", flat=True))


def _decide_api(api_as: Callable[[User], Any], user: User, req: AccessRequest, decision: str = "approve") -> Any:
    return api_as(user).post(
        f"/api/v1/access-requests/{req.pk}/decisions/", {"decision": decision, "comment": "ok"}, format="json"
    )


# --- The workflow ---------------------------------------------------------------------------------


def _assert_policy_change_workflow() -> None:
    (workflow,) = Workflow.objects.filter(request_type=RequestType.POLICY_CHANGE).prefetch_related("steps")
    (step,) = workflow.steps.all()
    assert workflow.risk_tier == "high" and step.rule == "any"
    assert step.pool_group is not None and step.pool_group.name == Role.IAM_ADMIN
    assert step.escalation_group is not None and step.escalation_group.name == Role.IAM_ADMIN


def test_the_seeded_policy_change_workflow_is_one_step_for_any_iam_admin(workflows: None) -> None:
    _assert_policy_change_workflow()


def test_the_data_migration_seeds_the_policy_change_workflow_and_keeps_an_existing_one(roles: None) -> None:
    migration = importlib.import_module("approvals.migrations.0008_policy_change_workflow")
    Workflow.objects.filter(request_type=RequestType.POLICY_CHANGE).delete()
    migration.seed(django_apps, None)
    _assert_policy_change_workflow()
    step = Workflow.objects.get(request_type=RequestType.POLICY_CHANGE).steps.get()
    step.sla_hours = 8
    step.save()
    migration.seed(django_apps, None)
    step.refresh_from_db()
    assert step.sla_hours == 8


def test_a_policy_change_never_borrows_the_registration_workflow(admins: dict[str, User], handler: Recorder) -> None:
    Workflow.objects.filter(request_type=RequestType.POLICY_CHANGE).delete()
    req = _open(admins)
    assert req.workflow is not None and req.workflow.request_type == RequestType.POLICY_CHANGE
    assert req.steps.get().pool_group == Group.objects.get(name=Role.IAM_ADMIN)


# --- Opening ----------------------------------------------------------------------------------------


def test_opening_assigns_the_iam_admins_except_the_requester_and_the_authors(
    change: AccessRequest, admins: dict[str, User], reviewer: User
) -> None:
    assert change.type == RequestType.POLICY_CHANGE and change.status == RequestStatus.IN_REVIEW
    assert change.integration is None and change.requester == admins["alice"]
    assert change.risk_tier == "high" and not change.requested_scopes.exists()
    assert change.subject_name == LABEL and str(change) == f"#{change.pk} Policy change — {LABEL}"
    assert change.payload == {"version_id": 7, "action": "enforce"}
    assert change.excluded_reviewer_ids == [admins["bob"].pk]
    assert _assigned(change) == {"carol", "dave"}, "IAM reviewers are not asked; the requester and author are not"


def test_opening_is_audited_with_the_requester_accountable(change: AccessRequest) -> None:
    event = AuditEvent.objects.get(action="access_request.created", target_id=str(change.pk))
    after = event.after or {}
    assert event.owner_username == "alice" and event.actor_username == "alice"
    assert after["type"] == "policy_change" and after["subject"] == LABEL and after["integration"] is None
    assert after["payload"] == {"version_id": 7, "action": "enforce"} and after["excluded_reviewers"] == ["bob"]


def test_the_assigned_iam_admins_are_emailed_the_request_link_and_its_subject(
    change: AccessRequest, admins: dict[str, User]
) -> None:
    mails = OutboundEmail.objects.filter(key__startswith=f"approval-step-{change.steps.get().pk}-assigned-")
    assert {mail.recipient.username for mail in mails if mail.recipient} == {"carol", "dave"}
    mail = mails.get(recipient=admins["carol"])
    assert mail.subject == f"Waiting for your review: Policy change for {LABEL}"
    assert f"/approvals/requests/{change.pk}/" in mail.body_text and URL in mail.body_text
    assert f'{URL}">{LABEL}</a>' in mail.body_html
    assert "Requested scopes" not in mail.body_text


def test_the_plain_text_emails_carry_the_subject_and_comment_as_written(
    admins: dict[str, User], handler: Recorder
) -> None:
    label = "Runtime policy v9 — R&D agents' limits"
    req = _open(admins, subject_label=label, payload={"version_id": 9})
    services.request_decide(actor=admins["carol"], request=req, decision="reject", comment="Don't & won't.")
    assigned = OutboundEmail.objects.get(recipient=admins["carol"], key__startswith="approval-step-")
    decided = OutboundEmail.objects.get(recipient=admins["alice"], key__startswith="approval-outcome-")
    assert f"for {label} (High risk)" in assigned.body_text and f"What changes: {label}" in assigned.body_text
    assert f"for {label}." in decided.body_text and "Reason: Don't & won't." in decided.body_text
    assert "R&amp;D agents&#x27; limits" in assigned.body_html, "the HTML part stays escaped"


def test_a_second_open_request_for_the_same_version_is_a_conflict(
    change: AccessRequest, admins: dict[str, User], handler: Recorder
) -> None:
    with pytest.raises(Conflict, match=f"#{change.pk}"):
        _open(admins, payload={"version_id": 7, "action": "enforce"})
    _open(admins, payload={"version_id": 8, "action": "enforce"}, subject_label="Runtime policy v8")
    services.request_decide(actor=admins["carol"], request=change, decision="reject", comment="Not yet.")
    again = _open(admins)
    assert again.pk != change.pk and again.status == RequestStatus.IN_REVIEW


def test_the_database_holds_one_open_request_per_version_whoever_writes(change: AccessRequest) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        AccessRequest.objects.create(
            type=RequestType.POLICY_CHANGE, requester=change.requester, risk_tier="high", subject_key="7"
        )


def test_a_policy_change_has_no_integration_and_any_other_request_has_one(
    change: AccessRequest, make_integration: Callable[..., Any]
) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        AccessRequest.objects.create(type=RequestType.REGISTRATION, requester=change.requester, risk_tier="low")
    with pytest.raises(IntegrityError), transaction.atomic():
        AccessRequest.objects.create(
            type=RequestType.POLICY_CHANGE,
            integration=make_integration(),
            requester=change.requester,
            risk_tier="high",
        )


@pytest.mark.parametrize(
    ("extra", "field_name"),
    [
        ({"subject_label": "  "}, "subject_label"),
        ({"subject_label": "v7\nBcc: everyone"}, "subject_label"),
        ({"subject_url": "//evil.example/"}, "subject_url"),
        ({"subject_url": "javascript:alert(1)"}, "subject_url"),
        ({"subject_url": "/\\evil.example"}, "subject_url"),
        ({"payload": {"action": "enforce"}}, "payload"),
        ({"payload": {"version_id": 7, "at": object()}}, "payload"),
        ({"payload": {"version_id": "7" * 101}}, "payload"),
        ({"type": RequestType.REGISTRATION}, "type"),
    ],
)
def test_bad_input_is_refused_and_opens_nothing(
    admins: dict[str, User], handler: Recorder, extra: dict[str, Any], field_name: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _open(admins, **extra)
    assert field_name in refused.value.errors
    assert not AccessRequest.objects.exists()


def test_the_generic_request_service_refuses_a_change_type_instead_of_a_database_error(
    admins: dict[str, User], make_integration: Callable[..., Any], catalog: dict[str, Any]
) -> None:
    integration = make_integration(status="active")
    with pytest.raises(ValidationFailed) as refused:
        services.request_open(
            actor=admins["alice"], integration=integration, type=RequestType.POLICY_CHANGE, scopes=[catalog["mail"]]
        )
    assert "type" in refused.value.errors and not AccessRequest.objects.exists()


def test_unapplying_the_migration_refuses_by_name_while_policy_changes_exist(
    admins: dict[str, User], handler: Recorder
) -> None:
    migration = importlib.import_module("approvals.migrations.0007_policy_change_requests")
    refuse: Callable[[Any, Any], None] = migration.refuse_to_drop_change_requests
    refuse(django_apps, None)  # nothing to lose: it may go
    _open(admins)
    with pytest.raises(IrreversibleError, match="1 access request"):
        refuse(django_apps, None)
    # The guard is the last operation, so unapplying runs it before the integration turns NOT NULL.
    guard = migration.Migration.operations[-1]
    assert isinstance(guard, RunPython) and guard.reverse_code is refuse


def test_an_auditor_cannot_ask_for_a_change(admins: dict[str, User], handler: Recorder, auditor: User) -> None:
    with pytest.raises(NotAllowed):
        _open(admins, actor=auditor)


def test_without_a_registered_handler_nothing_is_opened(admins: dict[str, User]) -> None:
    # Whatever the installed apps registered is back after the block.
    with change_kind_registered(RequestType.POLICY_CHANGE, on_decided=Recorder()):
        unregister_change_kind(RequestType.POLICY_CHANGE)
        with pytest.raises(Conflict, match="Nothing is set up"):
            _open(admins)
    assert not AccessRequest.objects.exists()


def test_the_registry_takes_change_types_only_and_restores_what_a_test_replaced() -> None:
    with pytest.raises(ValueError, match="not a change request type"):
        register_change_kind(RequestType.REGISTRATION, on_decided=Recorder())
    before = change_handler(RequestType.POLICY_CHANGE)
    replacement = Recorder()
    with change_kind_registered(RequestType.POLICY_CHANGE, on_decided=replacement):
        assert change_handler(RequestType.POLICY_CHANGE) is replacement
    assert change_handler(RequestType.POLICY_CHANGE) is before


# --- Separation of duties ---------------------------------------------------------------------------


def test_the_author_in_the_iam_admin_group_cannot_decide_even_through_the_service(
    change: AccessRequest, admins: dict[str, User], api_as: Callable[[User], Any], handler: Recorder
) -> None:
    with pytest.raises(NotAllowed, match="wrote or edited"):
        services.request_decide(actor=admins["bob"], request=change, decision="approve")
    with pytest.raises(NotAllowed, match="your own request"):
        services.request_decide(actor=admins["alice"], request=change, decision="approve")
    response = _decide_api(api_as, admins["bob"], change)
    assert response.status_code == 403 and response["Content-Type"].startswith("application/problem+json")
    assert not Decision.objects.filter(request=change).exists() and handler.calls == []


def test_when_only_excluded_people_are_in_the_pool_it_escalates_to_the_other_iam_admins(
    admins: dict[str, User], handler: Recorder, make_user: Callable[..., User]
) -> None:
    # The pool is changed to a group holding only the author: nobody eligible, so it escalates.
    authors = Group.objects.create(name="policy_authors")
    admins["bob"].groups.add(authors)
    step = Workflow.objects.get(request_type=RequestType.POLICY_CHANGE).steps.get()
    step.pool_group = authors
    step.save()
    req = _open(admins)
    active = req.steps.get(status=StepStatus.ACTIVE)
    assert active.escalated_at is not None
    assert _assigned(req) == {"carol", "dave"}, "the escalation skips the requester and the author"
    assert set(active.assignments.values_list("via", flat=True)) == {"escalation"}
    assert OutboundEmail.objects.filter(recipient=admins["carol"], key__startswith="approval-escalated-").exists()
    assert not OutboundEmail.objects.filter(recipient=admins["bob"]).exists()


def test_an_sla_escalation_never_assigns_the_author(change: AccessRequest, admins: dict[str, User]) -> None:
    step = change.steps.get(status=StepStatus.ACTIVE)
    assert step.due_at is not None
    with time_machine.travel(step.due_at + timedelta(minutes=5)):
        assert tasks.sla_sweep()["escalated"] == 1
    step.refresh_from_db()
    assert step.escalated_at is not None and _assigned(change) == {"carol", "dave"}
    event = AuditEvent.objects.get(action="access_request.escalated", target_id=str(change.pk))
    assert event.actor_kind == "system" and event.owner_username == "alice"


def test_reviewers_are_reminded_about_the_change_at_half_its_sla(change: AccessRequest) -> None:
    step = change.steps.get(status=StepStatus.ACTIVE)
    assert step.activated_at is not None
    with time_machine.travel(step.activated_at + step.sla / 2 + timedelta(minutes=1)):
        assert tasks.sla_sweep()["reminded"] == 1
    reminders = OutboundEmail.objects.filter(key__startswith=f"approval-reminder-{step.pk}-")
    assert {mail.subject for mail in reminders} == {
        f"Still waiting for your review: {LABEL} (due {step.due_at:%d %b %H:%M} UTC)"
    }


# --- Deciding ----------------------------------------------------------------------------------------


def test_a_second_iam_admin_approves_and_the_handler_hears_it_once_inside_the_decision(
    change: AccessRequest, admins: dict[str, User], handler: Recorder
) -> None:
    services.request_decide(actor=admins["carol"], request=change, decision="approve", comment="Reviewed the diff.")
    change.refresh_from_db()
    assert change.status == RequestStatus.APPROVED and change.closed_at is not None
    # Called once, with the request already approved in the same (not yet committed) transaction.
    assert handler.calls == [(change.pk, "approved", "carol", "approved")]
    assert not StepAssignment.objects.filter(step__request=change, is_open=True).exists()
    event = AuditEvent.objects.get(action="access_request.approved", target_id=str(change.pk))
    assert event.owner_username == "alice" and (event.after or {}).get("granted") is None
    mail = OutboundEmail.objects.get(recipient=admins["alice"], key__startswith="approval-outcome-")
    assert LABEL in mail.subject


def test_a_handler_that_refuses_rolls_the_whole_decision_back(
    change: AccessRequest, admins: dict[str, User], handler: Recorder
) -> None:
    handler.refuse = Conflict("Version 7 was edited after it was submitted.")
    with pytest.raises(Conflict, match="edited after"):
        services.request_decide(actor=admins["carol"], request=change, decision="approve")
    change.refresh_from_db()
    assert change.status == RequestStatus.IN_REVIEW and change.closed_at is None
    assert not Decision.objects.filter(request=change).exists()
    assert change.steps.get().status == StepStatus.ACTIVE
    assert StepAssignment.objects.filter(step__request=change, is_open=True).count() == 2
    assert not AuditEvent.objects.filter(
        target_id=str(change.pk), action__in=["access_request.step_decided", "access_request.approved"]
    ).exists()
    assert not OutboundEmail.objects.filter(key__startswith="approval-outcome-").exists()
    assert len(handler.calls) == 1


def test_a_handler_refusal_reaches_the_reviewer_as_problem_details(
    change: AccessRequest, admins: dict[str, User], handler: Recorder, api_as: Callable[[User], Any]
) -> None:
    handler.refuse = Conflict("Version 7 was edited after it was submitted.")
    response = _decide_api(api_as, admins["carol"], change)
    assert response.status_code == 409 and response["Content-Type"].startswith("application/problem+json")
    assert "edited after" in response.json()["detail"]
    assert not Decision.objects.filter(request=change).exists()


def test_a_handler_refusal_reaches_the_reviewer_on_the_page(
    change: AccessRequest, admins: dict[str, User], handler: Recorder, web_as: Callable[[User], Any]
) -> None:
    handler.refuse = Conflict("Version 7 was edited after it was submitted.")
    step = change.steps.get()
    page = f"/approvals/requests/{change.pk}/"
    response = web_as(admins["carol"]).post(
        f"/approvals/steps/{step.pk}/decide/", {"decision": "approve", "comment": "", "next": page}
    )
    assert response.status_code == 302 and response["Location"] == page
    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        "Version 7 was edited after it was submitted."
    ]
    change.refresh_from_db()
    assert change.status == RequestStatus.IN_REVIEW


def test_the_decision_form_of_the_request_page_approves_it(
    change: AccessRequest, admins: dict[str, User], handler: Recorder, web_as: Callable[[User], Any]
) -> None:
    step = change.steps.get()
    response = web_as(admins["dave"]).post(
        f"/approvals/steps/{step.pk}/decide/", {"decision": "approve", "comment": "Fine."}
    )
    assert response.status_code == 302
    change.refresh_from_db()
    assert change.status == RequestStatus.APPROVED and handler.calls == [(change.pk, "approved", "dave", "approved")]


def test_a_rejection_hands_rejected_to_the_handler(
    change: AccessRequest, admins: dict[str, User], handler: Recorder
) -> None:
    services.request_decide(actor=admins["carol"], request=change, decision="reject", comment="Too broad.")
    change.refresh_from_db()
    assert change.status == RequestStatus.REJECTED
    assert handler.calls == [(change.pk, "rejected", "carol", "rejected")]


def test_changes_cannot_be_requested_on_a_policy_change(
    change: AccessRequest, admins: dict[str, User], handler: Recorder
) -> None:
    assert "request_changes" not in dict(decision_choices(change))
    with pytest.raises(ValidationFailed, match="changes cannot be requested"):
        services.request_decide(actor=admins["carol"], request=change, decision="request_changes", comment="Edit.")
    assert change.status == RequestStatus.IN_REVIEW and handler.calls == []


def test_scopes_or_an_expiry_on_a_policy_change_approval_are_refused(
    change: AccessRequest, admins: dict[str, User], handler: Recorder, catalog: dict[str, Any]
) -> None:
    with pytest.raises(Unprocessable, match="grants no scope"):
        services.request_decide(
            actor=admins["carol"], request=change, decision="approve", approved_scopes=[catalog["mail"]]
        )
    with pytest.raises(Unprocessable, match="nothing that expires"):
        services.request_decide(
            actor=admins["carol"],
            request=change,
            decision="approve",
            expires_at=change.created_at + timedelta(days=1),
        )
    assert not Decision.objects.filter(request=change).exists() and handler.calls == []


def test_the_requester_withdraws_and_the_handler_hears_it(
    change: AccessRequest, admins: dict[str, User], handler: Recorder, api_as: Callable[[User], Any]
) -> None:
    assert api_as(admins["carol"]).post(f"/api/v1/access-requests/{change.pk}/withdraw/", {}).status_code == 403
    response = api_as(admins["alice"]).post(
        f"/api/v1/access-requests/{change.pk}/withdraw/", {"reason": "Wrong version."}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    assert handler.calls == [(change.pk, "withdrawn", "alice", "withdrawn")]


def test_a_cancelled_change_request_tells_its_handler(
    change: AccessRequest, admins: dict[str, User], handler: Recorder, outsider: User, auditor: User
) -> None:
    for refused in (outsider, auditor):
        with pytest.raises(NotAllowed):
            services.change_request_cancel(actor=refused, request=change, reason="Edited.")
    services.change_request_cancel(actor=Actor.system(on_behalf_of=admins["alice"]), request=change, reason="Edited.")
    change.refresh_from_db()
    assert change.status == RequestStatus.CANCELLED
    assert handler.calls == [(change.pk, "cancelled", "system", "cancelled")]
    assert not StepAssignment.objects.filter(step__request=change, is_open=True).exists()


# --- Who sees it ------------------------------------------------------------------------------------


def test_outsiders_and_unassigned_reviewers_get_404_on_its_page_and_api(
    change: AccessRequest, outsider: User, reviewer: User, web_as: Callable[[User], Any], api_as: Callable[[User], Any]
) -> None:
    for user in (outsider, reviewer):
        assert web_as(user).get(f"/approvals/requests/{change.pk}/").status_code == 404
        assert api_as(user).get(f"/api/v1/access-requests/{change.pk}/").status_code == 404
        decided = _decide_api(api_as, user, change)
        assert decided.status_code == 404
        listed = api_as(user).get("/api/v1/access-requests/").json()
        assert change.pk not in [row["id"] for row in listed["results"]]
    step = change.steps.get()
    assert web_as(reviewer).post(f"/approvals/steps/{step.pk}/decide/", {"decision": "approve"}).status_code == 404


def test_the_requester_the_deciders_iam_admins_and_auditors_see_it(
    change: AccessRequest,
    admins: dict[str, User],
    auditor: User,
    make_user: Callable[..., User],
    api_as: Callable[[User], Any],
) -> None:
    for user in (admins["alice"], admins["bob"], admins["carol"], auditor):
        assert api_as(user).get(f"/api/v1/access-requests/{change.pk}/").status_code == 200
    # A reviewer outside the IAM admins sees it once assigned a step (as a custom pool would).
    assigned = make_user("rita", Role.REVIEWER, Pool.IAM_REVIEWERS)
    assert api_as(assigned).get(f"/api/v1/access-requests/{change.pk}/").status_code == 404
    StepAssignment.objects.create(step=change.steps.get(), user=assigned, due_at=change.steps.get().due_at)
    assert api_as(assigned).get(f"/api/v1/access-requests/{change.pk}/").status_code == 200


def test_a_staff_reviewer_finds_no_policy_change_in_the_admin(
    change: AccessRequest,
    admins: dict[str, User],
    make_user: Callable[..., User],
    iam_admin: User,
    web_as: Callable[[User], Any],
) -> None:
    services.request_decide(actor=admins["carol"], request=change, decision="approve")
    lists = ["/admin/approvals/accessrequest/", "/admin/approvals/requeststep/", "/admin/approvals/decision/"]
    staff_reviewer = web_as(make_user("stan", Role.REVIEWER, is_staff=True))
    for path in lists:
        response = staff_reviewer.get(path)
        assert response.status_code == 200 and LABEL not in response.content.decode(), path
    detail = f"/admin/approvals/accessrequest/{change.pk}/change/"
    assert staff_reviewer.get(detail).status_code == 302, "as for a row that does not exist"
    staff_admin = web_as(iam_admin)
    for path in lists:
        assert LABEL in staff_admin.get(path).content.decode(), path
    assert staff_admin.get(detail).status_code == 200


def test_the_api_detail_shows_the_subject_and_keeps_every_field(
    change: AccessRequest, admins: dict[str, User], api_as: Callable[[User], Any]
) -> None:
    body = api_as(admins["carol"]).get(f"/api/v1/access-requests/{change.pk}/").json()
    assert body["integration"] is None and body["integration_name"] is None
    assert body["subject_label"] == LABEL and body["subject_url"] == URL
    assert body["type"] == "policy_change" and body["requested_scopes"] == [] and body["risk_tier"] == "high"
    for name in ("id", "status", "requester", "ticket_ref", "justification", "round", "created_at", "steps"):
        assert name in body
    (step,) = body["steps"]
    assert step["name"] == "IAM admin approval" and set(step["reviewers"]) == {"carol", "dave"}


def test_its_webhook_representation_has_no_integration(change: AccessRequest) -> None:
    data = webhook_representation(str(change.pk))
    assert data is not None and data["integration"] is None and data["subject_label"] == LABEL


# --- Pages -------------------------------------------------------------------------------------------


def test_the_queue_shows_the_change_with_its_subject_and_no_scopes(
    change: AccessRequest, admins: dict[str, User], web_as: Callable[[User], Any]
) -> None:
    response = web_as(admins["carol"]).get("/approvals/queue/")
    html = response.content.decode()
    assert response.status_code == 200
    assert LABEL in html and f'href="{URL}"' in html
    assert "Requested scopes" not in html and "request_changes" not in html
    assert 'name="steps"' not in html, "never offered for bulk approval"
    assert LABEL in web_as(admins["carol"]).get("/approvals/queue/?tier=high&type=policy_change").content.decode()
    assert LABEL not in web_as(admins["carol"]).get("/approvals/queue/?tier=low").content.decode()


def test_the_request_page_shows_the_subject_and_a_decision_form_without_scopes(
    change: AccessRequest, admins: dict[str, User], web_as: Callable[[User], Any]
) -> None:
    response = web_as(admins["carol"]).get(f"/approvals/requests/{change.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert f"Policy change for {LABEL}" in html and f'href="{URL}"' in html
    assert "Submit decision" in html and 'name="approved_scopes"' not in html and 'name="expires_at"' not in html
    assert 'value="request_changes"' not in html and "Grants from this request" not in html
    author_page = web_as(admins["bob"]).get(f"/approvals/requests/{change.pk}/").content.decode()
    assert "Submit decision" not in author_page and "wrote or edited" in author_page


def test_the_request_list_and_my_requests_panel_show_the_subject(
    change: AccessRequest, admins: dict[str, User], web_as: Callable[[User], Any]
) -> None:
    admins["alice"].groups.add(Group.objects.get(name=Role.BUSINESS_USER))
    listed = web_as(admins["alice"]).get("/approvals/requests/?mine=1")
    assert listed.status_code == 200 and LABEL in listed.content.decode()
    home = web_as(admins["alice"]).get("/")
    assert home.status_code == 200 and LABEL in home.content.decode()


def _queries(client: Any, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


@pytest.mark.parametrize("path", ["/approvals/queue/", "/approvals/requests/", "/api/v1/access-requests/"])
def test_lists_with_policy_changes_run_a_fixed_number_of_queries(
    change: AccessRequest,
    admins: dict[str, User],
    handler: Recorder,
    web_as: Callable[[User], Any],
    make_integration: Callable[..., Any],
    submit: Callable[..., Any],
    reviewer: User,
    path: str,
) -> None:
    client = web_as(admins["carol"])
    _queries(client, path)  # warm the per-process caches
    small = _queries(client, path)
    for number in range(8, 12):
        _open(admins, payload={"version_id": number, "action": "enforce"}, subject_label=f"Runtime policy v{number}")
    submit(make_integration("Mixed in"))
    assert _queries(client, path) == small
