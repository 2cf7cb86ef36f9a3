"""The integration page's section "Found at the identity providers": the apps discovery found
that are this integration (matched by its external app ids, or linked by an import), how many
people consented, when the provider last listed them, and the findings about it still open."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse

from inventory.discovery.models import DiscoveredApp, Finding
from inventory.discovery.selectors import findings_for
from inventory.extensions import register_integration_section
from inventory.models import ExternalAppId, Integration

# The section lists this many apps and open findings; more are counted as "and more".
SHOWN = 25


@dataclass(frozen=True)
class FindingRow:
    finding: Finding
    # Empty for someone who may not open the finding's page.
    url: str


@dataclass
class AppRow:
    app: DiscoveredApp
    findings: list[FindingRow] = field(default_factory=list)


def apps_of(integration: Integration) -> QuerySet[DiscoveredApp]:
    """The discovered apps that are ``integration``: those an import linked to it, and those
    one of its external app ids names (by the provider's app key or its second key), before
    the next import links them."""
    named = ExternalAppId.objects.filter(integration=integration, source=OuterRef("source")).filter(
        Q(app_key=OuterRef("app_key")) | Q(app_key=OuterRef("alt_key"))
    )
    return DiscoveredApp.objects.filter(Q(integration=integration) | Q(Exists(named)))


def finding_url(finding_id: int) -> str:
    return reverse("discovery:finding", args=[finding_id])


def integration_found(request: HttpRequest, integration: Integration) -> dict[str, Any] | None:
    """The section's data in two queries (apps, open findings), or None when the integration
    has no external app id and discovery found nothing about it. A finding links to its page
    for those who may open it (``findings_for``: reviewers, IAM admins and auditors; a person
    who consented to its app or answers for it)."""
    apps = list(apps_of(integration).order_by("source", "tenant", "name", "id")[: SHOWN + 1])
    app_ids = apps_of(integration).values("pk")
    viewer_sees = Exists(findings_for(request.user).filter(pk=OuterRef("pk")))
    open_findings = list(
        Finding.objects.filter(Q(integration=integration) | Q(app__in=app_ids), closed_at__isnull=True)
        .only("id", "kind", "status", "title", "app_id", "opened_at", "people_affected")
        .annotate(viewer_sees=viewer_sees)
        .order_by("-opened_at", "-id")[: SHOWN + 1]
    )
    external_ids = list(integration.external_app_ids.all())
    if not (apps or open_findings or external_ids):
        return None
    rows = {app.pk: AppRow(app=app) for app in apps[:SHOWN]}
    others: list[FindingRow] = []
    for finding in open_findings[:SHOWN]:
        shown = FindingRow(finding=finding, url=finding_url(finding.pk) if finding.viewer_sees else "")
        row = rows.get(finding.app_id) if finding.app_id is not None else None
        (row.findings if row is not None else others).append(shown)
    return {
        "rows": list(rows.values()),
        "more_apps": len(apps) > SHOWN,
        "other_findings": others,
        "more_findings": len(open_findings) > SHOWN,
        "external_ids": external_ids,
        "shown": SHOWN,
    }


def register() -> None:
    register_integration_section(
        "found-at-providers",
        template="discovery/sections/integration.html",
        build=integration_found,
        order=45,
    )
