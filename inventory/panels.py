"""The inventory's nav entry and home-page panels (registered in ``InventoryConfig.ready``).
Each ``build`` runs a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.http import HttpRequest

from governance import portal
from governance.models import User
from governance.roles import Role, is_iam_admin, sees_everything
from governance.web import signed_in
from inventory import selectors
from inventory.models import IntegrationStatus

LIST_SIZE = 8
# What a report's row shows of the person (their label and the list filter's username).
_PERSON_FIELDS = ("username", "display_name", "first_name", "last_name")


def my_integrations(request: HttpRequest) -> dict[str, Any] | None:
    """What the user answers for, each integration once: drafts to finish; their own (business
    or technical owner); their reports' (whose business owner has the user as manager, seen as
    backup owner), counted per person; others' where they are only the backup owner; ownership
    offered to them. Five queries."""
    user = signed_in(request)
    visible = selectors.integrations_for(user).exclude(status=IntegrationStatus.RETIRED)
    own = Q(business_owner=user) | Q(technical_owner=user)
    unfinished = Q(status__in=[IntegrationStatus.DRAFT, IntegrationStatus.REJECTED])
    drafts = list(visible.filter(own & unfinished).order_by("-updated_at")[:LIST_SIZE])
    rows = list(visible.filter(own).exclude(unfinished).order_by("status", "name")[: LIST_SIZE + 1])
    # A manager reads his reports' integrations per person (a count each, drafts apart), never as
    # his own: the list page filtered by the person has them all.
    reports = list(
        visible.filter(business_owner__manager=user)
        .exclude(own)
        .values("business_owner", *(f"business_owner__{name}" for name in _PERSON_FIELDS))
        .annotate(integrations=Count("pk"), unfinished=Count("pk", filter=unfinished))
        .order_by("business_owner__last_name", "business_owner__username")[: LIST_SIZE + 1]
    )
    for row in reports:
        row["owner"] = User(**{name: row[f"business_owner__{name}"] for name in _PERSON_FIELDS})
    backup = list(
        visible.filter(backup_owner=user)
        .exclude(own)
        .exclude(business_owner__manager=user)
        .select_related("business_owner")
        .order_by("name")[:LIST_SIZE]
    )
    transfers = list(selectors.transfers_awaiting(user)[:LIST_SIZE])
    return {
        "integrations": rows[:LIST_SIZE],
        "more": len(rows) > LIST_SIZE,
        "drafts": drafts,
        "reports": reports[:LIST_SIZE],
        "more_reports": len(reports) > LIST_SIZE,
        "backup": backup,
        "transfers": transfers,
    }


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
        portal.NavEntry(
            label="Scope catalog",
            url_name="inventory:catalog",
            order=60,
            visible=sees_everything,
            group=portal.ADMINISTRATION,
        )
    )
    portal.register_nav(
        portal.NavEntry(
            label="Orphaned",
            url_name="inventory:orphans",
            order=61,
            visible=is_iam_admin,
            count=_orphan_count,
            group=portal.ADMINISTRATION,
        )
    )
    portal.register_nav(
        portal.NavEntry(
            label="Workload issuers",
            url_name="inventory:issuers",
            order=62,
            visible=sees_everything,
            count=_issuers_failing,
            group=portal.ADMINISTRATION,
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
