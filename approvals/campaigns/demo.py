"""Demo data of campaigns (order 30): ivan's quarterly recertification of high and critical
grants, reviewed by the business owners (fallback: the IAM reviewers), critical keeps confirmed
by security; one run launched so reviewers have items. Idempotent."""

from __future__ import annotations

from django.contrib.auth.models import Group

from approvals.campaigns import services
from approvals.campaigns.models import CampaignDefinition
from governance.actors import Actor
from governance.models import User
from governance.roles import Pool

DEMO_NAME = "Quarterly recertification: high and critical access"


def seed() -> None:
    ivan = User.objects.filter(username="ivan").first()
    if ivan is None:
        return
    definition = CampaignDefinition.objects.filter(name=DEMO_NAME).first()
    if definition is None:
        definition = services.definition_save(
            actor=ivan,
            values={
                "name": DEMO_NAME,
                "description": "Every quarter the business owners confirm the high and critical access their AI "
                "integrations hold; security confirms every keep on critical items.",
                "owner": ivan,
                "sensitivities": ["high", "critical"],
                "reviewer_rule": "business_owner",
                "fallback_group": Group.objects.get(name=Pool.IAM_REVIEWERS),
                "forbid_self_review": True,
                "second_stage": "critical_keeps",
                "second_stage_group": Group.objects.get(name=Pool.SECURITY_REVIEWERS),
                "duration_days": 21,
                "default_action": "revoke",
                "apply_mode": "immediate",
                "reminder_days": [7, 2],
                "escalate_days_before": 3,
                "recurrence": "0 6 1 1,4,7,10 *",
            },
        )
    if definition.campaigns.exists():
        return
    campaign = services.campaign_create(actor=ivan, definition=definition, name=f"{DEMO_NAME} (demo run)")
    services.campaign_launch_request(actor=Actor.coerce(ivan), campaign=campaign, enqueue=False)
    services.campaign_launch_run(campaign_id=campaign.pk)
