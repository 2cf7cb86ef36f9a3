"""Discovery in the portal's frame: its navigation entry, the home panel that asks a person about
the apps they connected, and how the audit trail names and links its objects. Each ``build``
runs a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from governance import portal
from governance.targets import register_target
from inventory.discovery import selectors
from inventory.discovery.models import DiscoveryImport, Finding, Remediation

# The home panel names this many of the apps that wait for the person's answer.
PANEL_SIZE = 5


def apps_to_answer_for(request: HttpRequest) -> dict[str, Any] | None:
    """The apps the person connected that nobody registered and that wait for their answer
    (Claim or Not needed); nothing when there are none (one query)."""
    waiting = list(
        selectors.awaiting_answer(request.user)
        .select_related("app")
        .order_by("respond_by", "app__name", "id")[: PANEL_SIZE + 1]
    )
    if not waiting:
        return None
    return {"consents": waiting[:PANEL_SIZE], "more": len(waiting) > PANEL_SIZE}


def _finding_url(finding: Finding) -> str:
    return reverse("discovery:finding", args=[finding.pk])


def _register_targets() -> None:
    register_target(
        Finding._meta.label_lower,
        visible=lambda user: selectors.findings_for(user).only("pk", "title", "kind"),
        label=str,
        url=_finding_url,
    )
    register_target(
        DiscoveryImport._meta.label_lower,
        visible=selectors.imports_for,
        url=lambda imp: reverse("discovery:import", args=[imp.pk]),
    )
    register_target(
        Remediation._meta.label_lower,
        visible=lambda user: Remediation.objects.filter(finding__in=selectors.findings_for(user)),
        label=lambda remediation: f"Revocation #{remediation.pk}",
        url=lambda remediation: reverse("discovery:finding", args=[remediation.finding_id]),
    )


def register() -> None:
    portal.register_nav(
        portal.NavEntry(
            label="Discovery",
            url_name="discovery:dashboard",
            order=87,
            visible=selectors.sees_discovery,
            group=portal.OVERSIGHT,
        )
    )
    portal.register_panel(
        portal.HomePanel(
            key="discovery-mine",
            template="discovery/panels/mine.html",
            build=apps_to_answer_for,
            order=15,
        )
    )
    _register_targets()
