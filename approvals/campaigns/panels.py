"""The campaigns' nav entry (with the count of items waiting for the user's decision) and their
home-page panels (registered in ``CampaignsConfig.ready``). Each ``build`` runs a fixed number of
queries."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Min, Q
from django.http import HttpRequest

from approvals.campaigns.models import UNDECIDED, CampaignStatus
from approvals.campaigns.selectors import campaigns_for, my_open_items
from governance import portal
from governance.roles import Role

LIST_SIZE = 8


def _sees_campaigns(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def _my_open_count(request: HttpRequest) -> int:
    return my_open_items(request.user).count()


def my_items(request: HttpRequest) -> dict[str, Any] | None:
    """The user's open items per running campaign, nearest deadline first."""
    rows = list(
        my_open_items(request.user)
        .values("campaign_id", "campaign__name", "campaign__deadline")
        .annotate(n=Count("pk"), first=Min("pk"))
        .order_by("campaign__deadline")[:LIST_SIZE]
    )
    if not rows:
        return None
    return {"rows": rows}


def running(request: HttpRequest) -> dict[str, Any] | None:
    """Campaigns launching or running, with their undecided items, nearest deadline first."""
    rows = list(
        campaigns_for(request.user)
        .filter(status__in=[CampaignStatus.LAUNCHING, CampaignStatus.ACTIVE])
        .annotate(open_items=Count("items", filter=Q(items__status__in=UNDECIDED)))
        .order_by("deadline")[:LIST_SIZE]
    )
    return {"campaigns": rows}


def register() -> None:
    portal.register_nav(
        portal.NavEntry(
            label="Campaigns",
            url_name="campaigns:campaign-list",
            order=30,
            visible=_sees_campaigns,
            count=_my_open_count,
        )
    )
    portal.register_panel(
        portal.HomePanel(
            key="campaigns-my-items",
            template="campaigns/panels/my_items.html",
            build=my_items,
            order=22,
            roles=frozenset({Role.BUSINESS_USER, Role.REVIEWER, Role.IAM_ADMIN}),
        )
    )
    portal.register_panel(
        portal.HomePanel(
            key="campaigns-running",
            template="campaigns/panels/running.html",
            build=running,
            order=23,
            roles=frozenset({Role.IAM_ADMIN, Role.AUDITOR}),
        )
    )
