"""Campaign fixtures: a small catalog, integrations and grants made with the ORM (inventory's
registration flow is not what these tests are about), definitions through the service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from approvals.campaigns import services, tasks
from approvals.campaigns.models import Campaign, CampaignDefinition
from governance.models import User
from inventory.models import Grant, Integration, ResourceSystem, Scope


@pytest.fixture
def catalog(db: Any) -> dict[str, Scope]:
    system = ResourceSystem.objects.create(code="crm", name="CRM")
    return {
        "read": Scope.objects.create(system=system, name="read", code="crm:read", sensitivity="low", access="read"),
        "write": Scope.objects.create(
            system=system, name="write", code="crm:write", sensitivity="high", access="write"
        ),
        "admin": Scope.objects.create(
            system=system, name="admin", code="crm:admin", sensitivity="critical", access="admin"
        ),
    }


@pytest.fixture
def make_integration(db: Any) -> Callable[..., Integration]:
    counter = {"n": 0}

    def make(owner: User, **extra: Any) -> Integration:
        counter["n"] += 1
        values = {
            "name": f"Bot {counter['n']}",
            "kind": "agent",
            "purpose": "demo",
            "business_owner": owner,
            "status": "active",
            "risk_tier": "high",
        }
        values.update(extra)
        return Integration.objects.create(**values)

    return make


@pytest.fixture
def make_grant(db: Any) -> Callable[..., Grant]:
    def make(integration: Integration, scope: Scope, **extra: Any) -> Grant:
        return Grant.objects.create(integration=integration, scope=scope, source_type="test", source_id="1", **extra)

    return make


@pytest.fixture
def make_definition(iam_admin: User) -> Callable[..., CampaignDefinition]:
    counter = {"n": 0}

    def make(**values: Any) -> CampaignDefinition:
        counter["n"] += 1
        base = {"name": f"Definition {counter['n']}", "owner": iam_admin, "duration_days": 14}
        base.update(values)
        return services.definition_save(actor=iam_admin, values=base)

    return make


@pytest.fixture
def launched(iam_admin: User) -> Callable[..., Campaign]:
    """Create a run of ``definition``, claim it for launch and run the background task."""

    def launch(definition: CampaignDefinition) -> Campaign:
        campaign = services.campaign_create(actor=iam_admin, definition=definition)
        services.campaign_launch_request(actor=iam_admin, campaign=campaign)
        tasks.campaign_launch(campaign.pk)
        campaign.refresh_from_db()
        return campaign

    return launch
