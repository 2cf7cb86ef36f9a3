"""django-q2 entry points. Each takes ids, calls a service and is idempotent (conditional
updates, unique item constraints and unique email keys)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from approvals.campaigns import services
from approvals.campaigns.models import Campaign, CampaignDefinition, CampaignStatus
from governance.actors import Actor, system_user
from governance.context import task_context
from governance.exceptions import Conflict

STALE_LAUNCH_MINUTES = 15


def campaign_launch(campaign_id: int) -> int:
    """Make the items of a campaign claimed for launch; returns how many it holds."""
    with task_context(user=system_user()):
        campaign = services.campaign_launch_run(campaign_id=campaign_id)
        return campaign.items_total if campaign else 0


def campaign_run_scheduled(definition_id: int, intended_date: str | None = None) -> int | None:
    """Fired by the definition's schedule: make this slot's run (once per slot) and launch it
    here, in the worker."""
    with task_context(user=system_user()):
        definition = CampaignDefinition.objects.select_related("owner").filter(pk=definition_id, is_active=True).first()
        if definition is None:
            return None
        actor = Actor.system(on_behalf_of=definition.owner)
        run_key = (intended_date or "")[:80] or f"manual-{definition_id}"
        campaign = services.campaign_create(actor=actor, definition=definition, run_key=run_key)
        if campaign.status == CampaignStatus.DRAFT:
            # Claim without enqueueing a second task: this task does the work itself.
            campaign = services.campaign_launch_request(actor=actor, campaign=campaign, enqueue=False)
        services.campaign_launch_run(campaign_id=campaign.pk)
        return campaign.pk


def campaigns_sweep() -> dict[str, int]:
    """Every few minutes: reminders, escalations and deadlines of running campaigns; launches
    left half-done (a worker died) are resumed."""
    totals = {"reminded": 0, "escalated": 0, "closed": 0, "resumed": 0}
    with task_context(user=system_user()):
        for campaign_id in Campaign.objects.filter(status=CampaignStatus.ACTIVE).values_list("pk", flat=True):
            for key, value in services.campaign_tick(campaign_id=campaign_id).items():
                totals[key] += value
        # A launch still "launching" long after it started lost its worker: resume it (the
        # chunks already committed are skipped through the cursor).
        stale = timezone.now() - timedelta(minutes=STALE_LAUNCH_MINUTES)
        for campaign_id in Campaign.objects.filter(status=CampaignStatus.LAUNCHING, launched_at__lt=stale).values_list(
            "pk", flat=True
        ):
            try:
                if services.campaign_launch_run(campaign_id=campaign_id) is not None:
                    totals["resumed"] += 1
            except Conflict:
                pass  # another worker finished it meanwhile
    return totals
