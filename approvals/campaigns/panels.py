"""The campaigns' nav entry (with the count of items waiting for the user's decision) and their
home-page panels (registered in ``CampaignsConfig.ready``). Each ``build`` runs a fixed number of
queries."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from django.db.models import Count, IntegerField, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from approvals.campaigns.models import UNDECIDED, CampaignStatus, ReviewItem
from approvals.campaigns.selectors import campaigns_for, my_open_items
from governance import portal
from governance.roles import Role

LIST_SIZE = 8


def _sees_campaigns(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False))


# The user's open items per running campaign, kept for the one request that grouped them: the
# home page's panel reads them, and the nav's count on that page is their sum.
_MY_OPEN: WeakKeyDictionary[HttpRequest, list[dict[str, Any]]] = WeakKeyDictionary()


def _my_open_count(request: HttpRequest) -> int:
    rows = _MY_OPEN.get(request)
    if rows is None:
        return my_open_items(request.user).count()
    return sum(row["n"] for row in rows)


def my_items(request: HttpRequest) -> dict[str, Any] | None:
    """The user's open items per running campaign, nearest deadline first: one query, grouped
    by campaign (a user has items in few running campaigns), whose sum is the nav's count."""
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in my_open_items(request.user)
        .values("campaign_id", "campaign__name", "campaign__deadline")
        .annotate(n=Count("pk"), first=Min("pk"))
        .order_by("campaign__deadline", "campaign_id")
    ]
    _MY_OPEN[request] = rows
    if not rows:
        return None
    return {"rows": rows[:LIST_SIZE]}


def running(request: HttpRequest) -> dict[str, Any] | None:
    """Campaigns launching or running, with their undecided items, nearest deadline first: one
    query, each campaign's items counted from the (campaign, status) index alone."""
    undecided = (
        ReviewItem.objects.filter(campaign=OuterRef("pk"), status__in=UNDECIDED)
        .order_by()
        .values("campaign")
        .annotate(n=Count("*"))
        .values("n")
    )
    rows = list(
        campaigns_for(request.user)
        .filter(status__in=[CampaignStatus.LAUNCHING, CampaignStatus.ACTIVE])
        .annotate(open_items=Coalesce(Subquery(undecided, output_field=IntegerField()), 0))
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
