"""Inventory fixtures: a small scope catalog and integrations built through the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from governance.actors import Actor
from governance.models import User
from inventory import services
from inventory.models import Integration, Scope


@pytest.fixture
def catalog(db: Any) -> dict[str, Scope]:
    """Low/read, high/read, medium/write, critical/admin scopes in two systems."""
    # Every audit event names an accountable person, and the system must say for whom it acts:
    # here an account that plays no other part (inactive, no role).
    keeper = User.objects.create(username="catalog-keeper", is_active=False)
    actor = Actor.system(on_behalf_of=keeper)
    graph = services.resource_system_save(actor=actor, values={"code": "msgraph", "name": "Microsoft Graph"})
    hr = services.resource_system_save(actor=actor, values={"code": "hrdb", "name": "HR database"})
    spec = [
        (graph, "User.Read", "low", "read"),
        (graph, "Mail.Read", "high", "read"),
        (graph, "Calendars.ReadWrite", "medium", "write"),
        (hr, "compensation.read", "critical", "read"),
        (hr, "admin", "critical", "admin"),
    ]
    return {
        f"{s.code}:{n}": services.scope_save(
            actor=actor, system=s, values={"name": n, "sensitivity": sens, "access": acc}
        )
        for s, n, sens, acc in spec
    }


@pytest.fixture
def make_integration(catalog: dict[str, Scope]) -> Callable[..., Integration]:
    def make(
        owner: User,
        *,
        name: str = "Notes bot",
        scopes: tuple[str, ...] = ("msgraph:User.Read",),
        submit: bool = False,
        **values: Any,
    ) -> Integration:
        data: dict[str, Any] = {
            "name": name,
            "kind": "chatbot",
            "purpose": "Summarises meetings.",
            "business_owner": owner,
            "autonomy": "suggest_only",
            "workload_identity": "spiffe://example.org/ns/ai/sa/notes",
            "requested_scopes": [catalog[c] for c in scopes],
        }
        data.update(values)
        integration = services.integration_register(actor=owner, values=data, submit=submit)
        # Other people named as owners were asked (a business user cannot assign them): each
        # accepts, as they would from the email they got.
        for transfer in integration.transfers.filter(status="proposed").select_related("to_user"):
            services.ownership_transfer_accept(actor=transfer.to_user, transfer=transfer)
        integration.refresh_from_db()
        return integration

    return make


def form_data(business_owner: str, **over: Any) -> dict[str, Any]:
    """What the registration (or edit) page posts for a plain draft: the required fields, no
    credential rows; ``over`` changes or adds fields."""
    return {
        "name": "Deal desk copilot",
        "kind": "agent",
        "purpose": "Prepares deal summaries.",
        "environment": "production",
        "autonomy": "human_in_loop",
        "business_owner": business_owner,
        "cred-TOTAL_FORMS": "0",
        "cred-INITIAL_FORMS": "0",
        "action": "draft",
        **over,
    }


def grant_all(integration: Integration, approver: User) -> None:
    """Make it active with a grant for each requested scope (what approvals does on approval)."""
    actor = Actor.system(on_behalf_of=integration.business_owner)
    integration.refresh_from_db()
    if integration.status == "draft":
        services.integration_transition(actor=actor, integration=integration, to_status="pending")
    services.integration_transition(actor=actor, integration=integration, to_status="active")
    from django.db import transaction

    with transaction.atomic():
        services.grant_create_many(
            actor=actor,
            integration=integration,
            scopes=list(integration.requested_scopes.all()),
            source_type="tests",
            source_id="1",
            approvers=[approver],
            expires_at=None,
        )


@pytest.fixture(autouse=True)
def no_approvals_receivers() -> Any:
    """Detach approvals' receivers so inventory is tested alone (its own contract: the signals)."""
    from inventory import signals

    saved = {}
    for name in (
        "integration_submitted",
        "integration_scopes_added",
        "integration_risk_raised",
        "integration_disabled",
    ):
        sig = getattr(signals, name)
        saved[name] = list(sig.receivers)
        sig.receivers = [r for r in sig.receivers if "approvals" not in repr(r)]
        sig.sender_receivers_cache.clear()
    yield
    for name, receivers in saved.items():
        sig = getattr(signals, name)
        sig.receivers = receivers
        sig.sender_receivers_cache.clear()
