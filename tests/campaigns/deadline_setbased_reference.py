"""The deadline's per-row path as it was before its writes became set-based, kept verbatim as the
reference the set-based path is compared with: the items locked as model instances, each event
built from an instance, the grants ended by ``_end_chunk`` with instances and their history
written by ``history_record_many``. Only the names are changed (``reference_*``); the pieces the
rewrite left alone (the escalation target, the deadline's extension, the close) are imported."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from approvals.campaigns.models import (
    UNDECIDED,
    Campaign,
    CampaignStatus,
    DefaultAction,
    ItemDecision,
    ItemStatus,
    ReviewItem,
)
from approvals.campaigns.services.common import check_transition, system_actor
from approvals.campaigns.services.deadline import _close, _escalation_target, _extend_after_escalation
from governance.actors import Actor
from governance.audit import EventSpec, audit_record_many
from governance.exceptions import ValidationFailed
from governance.history import history_record_many
from governance.models import User
from inventory.choices import GrantStatus
from inventory.models import Grant
from inventory.services.grants import _grant_after

END_CHUNK = 1000

# --- inventory.services.grants ---------------------------------------------------------------------


def reference_grants_end_many(
    *, actor: Actor | User, grant_ids: Sequence[int], status: str, reason: str, action: str
) -> int:
    if status not in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
        raise ValidationFailed.on("status", "Grants end as revoked or expired.")
    resolved = Actor.coerce(actor)
    ended = 0
    with transaction.atomic():
        now = timezone.now()
        for start in range(0, len(grant_ids), END_CHUNK):
            chunk = list(
                Grant.objects.select_for_update()
                .filter(pk__in=grant_ids[start : start + END_CHUNK], status=GrantStatus.ACTIVE)
                .select_related("integration__business_owner", "scope")
            )
            if chunk:
                _reference_end_chunk(resolved, chunk, status=status, reason=reason, action=action, now=now)
                ended += len(chunk)
    return ended


def _reference_end_chunk(
    actor: Actor, chunk: list[Grant], *, status: str, reason: str, action: str, now: datetime
) -> None:
    Grant.objects.filter(pk__in=[grant.pk for grant in chunk], status=GrantStatus.ACTIVE).update(
        status=status, ended_at=now, ended_by=actor.user, end_reason=reason
    )
    events = []
    for grant in chunk:
        before = _grant_after(grant)
        grant.status, grant.ended_at, grant.ended_by, grant.end_reason = status, now, actor.user, reason
        events.append(
            EventSpec(
                action=action,
                target=grant,
                owner=grant.integration.business_owner,
                before=before,
                after=_grant_after(grant),
                reason=reason,
            )
        )
    audit_record_many(actor=actor, events=events)
    history_record_many(chunk, user=actor.user, reason=reason)


# --- approvals.campaigns.services.decisions ---------------------------------------------------------


def reference_apply_revocations(actor: Actor, items: Sequence[ReviewItem], reason: str) -> int:
    grant_ids = sorted({grant_id for item in items for grant_id in item.covered_grant_ids()})
    ended = reference_grants_end_many(
        actor=actor, grant_ids=grant_ids, status=GrantStatus.REVOKED, reason=reason, action="grant.revoked"
    )
    now = timezone.now()
    ReviewItem.objects.filter(pk__in=[item.pk for item in items]).update(applied_at=now)
    for item in items:
        item.applied_at = now
    return ended


# --- approvals.campaigns.services.deadline ------------------------------------------------------------


def _reference_undecided_chunks(campaign: Campaign, size: int) -> Iterator[list[int]]:
    while True:
        ids = list(
            ReviewItem.objects.filter(campaign=campaign, status__in=UNDECIDED)
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
        if not ids:
            return
        yield ids


def _reference_default_chunk(campaign: Campaign, ids: list[int], action: str, actor: Actor, reason: str) -> int:
    with transaction.atomic():
        chunk = list(ReviewItem.objects.select_for_update().filter(pk__in=ids, status__in=UNDECIDED))
        if not chunk:
            return 0
        now = timezone.now()
        new_status = ItemStatus.REVOKED if action == DefaultAction.REVOKE else ItemStatus.KEPT_FLAGGED
        ReviewItem.objects.filter(pk__in=[item.pk for item in chunk], status__in=UNDECIDED).update(
            status=new_status,
            by_default=True,
            decided_at=now,
            flagged=new_status == ItemStatus.KEPT_FLAGGED,
            decision=ItemDecision.REVOKE if new_status == ItemStatus.REVOKED else ItemDecision.CERTIFY,
            comment=reason,
        )
        events = []
        for item in chunk:
            before = {"status": item.status, "reviewer": item.reviewer_id, "reviewer_group": item.reviewer_group_id}
            item.status, item.by_default, item.decided_at = new_status, True, now
            after = {"status": new_status, "default_action": action, "campaign": campaign.pk}
            events.append(
                EventSpec(
                    action="review_item.defaulted",
                    target=item,
                    owner=campaign.owner,
                    before=before,
                    after={**after, "grants": item.covered_grant_ids()},
                    reason=reason,
                )
            )
        audit_record_many(actor=actor, events=events)
        if new_status == ItemStatus.REVOKED:
            reference_apply_revocations(actor, chunk, reason)
        return len(chunk)


def _reference_default_revoke_or_keep(campaign: Campaign, action: str, size: int) -> int:
    actor = system_actor(campaign)
    reason = f"Not decided by the deadline of {campaign.name}"
    return sum(
        _reference_default_chunk(campaign, ids, action, actor, reason)
        for ids in _reference_undecided_chunks(campaign, size)
    )


def _reference_reassign_chunk(campaign: Campaign, chunk: list[ReviewItem], people: dict[int, User]) -> list[EventSpec]:
    now = timezone.now()
    events = []
    for item in chunk:
        targets, kind = _escalation_target(campaign, people.get(item.reviewer_id or 0))
        before = {"reviewer": item.reviewer_id, "reviewer_group": item.reviewer_group_id}
        if kind == "fallback group":
            item.reviewer, item.reviewer_group_id = None, campaign.definition.fallback_group_id
        else:
            item.reviewer, item.reviewer_group_id = targets[0], None
        item.escalated_at = now
        item.assigned_reason = f"escalated at the deadline to the {kind}"
        item.status = ItemStatus.OPEN
        after = {"reviewer": item.reviewer_id, "reviewer_group": item.reviewer_group_id, "target_kind": kind}
        events.append(
            EventSpec(action="review_item.escalated", target=item, owner=campaign.owner, before=before, after=after)
        )
    ReviewItem.objects.bulk_update(chunk, ["reviewer", "reviewer_group", "escalated_at", "assigned_reason", "status"])
    return events


def _reference_default_escalate(campaign: Campaign, size: int) -> int:
    actor = system_actor(campaign)
    undecided_reviewers = ReviewItem.objects.filter(campaign=campaign, status__in=UNDECIDED).values("reviewer_id")
    people = {user.pk: user for user in User.objects.filter(pk__in=undecided_reviewers).select_related("manager")}
    done = 0
    last = 0
    with transaction.atomic():
        while True:
            chunk = list(
                ReviewItem.objects.select_for_update()
                .filter(campaign=campaign, status__in=UNDECIDED, pk__gt=last)
                .order_by("pk")[:size]
            )
            if not chunk:
                break
            audit_record_many(actor=actor, events=_reference_reassign_chunk(campaign, chunk, people))
            done += len(chunk)
            last = chunk[-1].pk
        _extend_after_escalation(campaign, actor, done)
    return done


def _reference_apply_held_revocations(campaign: Campaign, actor: Actor, size: int) -> int:
    reason = f"Recertification {campaign.name}: revoked by the reviewer, applied at the close"
    held = 0
    while True:
        chunk = list(
            ReviewItem.objects.filter(campaign=campaign, status=ItemStatus.REVOKED, applied_at__isnull=True).order_by(
                "pk"
            )[:size]
        )
        if not chunk:
            return held
        with transaction.atomic():
            reference_apply_revocations(actor, chunk, reason)
        held += len(chunk)


def reference_campaign_close(*, campaign: Campaign, size: int = 1000, closed_by: Actor | None = None) -> Campaign:
    """``campaign_close`` as it was, through the per-row pieces above."""
    campaign = Campaign.objects.select_related("definition", "owner").get(pk=campaign.pk)
    check_transition(
        campaign.status, CampaignStatus.CLOSED, "Only a running campaign can be closed (this one is {current})."
    )
    action = campaign.default_action
    if action == DefaultAction.ESCALATE:
        if (
            campaign.escalated_at is None
            and ReviewItem.objects.filter(campaign=campaign, status__in=UNDECIDED).exists()
        ):
            _reference_default_escalate(campaign, size)
            return campaign
        action = DefaultAction.REVOKE
    defaulted = _reference_default_revoke_or_keep(campaign, action, size)
    actor = system_actor(campaign)
    held = _reference_apply_held_revocations(campaign, actor, size)
    _close(campaign, closed_by or actor, action=action, defaulted=defaulted, held=held, early=closed_by is not None)
    return campaign
