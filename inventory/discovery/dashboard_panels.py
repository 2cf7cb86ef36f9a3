"""Discovery's dashboard panel and daily metric (``governance.dashboard``), registered from
``DiscoveryConfig.ready``: sprawl over time — integrations registered in the inventory against the
apps the identity providers show that no registered integration claims — from the daily metric
snapshots, beside today's figures. Organisation-wide, a fixed number of queries."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from governance import dashboard
from governance.charts import line_chart
from governance.controls import figures
from governance.controls.snapshots import weekly_series
from inventory.dashboard_panels import active_count, day_end, inventory_url, tiers_as_of
from inventory.discovery.choices import FindingKind
from inventory.discovery.models import Finding
from inventory.models import IntegrationStatus

REGISTERED = "inventory.registered"
UNREGISTERED = "discovery.unregistered_apps"
WEEKS = 12


def unregistered_findings() -> QuerySet[Finding]:
    """Apps found at the providers that no registered integration claims: shadow findings not
    closed (open, escalated, or waiting for a revocation). At most one per provider app."""
    return Finding.objects.filter(kind=FindingKind.SHADOW, closed_at__isnull=True)


def unregistered_now(day: date) -> float:
    return float(unregistered_findings().count())


def unregistered_on(day: date) -> float:
    """Shadow findings open at the end of ``day``: opened by then, closed after (or not yet)."""
    end = day_end(day)
    return float(
        Finding.objects.filter(kind=FindingKind.SHADOW, opened_at__lt=end)
        .filter(Q(closed_at__isnull=True) | Q(closed_at__gte=end))
        .count()
    )


def findings_url() -> str:
    return f"{reverse('discovery:findings')}?{urlencode({'kind': FindingKind.SHADOW, 'status': 'active'})}"


def sprawl(request: HttpRequest) -> dict[str, Any] | None:
    """Registered (active) integrations and unregistered apps, the last snapshot of each of the
    last ``WEEKS`` weeks (this week: today's figures), with links to both lists. Three queries."""
    series = weekly_series([REGISTERED, UNREGISTERED], WEEKS)
    # The active count the risk-tier panel of the same page read already (``registered_now``):
    # stored by the hourly task when recent, so the panel says as of when.
    registered, unregistered = float(active_count(request)), unregistered_now(timezone.localdate())
    # This week's point is what is true now, whether or not today's snapshot was taken yet.
    values = {
        key: [value for _start, value in series[key][:-1]] + [now]
        for key, now in ((REGISTERED, registered), (UNREGISTERED, unregistered))
    }
    categories = [f"{start:%d %b}" for start, _value in series[REGISTERED]]
    chart = line_chart(
        categories,
        [("Registered", values[REGISTERED]), ("Discovered, unregistered", values[UNREGISTERED])],
        title="Registered integrations and unregistered apps per week",
        category_label="Week starting",
        key="sprawl",
    )
    return {
        "chart": chart,
        "registered": int(registered),
        "registered_as_of": figures.as_of(tiers_as_of(request)),
        "unregistered": int(unregistered),
        "registered_url": inventory_url(status=IntegrationStatus.ACTIVE),
        "unregistered_url": findings_url(),
        "weeks": WEEKS,
    }


def register() -> None:
    """Register them."""
    dashboard.register_metric(
        dashboard.Metric(
            key=UNREGISTERED,
            label="Discovered apps not registered (open shadow findings)",
            compute=unregistered_now,
            backfill=unregistered_on,
        )
    )
    dashboard.register_panel(
        dashboard.DashboardPanel(
            key="sprawl",
            title="Sprawl over time",
            template="dashboard/panels/sprawl.html",
            build=sprawl,
            order=10,
        )
    )
