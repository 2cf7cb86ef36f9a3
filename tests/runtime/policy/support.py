"""A small inventory for policy tests: a CRM with three scopes, an agent holding two of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from governance.models import User
from inventory.models import Grant, Integration, ResourceSystem, Scope
from runtime.policy import entities
from runtime.policy.pdp import PolicyRequest

# A Tuesday at 10:00 UTC: inside the default set's business hours.
WEEKDAY_MORNING = datetime.fromisoformat("2026-11-24T10:00:00+00:00")


@dataclass
class PolicyWorld:
    owner: User
    crm: ResourceSystem
    scopes: dict[str, Scope]
    integration: Integration

    def loaded(self, now: datetime = WEEKDAY_MORNING) -> Integration:
        """The integration as the decision point reads it (owners, groups, usable grants)."""
        return entities.load_integrations([self.integration.pk], now)[self.integration.pk]

    def request(self, scope: str = "read", action: str = "exchange_token", **values: Any) -> PolicyRequest:
        at = values.pop("at", WEEKDAY_MORNING)
        return PolicyRequest(integration=self.loaded(at), action=action, scope=self.scopes[scope], at=at, **values)


def build_policy_world(owner: User, **integration_values: Any) -> PolicyWorld:
    crm = ResourceSystem.objects.create(code="crm", name="CRM")
    scopes = {
        name: Scope.objects.create(system=crm, name=name, code=f"crm:{name}", access=access, sensitivity=sensitivity)
        for name, access, sensitivity in (
            ("read", "read", "medium"),
            ("write", "write", "high"),
            ("admin", "admin", "critical"),
        )
    }
    integration = Integration.objects.create(
        name="Support agent",
        kind="agent",
        purpose="Answers customers.",
        business_owner=owner,
        status=integration_values.pop("status", "active"),
        **integration_values,
    )
    for name in ("read", "write"):
        Grant.objects.create(integration=integration, scope=scopes[name], source_type="tests", source_id="1")
    return PolicyWorld(owner, crm, scopes, integration)
