"""An IAM admin moves one open review item to another reviewer (someone away with no delegate,
someone who left the team). The new reviewer is told by email; the move is audited with its
reason. A stand-in of the old reviewer loses the item at once (the gates read the reviewer)."""

from __future__ import annotations

from django.db import transaction

from approvals.campaigns.models import CampaignStatus, ItemStatus, ReviewItem
from approvals.campaigns.services.notifications import campaign_links
from governance.actors import Actor
from governance.audit import audit_record, snapshot
from governance.exceptions import Conflict, NotAllowed, ValidationFailed
from governance.models import User
from governance.roles import Pool, Role, has_role, is_iam_admin, is_read_only
from governance.services import email_enqueue
from inventory.selectors import integration_actor_ids

REASON_MAX = 200  # what ``assigned_reason`` keeps, with the admin's name


def _checked_reviewer(item: ReviewItem, to_user: User) -> None:
    """The new reviewer: an active person who reviews (a reviewer, pool member or IAM admin),
    not the current one, and not an owner or co-owner of the integration under review."""
    reviews = has_role(to_user, Role.REVIEWER, Role.IAM_ADMIN, *Pool.values)
    if not to_user.is_active or to_user.is_service_account or is_read_only(to_user) or not reviews:
        raise ValidationFailed.on("to_user", f"{to_user.label} does not review (inactive, read-only or no reviewer).")
    if item.reviewer_id == to_user.pk:
        raise ValidationFailed.on("to_user", f"{to_user.label} already reviews this item.")
    if to_user.pk in integration_actor_ids(item.integration):
        raise ValidationFailed.on("to_user", f"{to_user.label} owns or co-owns this integration: choose someone else.")


def review_item_reassign(*, actor: Actor | User, item: ReviewItem, to_user: User, reason: str) -> ReviewItem:
    """Hand an open item of a running campaign to ``to_user`` (IAM admins; a reason is required).
    Refused: not an IAM admin (403), no reason or an ineligible reviewer (400), an item decided
    or a campaign not running (409)."""
    resolved = Actor.coerce(actor)
    if not (is_iam_admin(resolved.user) and not is_read_only(resolved.user)):
        raise NotAllowed("Only IAM admins reassign review items.")
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_MAX:
        raise ValidationFailed.on("reason", f"Say why the item is reassigned, in at most {REASON_MAX} characters.")
    with transaction.atomic():
        locked = (
            ReviewItem.objects.select_for_update(of=("self",))
            .select_related("campaign", "integration", "reviewer")
            .get(pk=item.pk)
        )
        if locked.status != ItemStatus.OPEN or locked.campaign.status != CampaignStatus.ACTIVE:
            raise Conflict("This item is no longer open in a running campaign: nothing to reassign.")
        _checked_reviewer(locked, to_user)
        before = snapshot(locked, ("reviewer", "reviewer_group", "assigned_reason"))
        locked.reviewer, locked.reviewer_group = to_user, None
        locked.assigned_reason = f"Reassigned by {resolved.user.label}: {reason}"[:200]
        locked.save(update_fields=["reviewer", "reviewer_group", "assigned_reason"])
        audit_record(
            actor=resolved,
            action="review_item.reassigned",
            target=locked,
            owner=locked.campaign.owner,
            before=before,
            after={**snapshot(locked, ("reviewer", "reviewer_group", "assigned_reason")), "to": to_user.username},
            reason=reason,
        )
        email_enqueue(
            key=f"review-item-{locked.pk}-reassigned-{to_user.pk}",
            recipient=to_user,
            subject=f"A recertification item was handed to you: {locked.integration.name}",
            template="governance_notice",
            context={
                "message": (
                    f"{resolved.user.label} handed you a review item of “{locked.campaign.name}” about "
                    f"{locked.integration.name}: {reason}"
                ),
                "path": campaign_links(locked.campaign)["review_path"],
            },
        )
    return locked
