"""Reviewers' decisions on review items: certify (keep) or revoke, one at a time or many with one
comment, and the second stage that confirms keeps on critical items. A revocation ends its grants
at once or at the close, as the campaign says; either way through ``inventory.services``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from approvals.campaigns import permissions
from approvals.campaigns.models import (
    ApplyMode,
    CampaignStatus,
    ItemDecision,
    ItemStatus,
    ReviewItem,
    SecondStage,
)
from approvals.campaigns.recommend import advise_items
from governance.actors import Actor
from governance.audit import EventSpec, audit_record, snapshot
from governance.exceptions import Conflict, DomainError, NotAllowed, ValidationFailed
from governance.models import User
from inventory.choices import GrantStatus
from inventory.services import grants_end_many

_ITEM_AUDITED = ("status", "decision", "reviewer", "reviewer_group", "flagged", "applied_at")
_DECISION_FIELDS = ["status", "decision", "decided_by", "decided_at", "comment", "confirmed_by", "confirmed_at"]


def covered_grants(grant_id: int | None, grant_ids: Sequence[int]) -> list[int]:
    """The grants an item covers, from its ``grant`` and ``grant_ids`` columns read as values
    (``ReviewItem.covered_grant_ids`` for a row without its instance)."""
    return [grant_id] if grant_id else list(grant_ids)


def end_revoked_grants(
    actor: Actor,
    covered: Iterable[Sequence[int]],
    reason: str,
    owners: dict[int, User] | None = None,
    chunk: int | None = None,
    events: list[EventSpec] | None = None,
) -> int:
    """End the grants of revoked items (each item's covered grant ids in ``covered``) with set-based
    writes, each audited as ``grant.revoked``, in grant id order; grants already ended are
    skipped by ``grants_end_many``. ``owners`` caches the grants' owners across calls; ``chunk``
    is how many grants are ended per statement (``grants_end_many``'s own when None); ``events``
    takes the grants' events for the caller to write (``grants_end_many``). Returns how many
    ended."""
    grant_ids = sorted({grant_id for ids in covered for grant_id in ids})
    return grants_end_many(
        actor=actor,
        grant_ids=grant_ids,
        status=GrantStatus.REVOKED,
        reason=reason,
        action="grant.revoked",
        owners=owners,
        events=events,
        **({} if chunk is None else {"chunk": chunk}),
    )


def apply_revocations(actor: Actor, items: Sequence[ReviewItem], reason: str) -> int:
    """End the grants of revoked items at once (bulk, audited as ``grant.revoked``) and mark
    the items applied. Grants already ended are skipped by ``grants_end_many``."""
    ended = end_revoked_grants(actor, (item.covered_grant_ids() for item in items), reason)
    now = timezone.now()
    ReviewItem.objects.filter(pk__in=[item.pk for item in items]).update(applied_at=now)
    for item in items:
        item.applied_at = now
    return ended


def _checked_comment(decision: str, comment: str) -> str:
    """The trimmed comment, once the decision is one of the two and a revoke gives its reason."""
    if decision not in ItemDecision.values:
        raise ValidationFailed.on("decision", "Choose certify or revoke.")
    comment = (comment or "").strip()
    if decision == ItemDecision.REVOKE and not comment:
        raise ValidationFailed.on("comment", "Give a reason to revoke.")
    return comment


def _decide_open(item: ReviewItem, user: User, decision: str, comment: str) -> str:
    """The reviewer's decision on an open item; a keep on a critical item waits for the second
    stage when the campaign has one. Returns the audit action."""
    campaign = item.campaign
    if not permissions.can_decide(user, item):
        raise NotAllowed("Only the assigned reviewer decides this item.")
    stand_in_refusal = permissions.stand_in_refusal(user, item)
    if stand_in_refusal is not None:
        raise NotAllowed(stand_in_refusal)
    if campaign.definition.forbid_self_review and item.integration.owner_ids() == {user.pk}:
        raise NotAllowed("You are this integration's only owner: someone else must review it.")
    keep_needs_confirmation = campaign.second_stage == SecondStage.CRITICAL_KEEPS and item.critical
    if decision == ItemDecision.CERTIFY:
        item.status = ItemStatus.AWAITING_CONFIRMATION if keep_needs_confirmation else ItemStatus.CERTIFIED
    else:
        item.status = ItemStatus.REVOKED
    item.decision, item.decided_by, item.decided_at, item.comment = decision, user, timezone.now(), comment
    return "review_item.decided"


def _confirm_keep(item: ReviewItem, user: User, decision: str, comment: str) -> str:
    """The second stage confirms or overturns a keep: the confirmation group, never the first
    reviewer. Returns the audit action."""
    if not permissions.can_confirm(user, item, item.campaign.definition.second_stage_group_id):
        raise NotAllowed("Only the confirmation group confirms this keep.")
    if item.decided_by_id == user.pk:
        raise NotAllowed("The second stage must be someone other than the first reviewer.")
    item.status = ItemStatus.CERTIFIED if decision == ItemDecision.CERTIFY else ItemStatus.REVOKED
    item.decision = decision
    item.confirmed_by, item.confirmed_at = user, timezone.now()
    if comment:
        item.comment = f"{item.comment}\n[second stage] {comment}".strip()
    return "review_item.confirmed"


def review_item_decide(
    *, actor: Actor | User, item: ReviewItem, decision: str, comment: str = "", accepted_recommendation: bool = False
) -> ReviewItem:
    """A reviewer certifies (keeps) or revokes an item; revoking needs a reason. In the second
    stage the confirmation group confirms or overturns a keep. The integration's only owner never
    decides it alone when the definition forbids self-review. Locks the item; a decided item, or
    one of a campaign that is not running, is a conflict. ``accepted_recommendation`` records in
    the audit that the reviewer took the page's recommendation rather than choosing."""
    resolved = Actor.coerce(actor)
    comment = _checked_comment(decision, comment)
    with transaction.atomic():
        locked = (
            ReviewItem.objects.select_for_update().select_related("campaign__definition", "integration").get(pk=item.pk)
        )
        campaign = locked.campaign
        if campaign.status != CampaignStatus.ACTIVE:
            raise Conflict(f"The campaign is not running (it is {campaign.get_status_display().lower()}).")
        before = snapshot(locked, _ITEM_AUDITED)
        if locked.status == ItemStatus.OPEN:
            action = _decide_open(locked, resolved.user, decision, comment)
        elif locked.status == ItemStatus.AWAITING_CONFIRMATION:
            action = _confirm_keep(locked, resolved.user, decision, comment)
        else:
            raise Conflict(f"This item is already decided ({locked.get_status_display().lower()}).")
        locked.save(update_fields=_DECISION_FIELDS)
        audit_record(
            actor=resolved,
            action=action,
            target=locked,
            owner=campaign.owner,
            before=before,
            after={
                **snapshot(locked, _ITEM_AUDITED),
                "decision": decision,
                "campaign": campaign.pk,
                **({"accepted_recommendation": True} if accepted_recommendation else {}),
            },
            reason=comment,
        )
        if locked.status == ItemStatus.REVOKED and campaign.apply_mode == ApplyMode.IMMEDIATE:
            apply_revocations(resolved, [locked], f"Recertification {campaign.name}: {comment}")
    return locked


@dataclass
class BulkResult:
    decided: list[int]
    failed: dict[int, str]


def review_items_decide_many(
    *, actor: Actor | User, items: Iterable[ReviewItem], decision: str, comment: str = ""
) -> BulkResult:
    """Decide many items with one comment; each is its own decision (locked, audited). Items
    that cannot be decided are reported, never skipped quietly."""
    result = BulkResult(decided=[], failed={})
    for item in items:
        try:
            review_item_decide(actor=actor, item=item, decision=decision, comment=comment)
            result.decided.append(item.pk)
        except DomainError as exc:
            result.failed[item.pk] = exc.detail
    return result


def review_items_accept_recommendations(*, actor: Actor | User, items: Sequence[ReviewItem]) -> BulkResult:
    """Decide each item as its recommendation says, worked out afresh here (never taken from the
    page), the recommendation's reason as the comment: "Accepted recommendation: <reason>". Each
    is its own decision (locked, audited with ``accepted_recommendation``); refusals are reported
    per item."""
    result = BulkResult(decided=[], failed={})
    for advice in advise_items(items, now=timezone.now()):
        try:
            review_item_decide(
                actor=actor,
                item=advice.item,
                decision=advice.rec.decision,
                comment=f"Accepted recommendation: {advice.rec.reason}",
                accepted_recommendation=True,
            )
            result.decided.append(advice.item.pk)
        except DomainError as exc:
            result.failed[advice.item.pk] = exc.detail
    return result
