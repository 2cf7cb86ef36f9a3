"""The inventory's dashboard panels and daily metrics (``governance.dashboard``), registered from
``InventoryConfig.ready``: active integrations by risk tier, the owners holding the most risk, and
the metrics behind the sprawl and standing-credentials trends (registered integrations, standing
credentials). The dashboard shows organisation-wide figures to IAM admins, reviewers and
auditors; each ``build`` runs a fixed number of queries (aggregates on indexed columns). The
counts per tier and the owners' ranking read a quarter of a million index entries at scale, so
the hourly task stores them (``governance.controls.figures``) and the panels say as of when; they
measure live when nothing recent is stored."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from weakref import WeakKeyDictionary

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from governance import dashboard
from governance.charts import bar_list, column_chart, format_value
from governance.controls import figures
from governance.models import User
from inventory.choices import CredentialType, IntegrationStatus, RiskTier
from inventory.models import Credential, Integration

TOP_OWNERS = 10
STANDING_HOLDERS = "inventory.standing_credential_holders"
HIGH_TIERS = (RiskTier.HIGH, RiskTier.CRITICAL)
# Credentials an integration holds until someone rotates or removes them; a workload identity
# token is short-lived by nature and not one of them.
STANDING_TYPES = tuple(value for value in CredentialType.values if value != CredentialType.WORKLOAD_IDENTITY_TOKEN)
_PERSON_FIELDS = ("username", "display_name", "first_name", "last_name")


def day_end(day: date) -> datetime:
    """The first instant after ``day``, in the current time zone."""
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def inventory_url(**filters: str) -> str:
    """The inventory list filtered by ``filters`` (the list's own filter names)."""
    return f"{reverse('inventory:list')}?{urlencode(filters)}"


# --- Metrics ------------------------------------------------------------------------------------


def registered_now(day: date) -> float:
    """Integrations registered and in service (active) now. One query."""
    return float(Integration.objects.filter(status=IntegrationStatus.ACTIVE).count())


def registered_on(day: date) -> float:
    """Integrations that were active at the end of ``day``: the status of each one's last
    history row recorded by then; an integration created by then without a history row that old
    (rows written in bulk) counts with its status now. One query."""
    end = day_end(day)
    status_then = Subquery(
        Integration.history.filter(id=OuterRef("pk"), history_date__lt=end)
        .order_by("-history_date", "-history_id")
        .values("status")[:1]
    )
    return float(
        Integration.objects.filter(created_at__lt=end)
        .annotate(status_then=Coalesce(status_then, F("status")))
        .filter(status_then=IntegrationStatus.ACTIVE)
        .count()
    )


def standing_credentials(at: datetime) -> QuerySet[Credential]:
    """Standing (long-lived) credentials recorded at ``at``: created by then, not expired then,
    of an integration not retired (now). The retired integrations are a subquery (``NOT IN``),
    not a join: the database hashes those few instead of every integration."""
    retired = Integration.objects.filter(status=IntegrationStatus.RETIRED).values("pk")
    return (
        Credential.objects.filter(type__in=STANDING_TYPES, created_at__lt=at)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at))
        .exclude(integration__in=retired)
    )


def standing_now(day: date) -> float:
    return float(standing_credentials(timezone.now()).count())


def standing_on(day: date) -> float:
    return float(standing_credentials(day_end(day)).count())


def holders_now(day: date) -> float:
    """Integrations (not retired) holding at least one standing credential now."""
    return float(standing_credentials(timezone.now()).values("integration_id").distinct().count())


def holders_on(day: date) -> float:
    """Integrations (not retired) holding at least one standing credential at the end of ``day``."""
    return float(standing_credentials(day_end(day)).values("integration_id").distinct().count())


# --- Panels -------------------------------------------------------------------------------------


# The figures behind the risk-tier and top-owners panels, stored hourly (``governance.controls.
# figures``): counting a quarter of a million index entries on every view is too slow.
TIERS_FIGURE = "inventory.active_by_tier"
OWNERS_FIGURE = "inventory.owners_by_risk"

# The active integrations per risk tier measured live, kept for the one request that read them
# (when nothing recent is stored): the risk-tier panel and the sprawl panel's "registered now"
# show the same figure. Gone with the request.
_ACTIVE_BY_TIER: WeakKeyDictionary[HttpRequest, dict[str | None, int]] = WeakKeyDictionary()


def count_by_tier() -> dict[str | None, int]:
    """Active integrations per risk tier (an integration without a tier under None), measured
    now: one query answered from the (status, risk tier) index alone (``COUNT(*)``: a counted
    column would make the database read every row)."""
    return dict(
        Integration.objects.filter(status=IntegrationStatus.ACTIVE)
        .order_by()
        .values_list("risk_tier")
        .annotate(n=Count("*"))
    )


def measure_by_tier() -> list[list[Any]]:
    """``count_by_tier`` as the stored figure keeps it: [tier, count] pairs (JSON)."""
    return [[tier, count] for tier, count in count_by_tier().items()]


def tiers_as_of(request: HttpRequest) -> datetime | None:
    """When the request's counts per tier were measured (None: now)."""
    found = figures.stored(request, TIERS_FIGURE)
    return found.taken_at if found else None


def active_by_tier(request: HttpRequest) -> dict[str | None, int]:
    """Active integrations per risk tier: the stored figure when recent (one query for every
    stored figure), else measured now (``count_by_tier``), once per request."""
    found = figures.stored(request, TIERS_FIGURE)
    if found is not None:
        return {tier: int(count) for tier, count in found.value}
    counts = _ACTIVE_BY_TIER.get(request)
    if counts is None:
        counts = _ACTIVE_BY_TIER[request] = count_by_tier()
    return counts


def active_count(request: HttpRequest) -> int:
    """Active integrations, whatever their tier (``registered_now`` for this request)."""
    return sum(active_by_tier(request).values())


def risk_tiers(request: HttpRequest) -> dict[str, Any] | None:
    """Active integrations by risk tier, each tier linked to the inventory list filtered to it,
    and when they were counted (``as_of``, empty: now). One query when stored, two otherwise."""
    counts = active_by_tier(request)
    tiers: list[dict[str, Any]] = [
        {
            "value": tier,
            "label": str(label),
            "count": counts.get(tier, 0),
            "url": inventory_url(status=IntegrationStatus.ACTIVE, risk_tier=tier),
        }
        for tier, label in RiskTier.choices
    ]
    total = sum(tier["count"] for tier in tiers)
    high = sum(tier["count"] for tier in tiers if tier["value"] in HIGH_TIERS)
    chart = column_chart(
        [tier["label"] for tier in tiers],
        [("Active integrations", [tier["count"] for tier in tiers])],
        title="Active integrations by risk tier",
        category_label="Risk tier",
        links=[tier["url"] for tier in tiers],
        key="risk-tiers",
        summary=f"{format_value(total)} active integration{'' if total == 1 else 's'}, "
        f"{format_value(high)} of them high or critical risk.",
    )
    return {
        "chart": chart,
        "tiers": tiers,
        "total": total,
        "high": high,
        "active_url": inventory_url(status=IntegrationStatus.ACTIVE),
        "as_of": figures.as_of(tiers_as_of(request)),
    }


def owner_ranking() -> list[dict[str, Any]]:
    """The business owners of active integrations ranked by the summed risk score of those
    integrations (ties: more high or critical ones first), at most ``TOP_OWNERS``, each with
    ``business_owner`` (the person's id), ``risk``, ``integrations`` and ``high``. One query
    grouping the integrations by owner alone; JSON, as the stored figure keeps it."""
    return [
        {
            "business_owner": row["business_owner"],
            "risk": int(row["risk"]),
            "integrations": row["integrations"],
            "high": row["high"],
        }
        for row in Integration.objects.filter(status=IntegrationStatus.ACTIVE)
        .order_by()
        .values("business_owner")
        .annotate(
            risk=Sum("risk_score"),
            integrations=Count("*"),
            high=Count("risk_tier", filter=Q(risk_tier__in=HIGH_TIERS)),
        )
        .order_by("-risk", "-high", "business_owner")[:TOP_OWNERS]
    ]


def with_people(ranking: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ranking's rows, each with ``owner`` (a ``User`` with the fields a label needs, read
    now in one query) and ``url``; a person no longer there is left out."""
    people = User.objects.only("pk", *_PERSON_FIELDS).in_bulk([row["business_owner"] for row in ranking])
    rows = []
    for row in ranking:
        owner = people.get(row["business_owner"])
        if owner is not None:
            rows.append(
                {**row, "owner": owner, "url": inventory_url(status=IntegrationStatus.ACTIVE, owner=owner.username)}
            )
    return rows


def owners_by_risk() -> list[dict[str, Any]]:
    """``owner_ranking`` measured now, with the people. Two queries."""
    return with_people(owner_ranking())


def top_owners(request: HttpRequest) -> dict[str, Any] | None:
    """The owners holding the most risk, each linked to the inventory list of their active
    integrations, and when they were ranked (``as_of``, empty: now). Two queries: the stored
    ranking (or, when nothing recent is stored, the ranking measured now) and the people."""
    found = figures.stored(request, OWNERS_FIGURE)
    if found is not None:
        rows, as_of = with_people(found.value), figures.as_of(found.taken_at)
    else:
        rows, as_of = owners_by_risk(), ""
    chart = bar_list(
        [(row["owner"].label, float(row["risk"])) for row in rows],
        title="Risk held by owner (summed risk scores of active integrations)",
        category_label="Business owner",
        value_label="Risk held",
        links=[row["url"] for row in rows],
        key="top-owners",
    )
    return {"rows": rows, "chart": chart if rows else None, "top": TOP_OWNERS, "as_of": as_of}


def register() -> None:
    """Register them."""
    dashboard.register_figure(dashboard.StoredFigure(key=TIERS_FIGURE, measure=measure_by_tier))
    dashboard.register_figure(dashboard.StoredFigure(key=OWNERS_FIGURE, measure=owner_ranking))
    dashboard.register_metric(
        dashboard.Metric(
            key="inventory.registered",
            label="Registered integrations (active)",
            compute=registered_now,
            backfill=registered_on,
        )
    )
    dashboard.register_metric(
        dashboard.Metric(
            key="inventory.standing_credentials",
            label="Standing credentials recorded",
            compute=standing_now,
            backfill=standing_on,
        )
    )
    dashboard.register_metric(
        dashboard.Metric(
            key=STANDING_HOLDERS,
            label="Integrations holding standing credentials",
            compute=holders_now,
            backfill=holders_on,
        )
    )
    dashboard.register_panel(
        dashboard.DashboardPanel(
            key="risk-tiers",
            title="Risk tier distribution",
            template="dashboard/panels/risk_tiers.html",
            build=risk_tiers,
            order=20,
            home=True,
        )
    )
    dashboard.register_panel(
        dashboard.DashboardPanel(
            key="top-owners",
            title="Top owners by risk held",
            template="dashboard/panels/top_owners.html",
            build=top_owners,
            order=60,
        )
    )
