"""Stand-in permissions: the guardian object permissions a running delegation gives its delegate
on the delegator's open approval steps (``approvals.decide_stepassignment``) and open review
items (``campaigns.change_reviewitem``). They are granted when the delegation starts and for
whatever reaches the delegator while it runs, and withdrawn when it ends or is revoked; the
queue, the request page, the review pages and the API read them through the selectors.

Only what separation of duties lets the delegate decide is covered: never a step they are
assigned themselves (a delegation must not give one person a second decision on a step), nor
a request they asked for, own, co-own or decided at another step, nor a review item about an
integration they own or co-own. The decision services check the same rules again.

Every grant is audited in the caller's transaction, as the system acting for the delegator."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.contrib.auth.models import Permission
from django.db.models import Model
from guardian.shortcuts import remove_perm

from approvals import selectors
from approvals.campaigns.models import CampaignStatus, ItemStatus, ReviewItem
from approvals.models import (
    Delegation,
    ReviewItemUserObjectPermission,
    StepAssignment,
    StepAssignmentUserObjectPermission,
    StepStatus,
)
from governance.actors import Actor
from governance.audit import EventSpec, audit_record_many
from governance.models import User
from inventory.selectors import delegated_to, owned_by

ASSIGNMENT_PERM = ("approvals", selectors.DECIDE_ASSIGNMENT)
# A review item has no permission of its own to decide it: "change" it is what deciding does.
ITEM_PERM = ("campaigns", "change_reviewitem")


def _permission(perm: tuple[str, str]) -> Permission:
    app_label, codename = perm
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def _grant_rows(model: type[Model], perm: tuple[str, str], user: User, objects: Sequence[Model]) -> None:
    """Guardian object-permission rows for ``user`` on ``objects``, written in one statement;
    a row already there is kept (the unique key of guardian's table). Guardian's own bulk helper
    skips every object for a superuser, whose model-wide checks pass: stand-ins must be rows."""
    if not objects:
        return
    permission = _permission(perm)
    rows = [model(user=user, permission=permission, content_object=obj) for obj in objects]
    model._default_manager.bulk_create(rows, ignore_conflicts=True)


def _may_stand_in(delegate: User, assignment: StepAssignment) -> bool:
    """Whether ``delegate`` may decide ``assignment`` for its reviewer (rules in the module doc)."""
    step = assignment.step
    if StepAssignment.objects.filter(step=step, user=delegate).exists():
        return False
    req = step.request
    return (
        selectors.sod_refusal(delegate, req, step, stand_in=False) is None
        and selectors.sod_refusal(assignment.user, req, step, stand_in=True) is None
    )


def _covered_events(delegation: Delegation, assignments: Iterable[StepAssignment]) -> list[EventSpec]:
    return [
        EventSpec(
            action="delegation.assignment_covered",
            target=assignment.step.request,
            owner=assignment.step.request.accountable_owner,
            after={
                "step": assignment.step.name,
                "round": assignment.step.round,
                "delegator": delegation.delegator.username,
                "delegate": delegation.delegate.username,
                "delegation": delegation.pk,
            },
        )
        for assignment in assignments
    ]


def _grant_assignments(delegation: Delegation, assignments: Iterable[StepAssignment]) -> int:
    """Grant the stand-in permission on those of ``assignments`` the delegate may decide, and
    audit each; returns how many."""
    held = set(
        StepAssignmentUserObjectPermission.objects.filter(
            user=delegation.delegate, permission__codename=selectors.DECIDE_ASSIGNMENT
        ).values_list("content_object_id", flat=True)
    )
    eligible = [
        assignment
        for assignment in assignments
        if assignment.pk not in held and _may_stand_in(delegation.delegate, assignment)
    ]
    if not eligible:
        return 0
    _grant_rows(StepAssignmentUserObjectPermission, ASSIGNMENT_PERM, delegation.delegate, eligible)
    audit_record_many(
        actor=Actor.system(on_behalf_of=delegation.delegator), events=_covered_events(delegation, eligible)
    )
    return len(eligible)


def _open_assignments_of(user_id: int) -> list[StepAssignment]:
    return list(
        StepAssignment.objects.filter(user_id=user_id, is_open=True, step__status=StepStatus.ACTIVE).select_related(
            "user", "step__request__integration", "step__request__requester"
        )
    )


def assignments_cover(step_id: int, user_ids: Sequence[int]) -> int:
    """Assignments on ``step_id`` just made for ``user_ids``: the delegate of each of them who
    is away now may decide it in their stead. One query when nobody is away."""
    if not user_ids:
        return 0
    running = selectors.active_delegations().filter(delegator_id__in=user_ids, covers_approvals=True)
    granted = 0
    for delegation in running.select_related("delegator", "delegate"):
        new = StepAssignment.objects.filter(step_id=step_id, user_id=delegation.delegator_id, is_open=True)
        granted += _grant_assignments(delegation, new.select_related("user", "step__request__integration"))
    return granted


def _items_open_for(delegation: Delegation) -> list[ReviewItem]:
    """The delegator's open items in running campaigns that are not about an integration the
    delegate owns or co-owns (a stand-in never reviews their own)."""
    return list(
        ReviewItem.objects.filter(
            reviewer=delegation.delegator, status=ItemStatus.OPEN, campaign__status=CampaignStatus.ACTIVE
        )
        .exclude(owned_by(delegation.delegate, "integration__"))
        .exclude(delegated_to(delegation.delegate, "integration__"))
        .exclude(
            pk__in=ReviewItemUserObjectPermission.objects.filter(
                user=delegation.delegate, permission__codename=ITEM_PERM[1]
            ).values("content_object_id")
        )
        .select_related("campaign")
    )


def delegation_cover(delegation: Delegation) -> dict[str, int]:
    """Grant the delegate of a running delegation the stand-in permissions on everything of the
    delegator's that is open and not covered yet (at its start, and at each sweep for what came
    since). Idempotent: what is covered is skipped. Returns the counts granted."""
    steps = (
        _grant_assignments(delegation, _open_assignments_of(delegation.delegator_id))
        if (delegation.covers_approvals)
        else 0
    )
    items = _items_open_for(delegation) if delegation.covers_reviews else []
    if items:
        _grant_rows(ReviewItemUserObjectPermission, ITEM_PERM, delegation.delegate, items)
        audit_record_many(
            actor=Actor.system(on_behalf_of=delegation.delegator),
            events=[
                EventSpec(
                    action="delegation.item_covered",
                    target=item,
                    owner=item.campaign.owner,
                    after={
                        "campaign": item.campaign_id,
                        "delegator": delegation.delegator.username,
                        "delegate": delegation.delegate.username,
                        "delegation": delegation.pk,
                    },
                )
                for item in items
            ],
        )
    return {"steps": steps, "items": len(items)}


def delegation_withdraw(delegation: Delegation) -> int:
    """Remove the delegate's stand-in permissions on the delegator's assignments and items
    (guardian's ``remove_perm``); returns how many rows went. Kept while another delegation
    between the same two people runs (one that follows this one without a gap)."""
    following = (
        selectors.active_delegations()
        .filter(delegator_id=delegation.delegator_id, delegate_id=delegation.delegate_id)
        .exclude(pk=delegation.pk)
    )
    if following.exists():
        return 0
    steps = remove_perm(
        "approvals.decide_stepassignment",
        delegation.delegate,
        StepAssignment.objects.filter(user_id=delegation.delegator_id),
    )
    items = remove_perm(
        "campaigns.change_reviewitem",
        delegation.delegate,
        ReviewItem.objects.filter(reviewer_id=delegation.delegator_id),
    )
    return (steps[0] if steps else 0) + (items[0] if items else 0)
