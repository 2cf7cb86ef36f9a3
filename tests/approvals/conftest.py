"""The approvals cast: a scope catalog with two systems (one owned by a resource owner), an
integration factory, and requests opened the way the inventory opens them (its signals)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

from approvals.services import default_workflows_ensure
from governance.actors import Actor
from governance.models import User
from governance.roles import Role
from inventory.models import Integration, IntegrationStatus, ResourceSystem, Scope
from inventory.signals import integration_scopes_added, integration_submitted


@pytest.fixture
def workflows(db: Any, roles: None) -> None:
    default_workflows_ensure()


@pytest.fixture
def resource_owner(make_user: Callable[..., User]) -> User:
    return make_user("omar", Role.REVIEWER)


@pytest.fixture
def catalog(db: Any, resource_owner: User) -> dict[str, Scope]:
    graph = ResourceSystem.objects.create(code="msgraph", name="Microsoft Graph")
    hr = ResourceSystem.objects.create(code="hrdb", name="HR database")
    hr.owners.add(resource_owner)
    scopes = {
        "mail": Scope.objects.create(system=graph, name="Mail.Read", code="msgraph:Mail.Read", sensitivity="high"),
        "files": Scope.objects.create(system=graph, name="Files.Read", code="msgraph:Files.Read", sensitivity="medium"),
        "hr": Scope.objects.create(
            system=hr, name="employees.read", code="hrdb:employees.read", sensitivity="critical"
        ),
    }
    return scopes


@pytest.fixture
def make_integration(owner: User) -> Callable[..., Integration]:
    def make(
        name: str = "Sales copilot", *, tier: str = "low", status: str = IntegrationStatus.PENDING, **extra: Any
    ) -> Integration:
        return Integration.objects.create(
            name=name,
            kind="agent",
            purpose="Drafts replies",
            business_owner=extra.pop("business_owner", owner),
            status=status,
            risk_tier=tier,
            risk_score={"low": 5, "medium": 30, "high": 60, "critical": 90}[tier],
            risk_factors=[{"code": "acts_for_users", "points": 5, "reason": "Acts for users"}],
            **extra,
        )

    return make


@pytest.fixture
def submit(workflows: None, catalog: dict[str, Scope]) -> Callable[..., Any]:
    """Open a registration request as inventory does: ``integration_submitted`` in its transaction."""
    from approvals.models import AccessRequest

    def do(integration: Integration, scopes: list[Scope] | None = None, actor: User | None = None) -> AccessRequest:
        with transaction.atomic():
            integration_submitted.send(
                sender=Integration,
                integration=integration,
                actor=Actor.coerce(actor or integration.business_owner),
                scopes=scopes if scopes is not None else [catalog["files"]],
            )
        return AccessRequest.objects.filter(integration=integration).latest("id")

    return do


@pytest.fixture
def expand(workflows: None) -> Callable[..., Any]:
    from approvals.models import AccessRequest

    def do(integration: Integration, scopes: list[Scope]) -> AccessRequest:
        with transaction.atomic():
            integration_scopes_added.send(
                sender=Integration,
                integration=integration,
                actor=Actor.coerce(integration.business_owner),
                added_scopes=scopes,
            )
        return AccessRequest.objects.filter(integration=integration).latest("id")

    return do
