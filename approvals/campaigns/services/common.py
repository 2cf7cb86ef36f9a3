"""Pieces every campaign service shares: the one checked, locked move of a campaign's status, and
the system actor that the sweep's work is recorded as (on behalf of the campaign's owner)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from approvals.campaigns.models import CAMPAIGN_TRANSITIONS, Campaign
from governance.actors import Actor
from governance.exceptions import IllegalTransition, NotFound


def system_actor(campaign: Campaign) -> Actor:
    """The system, acting for the campaign's owner (reminders, escalations, the deadline)."""
    return Actor.system(on_behalf_of=campaign.owner)


def check_transition(current: str, to_status: str, refusal: str) -> None:
    """Refuse a move that ``CAMPAIGN_TRANSITIONS`` does not allow from ``current``: raises
    ``IllegalTransition`` with ``refusal`` (where ``{current}`` names the status found)."""
    if to_status not in CAMPAIGN_TRANSITIONS.get(current, ()):
        raise IllegalTransition(refusal.format(current=current))


def campaign_transition(*, campaign: Campaign, to_status: str, refusal: str, **changes: Any) -> str:
    """Move ``campaign`` to ``to_status``, writing ``changes`` with it, when the transition table
    allows it from the status the row holds now. The row is locked and re-read, and the UPDATE is
    conditional on the status read (databases without row locks rely on that), so of two workers
    making the same move one wins and the other gets ``IllegalTransition``; never a quiet no-op.
    The caller audits the move in the same transaction. Refreshes ``campaign``; returns the status
    it left."""
    with transaction.atomic():
        current = Campaign.objects.select_for_update().filter(pk=campaign.pk).values_list("status", flat=True).first()
        if current is None:
            raise NotFound("No such campaign.")
        check_transition(current, to_status, refusal)
        if Campaign.objects.filter(pk=campaign.pk, status=current).update(status=to_status, **changes) != 1:
            raise IllegalTransition(refusal.format(current=current))
    campaign.refresh_from_db()
    return current
