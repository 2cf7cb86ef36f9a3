"""Reads of approvals. What a person may see is always decided here, for that person: pages and
the API fetch through these, so an unseen request answers 404. Reads that the services and the
pages share (the current step, the default expiry, whether someone may decide) live here too."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import CharField, F, Prefetch, Q, QuerySet
from django.db.models.functions import Cast, Coalesce, Lower
from django.utils import timezone

from approvals.models import (
    CHANGE_TYPES,
    DEFAULT_EXPIRY_DAYS,
    GRANT_SOURCE_TYPE,
    OPEN_STATUSES,
    AccessRequest,
    Decision,
    DecisionKind,
    Delegation,
    GrantExpiryPolicy,
    PoolKind,
    RequestStep,
    RequestType,
    StepAssignment,
    StepAssignmentUserObjectPermission,
    StepStatus,
    Workflow,
    WorkflowStep,
)
from approvals.permissions import can_read_workflows, can_reassign
from governance.models import User
from governance.roles import Pool, Role, is_auditor, is_iam_admin, role_names, sees_everything
from inventory.choices import RISK_TIER_ORDER, GrantStatus
from inventory.models import Grant, Integration, Scope
from inventory.selectors import delegated_to, integration_actor_ids, owned_by

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
    # see the requests they were assigned, even after deciding them; a delegate those they stand
    # in for now, and those they decided for someone.
    assigned = StepAssignment.objects.filter(user=user).values("step__request_id")
    stood_in = stood_in_assignments(user).values("step__request_id")
    decided = Decision.objects.filter(reviewer=user).values("request_id")
    theirs = Q(requester=user) | Q(pk__in=assigned) | Q(pk__in=stood_in) | Q(pk__in=decided)
    if sees_everything(user):
        return qs.filter(~Q(type__in=CHANGE_TYPES) | theirs)
    return qs.filter(theirs | owned_by(user, "integration__") | delegated_to(user, "integration__"))


def access_requests_listed(user: Any) -> QuerySet[AccessRequest]:
    """For lists: what each row shows, in a fixed number of queries."""
    return access_requests_for(user).select_related("integration", "requester").prefetch_related("requested_scopes")


def access_request_detail(user: Any) -> QuerySet[AccessRequest]:
    return with_detail(access_requests_listed(user))


def access_request_page(user: Any) -> QuerySet[AccessRequest]:
    """For the request page: the detail, and what a reviewer judges it by (the integration's
    owners and workload binding), in a fixed number of queries."""
    return with_detail(access_requests_listed(user)).select_related(
        "integration__business_owner", "integration__technical_owner", "integration__workload_binding__issuer"
    )


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
                        queryset=Decision.objects.select_related("reviewer", "on_behalf_of").prefetch_related(
                            "approved_scopes"
                        ),
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


# What separation of duties says, for the person deciding and, in a stand-in's words, for the
# reviewer a delegate decides for: (as themselves, as the person stood in for).
_SOD_REFUSALS = {
    "owner": (
        "You own this integration: separation of duties forbids deciding its requests.",
        "{name}, whom you stand in for, owns this integration: separation of duties forbids deciding its requests.",
    ),
    "co_owner": (
        "You are a co-owner of this integration: separation of duties forbids deciding its requests.",
        "{name}, whom you stand in for, is a co-owner of this integration: separation of duties forbids "
        "deciding its requests.",
    ),
    "requester": (
        "You requested this: separation of duties forbids deciding your own request.",
        "{name}, whom you stand in for, requested this: separation of duties forbids deciding it.",
    ),
    "author": (
        "You wrote or edited what this request changes: separation of duties forbids deciding it.",
        "{name}, whom you stand in for, wrote or edited what this request changes: separation of duties "
        "forbids deciding it.",
    ),
    "other_step": (
        "You already decided the step “{step}” of this request: another person must decide this one.",
        "{name}, whom you stand in for, already decided the step “{step}” of this request: another person "
        "must decide this one.",
    ),
}


def sod_refusal(person: User, req: AccessRequest, step: RequestStep, *, stand_in: bool) -> str | None:
    """Why separation of duties keeps ``person`` out of ``step``, or None. A decision made by a
    delegate counts against both the delegate and the person they stood in for."""
    which = 1 if stand_in else 0
    reason = ""
    other_step = ""
    integration = req.integration
    if integration is not None and person.pk in integration.owner_ids():
        reason = "owner"
    elif integration is not None and person.pk in integration_actor_ids(integration):
        reason = "co_owner"
    elif person.pk == req.requester_id:
        reason = "requester"
    elif person.pk in {int(pk) for pk in req.excluded_reviewer_ids or ()}:
        reason = "author"
    else:
        other = (
            Decision.objects.filter(Q(reviewer=person) | Q(on_behalf_of=person), request=req, step__round=step.round)
            .exclude(step=step)
            .select_related("step")
            .first()
        )
        if other is not None:
            reason, other_step = "other_step", other.step.name
    return _SOD_REFUSALS[reason][which].format(name=person.label, step=other_step) if reason else None


def deciding_assignment(user: User, step: RequestStep) -> StepAssignment | None:
    """The assignment through which ``user`` would decide ``step``: their own (open, decided,
    or moved away by an IAM admin), else the open assignment of a reviewer they stand in for —
    the first by id: a delegation never gives one person a second decision on a step."""
    own = StepAssignment.objects.filter(step=step, user=user).select_related("reassigned_to").first()
    if own is not None:
        return own
    return stood_in_assignments(user).filter(step=step).select_related("user").order_by("id").first()


def step_may_decide(user: User, req: AccessRequest, step: RequestStep) -> str | None:
    """Why ``user`` may not decide ``step`` (a message), or None when they may. Separation of
    duties: nobody decides a step of a request for an integration they own, co-own or
    requested, and nobody decides two steps of the same round, nor a change request whose
    subject they wrote (its ``excluded_reviewer_ids``), whatever group they are in. A delegate
    deciding for an absent reviewer passes these rules as themselves and as that reviewer. The
    decision service checks it again under lock."""
    refusal = sod_refusal(user, req, step, stand_in=False)
    if refusal is not None:
        return refusal
    acting = deciding_assignment(user, step)
    if acting is None:
        return "This step is not assigned to you."
    if acting.reassigned_at is not None:
        to = acting.reassigned_to.label if acting.reassigned_to else "another reviewer"
        return f"An IAM admin reassigned this step to {to}: it is no longer yours to decide."
    if acting.user_id != user.pk:
        return sod_refusal(acting.user, req, step, stand_in=True)
    return None


# --- Stand-ins: delegations read through guardian object permissions ----------------------------

# The guardian object permission a delegate holds on each open assignment of the reviewer they
# stand in for.
DECIDE_ASSIGNMENT = "decide_stepassignment"


def active_delegations(now: datetime | None = None) -> QuerySet[Delegation]:
    """Delegations running at ``now`` (not revoked, started, not ended)."""
    now = now or timezone.now()
    return Delegation.objects.filter(revoked_at__isnull=True, starts_at__lte=now, ends_at__gt=now)


def stood_in_assignments(user: Any) -> QuerySet[StepAssignment]:
    """Open assignments ``user`` may decide for their reviewer: those on which ``user`` holds the
    guardian permission, while that reviewer's delegation to them runs. The delegation is read
    here too, so an ended or revoked one stops at once, before the sweep removes the rows."""
    held = StepAssignmentUserObjectPermission.objects.filter(user=user, permission__codename=DECIDE_ASSIGNMENT).values(
        "content_object_id"
    )
    delegators = active_delegations().filter(delegate=user, covers_approvals=True).values("delegator_id")
    return StepAssignment.objects.filter(is_open=True, pk__in=held, user_id__in=delegators)


def delegation_pool_names(user: Any) -> frozenset[str]:
    """The reviewer pools a person delegates within: their pool groups (and the IAM admins'
    group), or, for a reviewer in no pool, the reviewers."""
    names = role_names(user)
    pools = names & ({pool.value for pool in Pool} | {Role.IAM_ADMIN.value})
    if not pools and Role.REVIEWER in names:
        return frozenset({Role.REVIEWER.value})
    return frozenset(pools)


def delegation_colleagues(user: Any) -> QuerySet[User]:
    """Who ``user`` may hand their reviews to: active people (not service accounts) of one of
    their pools, themselves excepted."""
    pools = delegation_pool_names(user)
    if not pools:
        return User.objects.none()
    people = User.objects.filter(is_active=True, is_service_account=False, groups__name__in=pools)
    return people.exclude(pk=user.pk).distinct().order_by("username")


def delegations_for(user: Any) -> QuerySet[Delegation]:
    """IAM admins and auditors see every delegation; anyone else those they gave or hold."""
    qs = Delegation.objects.select_related("delegator", "delegate", "created_by", "revoked_by")
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if is_iam_admin(user) or is_auditor(user):
        return qs
    return qs.filter(Q(delegator=user) | Q(delegate=user))


def reassignable_assignments(user: Any) -> QuerySet[StepAssignment]:
    """Open assignments an IAM admin may move to someone else (anyone else sees none: 404)."""
    if not can_reassign(user):
        return StepAssignment.objects.none()
    return StepAssignment.objects.filter(is_open=True, step__status=StepStatus.ACTIVE).select_related(
        "user", "step__request__integration", "step__request__requester", "step__pool_group"
    )


# The roles whose holders may be handed an approval step.
_DECIDING_GROUPS = frozenset({pool.value for pool in Pool} | {Role.REVIEWER.value, Role.IAM_ADMIN.value})


def delegation_candidates() -> QuerySet[User]:
    """Whom an IAM admin's delegation form suggests: every active person of a reviewer pool (the
    service still holds the delegate to the delegator's own pools)."""
    people = User.objects.filter(is_active=True, is_service_account=False, groups__name__in=_DECIDING_GROUPS)
    return people.distinct().order_by("username")


def reassign_candidates(step: RequestStep) -> QuerySet[User]:
    """Whom an IAM admin may hand ``step`` to: active people of its reviewer pool (a group step)
    or any reviewer or IAM admin, not already on the step, not its requester nor the
    integration's owners and co-owners. (The service also refuses whoever decided another step.)"""
    req = step.request
    people = User.objects.filter(is_active=True, is_service_account=False)
    if step.pool_kind == PoolKind.GROUP and step.pool_group_id is not None:
        people = people.filter(groups=step.pool_group_id)
    else:
        people = people.filter(groups__name__in=_DECIDING_GROUPS)
    excluded = {req.requester_id} | (integration_actor_ids(req.integration) if req.integration is not None else set())
    on_step = StepAssignment.objects.filter(step=step).values("user_id")
    return people.exclude(pk__in=excluded).exclude(pk__in=on_step).distinct().order_by("username")


def assignments_for(user: Any) -> QuerySet[StepAssignment]:
    """The one gate of what waits for ``user``'s decision: their open assignments, and those of
    the reviewers they stand in for now. Without a running delegation to them (the common case,
    one indexed exists query) it stays the partial-index range scan of their own."""
    if not getattr(user, "is_authenticated", False):
        return StepAssignment.objects.none()
    own = StepAssignment.objects.filter(user=user, is_open=True)
    if not active_delegations().filter(delegate=user, covers_approvals=True).exists():
        return own
    return own | stood_in_assignments(user)


def scopes_in_play(req: AccessRequest) -> list[Scope]:
    """Scopes still in play, by code: those requested, narrowed by every approval of the
    current round so far (what the next approval may grant)."""
    remaining = {scope.pk: scope for scope in req.requested_scopes.all()}
    approvals = Decision.objects.filter(
        request=req, step__round=req.round, decision=DecisionKind.APPROVE
    ).prefetch_related("approved_scopes")
    for approval in approvals:
        keep = {scope.pk for scope in approval.approved_scopes.all()}
        remaining = {pk: scope for pk, scope in remaining.items() if pk in keep}
    return sorted(remaining.values(), key=lambda scope: scope.code)


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
    """Requests with a step waiting for ``user``'s decision, theirs or stood in for (for
    ``assigned_to_me``)."""
    return Q(pk__in=assignments_for(user).values("step__request_id"))


def queue_for(user: Any, *, type: str = "", tier: str = "", overdue: bool = False) -> QuerySet[StepAssignment]:
    """What waits for ``user``'s decision, oldest SLA first. Group pools are resolved into names
    when a step starts, so "my groups" is in the assignments too."""
    qs = assignments_for(user)
    if type:
        qs = qs.filter(step__request__type=type)
    if tier:
        # The tier's rank is copied onto each assignment (a change request's own tier stands in
        # for the integration's): one range of the queue's tier index.
        qs = qs.filter(risk_rank=RISK_TIER_ORDER.get(tier, -2))
    if overdue:
        qs = qs.filter(due_at__lt=timezone.now())
    return qs.order_by("due_at", "id")


def _queue_sort_keys() -> dict[str, list[Any]]:
    """The orders the queue may be sorted in, by the ``?sort=`` key a page passes: anything else
    falls back to the default. Each ends on the assignment's id, so equal keys keep one order
    from page to page. ``due``, ``-due`` and ``risk`` are orders of the queue's partial indexes (one
    range scan that stops at the page); ``-risk`` reads the risk index backwards and sorts each
    rank-and-score group by due date. The risk sorts read the tier's rank and the score copied onto
    the assignment (``approvals.services.queue_keys``)."""
    due = F("due_at")
    requested = F("step__request__created_at")
    name = Lower(Coalesce("step__request__integration__name", "step__request__subject_label"))
    return {
        "due": ["due_at", "id"],
        "-due": ["-due_at", "-id"],
        "risk": ["-risk_rank", "-risk_score", due.asc(nulls_last=True), "id"],
        "-risk": ["risk_rank", "risk_score", due.asc(nulls_last=True), "id"],
        "requested": [requested.asc(), "id"],
        "-requested": [requested.desc(), "-id"],
        "name": [name.asc(), "id"],
        "-name": [name.desc(), "-id"],
    }


QUEUE_SORTS = tuple(_queue_sort_keys())
QUEUE_DEFAULT_SORT = "due"


# Sorts on a column of the request or its integration: every item of the queue is joined to be
# ordered (tens of thousands for a busy reviewer), so the order is found over narrow rows (ids
# and sort keys) and only one page of items is then read in full (``queue_ordered_ids`` and
# ``queue_items``). The due-date and risk sorts read only the assignment's own columns: they
# stay one query.
QUEUE_JOINED_SORTS = frozenset({"name", "-name", "requested", "-requested"})


def _with_item_details(qs: QuerySet[StepAssignment]) -> QuerySet[StepAssignment]:
    """What each queue item shows: request, integration, requester, scopes and their systems."""
    return qs.select_related("step__request__integration", "step__request__requester", "user").prefetch_related(
        Prefetch("step__request__requested_scopes", queryset=Scope.objects.select_related("system"))
    )


def queue_listed(
    user: Any, *, type: str = "", tier: str = "", overdue: bool = False, sort: str = QUEUE_DEFAULT_SORT
) -> QuerySet[StepAssignment]:
    """The queue with what each item shows (request, integration, requester, scopes and their
    systems), in a fixed number of queries, in the order ``sort`` names (see ``QUEUE_SORTS``)."""
    orders = _queue_sort_keys()
    return _with_item_details(queue_for(user, type=type, tier=tier, overdue=overdue)).order_by(
        *orders.get(sort, orders[QUEUE_DEFAULT_SORT])
    )


def queue_ordered_ids(
    user: Any, *, type: str = "", tier: str = "", overdue: bool = False, sort: str = QUEUE_DEFAULT_SORT
) -> QuerySet[StepAssignment, int]:
    """The ids of the queue's items in the order ``sort`` names, and nothing else: what a page of
    a joined sort slices before ``queue_items`` reads that page in full."""
    orders = _queue_sort_keys()
    return (
        queue_for(user, type=type, tier=tier, overdue=overdue)
        .order_by(*orders.get(sort, orders[QUEUE_DEFAULT_SORT]))
        .values_list("pk", flat=True)
    )


def queue_items(ids: Sequence[int]) -> list[StepAssignment]:
    """The queue items ``ids`` names (already the user's, from ``queue_ordered_ids``), in that
    order, with what each shows: two queries whatever the page size."""
    found = {item.pk: item for item in _with_item_details(StepAssignment.objects.filter(pk__in=ids))}
    return [found[pk] for pk in ids if pk in found]


def held_scope_codes(integration_ids: Iterable[int]) -> dict[int, set[str]]:
    """The codes of the scopes each integration holds now (active grants), in one query."""
    held: dict[int, set[str]] = {}
    for integration_id, code in Grant.objects.filter(
        integration_id__in=set(integration_ids), status=GrantStatus.ACTIVE
    ).values_list("integration_id", "scope__code"):
        held.setdefault(integration_id, set()).add(code)
    return held


def queue_open_count(user: Any, *, up_to: int | None = None) -> int:
    """How many steps wait for ``user``; with ``up_to``, counted only up to one past it (the
    nav badge says "999+" beyond)."""
    waiting = assignments_for(user)
    return waiting.count() if up_to is None else waiting[: up_to + 1].count()


def overdue_count(user: Any, now: datetime | None = None) -> int:
    return assignments_for(user).filter(due_at__lt=now or timezone.now()).count()


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
