"""The inventory's nav entry and home-page panels (registered in ``InventoryConfig.ready``).
Each ``build`` runs a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from governance import portal
from governance.roles import Role, is_iam_admin, sees_everything
from inventory import selectors
from inventory.models import IntegrationStatus

LIST_SIZE = 8


def my_integrations(request: HttpRequest) -> dict[str, Any] | None:
    user = request.user
    mine = selectors.integrations_for(user).filter(selectors.owned_by(user)).exclude(status=IntegrationStatus.RETIRED)
    rows = list(mine.order_by("status", "name")[: LIST_SIZE + 1])
    drafts = list(
        mine.filter(status__in=[IntegrationStatus.DRAFT, IntegrationStatus.REJECTED]).order_by("-updated_at")[
            :LIST_SIZE
        ]
    )
    transfers = list(selectors.transfers_awaiting(user)[:LIST_SIZE])
    return {"integrations": rows[:LIST_SIZE], "more": len(rows) > LIST_SIZE, "drafts": drafts, "transfers": transfers}


def orphaned(request: HttpRequest) -> dict[str, Any] | None:
    qs = selectors.integrations_for(request.user).filter(orphaned=True).exclude(status=IntegrationStatus.RETIRED)
    return {"count": qs.count(), "items": list(qs.select_related("business_owner").order_by("name")[:5])}


def _orphan_count(request: HttpRequest) -> int:
    if not is_iam_admin(request.user):
        return 0
    return (
        selectors.integrations_for(request.user).filter(orphaned=True).exclude(status=IntegrationStatus.RETIRED).count()
    )


def _issuers_failing(request: HttpRequest) -> int:
    """Active issuers whose last key refresh failed: IAM admins' to look at."""
    if not is_iam_admin(request.user):
        return 0
    return selectors.issuers_for(request.user).filter(is_active=True).exclude(keys_error="").count()


def register() -> None:
    portal.register_nav(
        portal.NavEntry(label="Inventory", url_name="inventory:list", order=10, visible=lambda u: u.is_authenticated)
    )
    portal.register_nav(
        portal.NavEntry(label="Scope catalog", url_name="inventory:catalog", order=60, visible=sees_everything)
    )
    portal.register_nav(
        portal.NavEntry(
            label="Orphaned", url_name="inventory:orphans", order=61, visible=is_iam_admin, count=_orphan_count
        )
    )
    portal.register_nav(
        portal.NavEntry(
            label="Workload issuers",
            url_name="inventory:issuers",
            order=62,
            visible=sees_everything,
            count=_issuers_failing,
        )
    )
    portal.register_panel(
        portal.HomePanel(
            key="inventory-mine",
            template="inventory/panels/mine.html",
            build=my_integrations,
            order=20,
            roles=frozenset({Role.BUSINESS_USER}),
        )
    )
    portal.register_panel(
        portal.HomePanel(
            key="inventory-orphaned",
            template="inventory/panels/orphaned.html",
            build=orphaned,
            order=30,
            roles=frozenset({Role.IAM_ADMIN}),
        )
    )
