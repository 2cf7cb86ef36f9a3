"""Reads of approvals. What a person may see is always decided here, for that person: pages and
the API fetch through these, so an unseen request answers 404. Reads that the services and the
pages share (the current step, the default expiry, whether someone may decide) live here too."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import CharField, Prefetch, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from approvals.models import (
    CHANGE_TYPES,
    DEFAULT_EXPIRY_DAYS,
    GRANT_SOURCE_TYPE,
    OPEN_STATUSES,
    AccessRequest,
    Decision,
    GrantExpiryPolicy,
    RequestStep,
    RequestType,
    StepAssignment,
    StepStatus,
    Workflow,
    WorkflowStep,
)
from approvals.permissions import can_read_workflows
from governance.models import User
from governance.roles import is_auditor, is_iam_admin, sees_everything
from inventory.choices import GrantStatus
from inventory.models import Grant, Integration, Scope
from inventory.selectors import owned_by

# --- Requests -----------------------------------------------------------------------------------


def access_requests_for(user: Any) -> QuerySet[AccessRequest]:
    """Requesters and owners see theirs; IAM admins and auditors see all; reviewers see every
    request about an integration. A change request (a policy change) is the IAM admins' and
    auditors' business: other people see one only when they asked for it or were assigned a
    step of it."""
    qs = AccessRequest.objects.all()
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if is_iam_admin(user) or is_auditor(user):
        return qs
    # People asked to decide (a requester's manager, a resource owner without the reviewer role)
    # see the requests they were assigned, even after deciding them.
    assigned = StepAssignment.objects.filter(user=user).values("step__request_id")
    theirs = Q(requester=user) | Q(pk__in=assigned)
    if sees_everything(user):
        return qs.filter(~Q(type__in=CHANGE_TYPES) | theirs)
    return qs.filter(theirs | owned_by(user, "integration__"))


def access_requests_listed(user: Any) -> QuerySet[AccessRequest]:
    """For lists: what each row shows, in a fixed number of queries."""
    return access_requests_for(user).select_related("integration", "requester").prefetch_related("requested_scopes")


def access_request_detail(user: Any) -> QuerySet[AccessRequest]:
    return with_detail(access_requests_listed(user))


def with_detail(qs: QuerySet[AccessRequest]) -> QuerySet[AccessRequest]:
    """What the detail representation reads (steps, assignments, decisions), in fixed queries."""
    return (
        qs.select_related("integration", "requester")
        .prefetch_related("requested_scopes")
        .prefetch_related(
            Prefetch(
                "steps",
                queryset=RequestStep.objects.select_related("decided_by", "pool_group").prefetch_related(
                    Prefetch("assignments", queryset=StepAssignment.objects.select_related("user")),
                    Prefetch(
                        "decisions",
                        queryset=Decision.objects.select_related("reviewer").prefetch_related("approved_scopes"),
                    ),
                ),
            )
        )
    )


def steps_for(user: Any) -> QuerySet[RequestStep]:
    """Steps of the requests ``user`` may see, with their request and integration."""
    return RequestStep.objects.select_related("request__integration").filter(request__in=access_requests_for(user))


def current_step(req: AccessRequest) -> RequestStep | None:
    """The active step of the request's current round (the first by order)."""
    return RequestStep.objects.filter(request=req, round=req.round, status=StepStatus.ACTIVE).order_by("order").first()


def step_may_decide(user: User, req: AccessRequest, step: RequestStep) -> str | None:
    """Why ``user`` may not decide ``step`` (a message), or None when they may. Separation of
    duties: nobody decides a step of a request for an integration they own or requested, and
    nobody decides two steps of the same round, nor a change request whose subject they wrote
    (its ``excluded_reviewer_ids``), whatever group they are in. The decision service checks it
    again under lock."""
    if req.integration is not None and user.pk in req.integration.owner_ids():
        return "You own this integration: separation of duties forbids deciding its requests."
    if user.pk == req.requester_id:
        return "You requested this: separation of duties forbids deciding your own request."
    if user.pk in {int(pk) for pk in req.excluded_reviewer_ids or ()}:
        return "You wrote or edited what this request changes: separation of duties forbids deciding it."
    other = (
        Decision.objects.filter(request=req, step__round=step.round, reviewer=user)
        .exclude(step=step)
        .select_related("step")
        .first()
    )
    if other is not None:
        return f"You already decided the step “{other.step.name}” of this request: another person must decide this one."
    if not StepAssignment.objects.filter(step=step, user=user).exists():
        return "This step is not assigned to you."
    return None


def grants_from_request(req: AccessRequest) -> QuerySet[Grant]:
    """The grants an approval of ``req`` created, whatever became of them since."""
    return Grant.objects.filter(source_type=GRANT_SOURCE_TYPE, source_id=str(req.pk)).select_related("scope")


ELEVATIONS_SHOWN = 20  # the most recent elevations an integration's page lists


@dataclass(frozen=True)
class ElevationRow:
    """One just-in-time elevation as the integration's page shows it."""

    request: AccessRequest
    scope_codes: list[str]
    decided_by: User | None
    grant: Grant | None


def elevations_of(user: Any, integration: Integration, *, limit: int = ELEVATIONS_SHOWN) -> list[ElevationRow]:
    """The most recent just-in-time elevations of ``integration`` that ``user`` may see, newest
    first, with who decided each and the grant its approval made (four queries, however many)."""
    requests = list(
        access_requests_for(user)
        .filter(integration=integration, type=RequestType.JIT_ELEVATION)
        .prefetch_related(
            "requested_scopes",
            Prefetch("steps", queryset=RequestStep.objects.select_related("decided_by").order_by("round", "order")),
        )
        .order_by("-created_at", "-id")[:limit]
    )
    grants = {
        grant.source_id: grant
        for grant in Grant.objects.filter(
            source_type=GRANT_SOURCE_TYPE, source_id__in=[str(req.pk) for req in requests]
        ).order_by("granted_at", "id")
    }
    rows = []
    for req in requests:
        deciders = [step.decided_by for step in req.steps.all() if step.round == req.round and step.decided_by]
        rows.append(
            ElevationRow(
                request=req,
                scope_codes=[scope.code for scope in req.requested_scopes.all()],
                decided_by=deciders[-1] if deciders else None,
                grant=grants.get(str(req.pk)),
            )
        )
    return rows


# --- The reviewer queue -------------------------------------------------------------------------


def assigned_to(user: Any) -> Q:
    """Requests with a step waiting for ``user``'s decision (for ``assigned_to_me``)."""
    return Q(pk__in=StepAssignment.objects.filter(user=user, is_open=True).values("step__request_id"))


def queue_for(user: Any, *, type: str = "", tier: str = "", overdue: bool = False) -> QuerySet[StepAssignment]:
    """What waits for ``user``'s decision, oldest SLA first. Group pools are resolved into names
    when a step starts, so "my groups" is in the assignments too."""
    qs = StepAssignment.objects.filter(user=user, is_open=True)
    if type:
        qs = qs.filter(step__request__type=type)
    if tier:
        # A change request has no integration: its own tier stands in.
        qs = qs.filter(
            Q(step__request__integration__risk_tier=tier)
            | Q(step__request__integration__isnull=True, step__request__risk_tier=tier)
        )
    if overdue:
        qs = qs.filter(due_at__lt=timezone.now())
    return qs.order_by("due_at", "id")


def queue_listed(user: Any, *, type: str = "", tier: str = "", overdue: bool = False) -> QuerySet[StepAssignment]:
    """The queue with what each item shows (request, integration, requester, scopes and their
    systems), in a fixed number of queries."""
    return (
        queue_for(user, type=type, tier=tier, overdue=overdue)
        .select_related("step__request__integration", "step__request__requester")
        .prefetch_related(Prefetch("step__request__requested_scopes", queryset=Scope.objects.select_related("system")))
    )


def held_scope_codes(integration_ids: Iterable[int]) -> dict[int, set[str]]:
    """The codes of the scopes each integration holds now (active grants), in one query."""
    held: dict[int, set[str]] = {}
    for integration_id, code in Grant.objects.filter(
        integration_id__in=set(integration_ids), status=GrantStatus.ACTIVE
    ).values_list("integration_id", "scope__code"):
        held.setdefault(integration_id, set()).add(code)
    return held


def queue_open_count(user: Any) -> int:
    return StepAssignment.objects.filter(user=user, is_open=True).count()


def overdue_count(user: Any, now: datetime | None = None) -> int:
    return StepAssignment.objects.filter(user=user, is_open=True, due_at__lt=now or timezone.now()).count()


def my_open_requests(user: Any) -> QuerySet[AccessRequest]:
    """The open requests ``user`` asked for, newest first."""
    return access_requests_listed(user).filter(requester=user, status__in=OPEN_STATUSES).order_by("-created_at")


# --- Workflows and grants -----------------------------------------------------------------------


def workflows_for(user: Any) -> QuerySet[Workflow]:
    """IAM admins and auditors read the workflows; everyone else sees none."""
    if not can_read_workflows(user):
        return Workflow.objects.none()
    return Workflow.objects.prefetch_related(
        Prefetch("steps", queryset=WorkflowStep.objects.select_related("pool_group").order_by("order"))
    )


def workflow_steps_for(user: Any) -> QuerySet[WorkflowStep]:
    if not can_read_workflows(user):
        return WorkflowStep.objects.none()
    return WorkflowStep.objects.select_related("workflow")


def expiry_policies() -> QuerySet[GrantExpiryPolicy]:
    return GrantExpiryPolicy.objects.all()


def workflow_for(request_type: str, tier: str) -> Workflow | None:
    """The workflow of this type and tier; a type without its own falls back to registration's,
    except a change request (its reviewers are never the registration's)."""
    found = Workflow.objects.filter(request_type=request_type, risk_tier=tier).first()
    if found is None and request_type != RequestType.REGISTRATION and request_type not in CHANGE_TYPES:
        found = Workflow.objects.filter(request_type=RequestType.REGISTRATION, risk_tier=tier).first()
    return found


def default_expiry_days(tier: str) -> int:
    """How long a grant for an integration of ``tier`` lasts unless a reviewer sets it shorter."""
    days = GrantExpiryPolicy.objects.filter(risk_tier=tier).values_list("days", flat=True).first()
    return days if days is not None else DEFAULT_EXPIRY_DAYS.get(tier, 90)


def elevation_grants() -> Q:
    """Grants made by approving a just-in-time elevation (matched on the request that made them)."""
    elevation_ids = (
        AccessRequest.objects.filter(type=RequestType.JIT_ELEVATION)
        .annotate(id_text=Cast("pk", output_field=CharField()))
        .values("id_text")
    )
    return Q(source_type=GRANT_SOURCE_TYPE, source_id__in=elevation_ids)


def scopes_held_by(integration: Integration) -> QuerySet[Scope]:
    """The scopes ``integration`` holds now through active grants, which a renewal or a re-review
    asks for again. An elevation's grant is left out: it ends by itself within the hour it was
    given for, and approving it again would turn it into a standing grant of the tier's lifetime."""
    held = Grant.objects.filter(integration=integration, status=GrantStatus.ACTIVE).exclude(elevation_grants())
    return Scope.objects.filter(pk__in=held.values("scope_id"))


def grants_to_renew(integration: Integration) -> QuerySet[Grant]:
    """The active grants a renewal of ``integration`` would ask for (not an elevation's, see
    ``scopes_held_by``), soonest to expire first."""
    return (
        integration.grants.filter(status=GrantStatus.ACTIVE)
        .exclude(elevation_grants())
        .select_related("scope")
        .order_by("expires_at")
    )
