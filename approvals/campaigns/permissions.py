"""Who may call what on campaigns (visibility is in ``selectors``; rules that hold whoever calls
are in ``services``)."""

from __future__ import annotations

from typing import Any

from approvals.campaigns.selectors import stood_in_items
from governance.roles import Role, has_role, is_iam_admin, is_read_only
from inventory.selectors import integration_actor_ids


def can_write(user: Any) -> bool:
    """Signed in and not read-only: auditors read everything and change nothing."""
    return bool(getattr(user, "is_authenticated", False)) and not is_read_only(user)


def can_manage_definitions(user: Any) -> bool:
    """IAM admins keep campaign definitions and start campaigns from them."""
    return can_write(user) and is_iam_admin(user)


def can_launch(user: Any, campaign: Any) -> bool:
    return can_write(user) and (is_iam_admin(user) or campaign.owner_id == user.pk)


def can_see_report(user: Any, campaign: Any) -> bool:
    """IAM admins, auditors and the campaign's owner read its report; reviewers do not."""
    return has_role(user, Role.IAM_ADMIN, Role.AUDITOR) or campaign.owner_id == user.pk


def _in_group(user: Any, group_id: int | None) -> bool:
    return group_id is not None and user.groups.filter(pk=group_id).exists()


def stands_in_for(user: Any, item: Any) -> bool:
    """Whether ``user`` stands in for the item's reviewer, who is away: they hold the guardian
    permission the delegation granted on this item, and the delegation runs now."""
    return item.reviewer_id is not None and stood_in_items(user).filter(pk=item.pk).exists()


def can_decide(user: Any, item: Any) -> bool:
    """The assigned reviewer (or a member of the assigned group) decides an open item, and so
    does the colleague standing in for the reviewer while they are away; IAM admins may act on
    anything (still audited). Auditors never."""
    if not can_write(user):
        return False
    if item.reviewer_id == user.pk or _in_group(user, item.reviewer_group_id) or is_iam_admin(user):
        return True
    return stands_in_for(user, item)


def stand_in_refusal(user: Any, item: Any) -> str | None:
    """Separation of duties for a stand-in (None when ``user`` decides as themselves): they never
    review an integration they own or co-own, nor one whose only owner is the reviewer they
    stand in for when the campaign forbids self-review."""
    if item.reviewer_id == user.pk or _in_group(user, item.reviewer_group_id) or is_iam_admin(user):
        return None
    integration = item.integration
    if user.pk in integration_actor_ids(integration):
        return "You own or co-own this integration: a stand-in never reviews their own."
    if item.campaign.definition.forbid_self_review and integration.owner_ids() == {item.reviewer_id}:
        return "The reviewer you stand in for is this integration's only owner: someone else must review it."
    return None


def can_confirm(user: Any, item: Any, confirm_group_id: int | None) -> bool:
    """Second stage: the confirmation group (IAM admins when none is named) confirms a keep."""
    if not can_write(user):
        return False
    return is_iam_admin(user) or _in_group(user, confirm_group_id)
