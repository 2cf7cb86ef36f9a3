from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    """Recertification campaigns: part of approvals (every decision about access), kept as its own
    Django app (label ``campaigns``) so its models and migrations stand apart."""

    name = "approvals.campaigns"
    label = "campaigns"
    verbose_name = "Recertification campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from approvals.campaigns import demo, webhooks
        from governance import demo as demo_registry
        from governance import portal, scheduling
        from governance.roles import Role

        scheduling.register("campaigns-sweep", "approvals.campaigns.tasks.campaigns_sweep", "*/10 * * * *")
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
                build=_my_items_panel,
                order=22,
                roles=frozenset({Role.BUSINESS_USER, Role.REVIEWER, Role.IAM_ADMIN}),
            )
        )
        portal.register_panel(
            portal.HomePanel(
                key="campaigns-running",
                template="campaigns/panels/running.html",
                build=_running_panel,
                order=23,
                roles=frozenset({Role.IAM_ADMIN, Role.AUDITOR}),
            )
        )
        demo_registry.register("campaigns", 30, demo.seed)
        webhooks.register()


def _sees_campaigns(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def _my_open_count(request: Any) -> int:
    from approvals.campaigns.selectors import my_open_items

    return my_open_items(request.user).count()


def _my_items_panel(request: Any) -> dict[str, Any] | None:
    from django.db.models import Count, Min

    from approvals.campaigns.selectors import my_open_items

    rows = list(
        my_open_items(request.user)
        .values("campaign_id", "campaign__name", "campaign__deadline")
        .annotate(n=Count("pk"), first=Min("pk"))
        .order_by("campaign__deadline")[:8]
    )
    if not rows:
        return None
    return {"rows": rows}


def _running_panel(request: Any) -> dict[str, Any] | None:
    from django.db.models import Count, Q

    from approvals.campaigns.models import UNDECIDED, CampaignStatus
    from approvals.campaigns.selectors import campaigns_for

    rows = list(
        campaigns_for(request.user)
        .filter(status__in=[CampaignStatus.LAUNCHING, CampaignStatus.ACTIVE])
        .annotate(open_items=Count("items", filter=Q(items__status__in=UNDECIDED)))
        .order_by("deadline")[:8]
    )
    return {"campaigns": rows}
