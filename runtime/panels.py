"""The runtime's nav entry, home panel and the Runtime section of the integration page
(registered in ``RuntimeConfig.ready``). Each ``build`` runs a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from governance import portal
from governance.roles import Role, sees_everything
from inventory.choices import IdentityStatus
from inventory.extensions import register_integration_section
from inventory.models import Integration
from runtime import permissions, selectors


def activity_totals(request: HttpRequest) -> dict[str, Any] | None:
    """Tokens issued and requests refused in the last 24 hours (one query)."""
    totals = selectors.activity_totals(request.user, now=timezone.now())
    return {
        "totals": totals,
        "refused_url": reverse("runtime:activity") + "?" + urlencode({"outcome": "refused"}),
    }


def integration_runtime(request: HttpRequest, integration: Integration) -> dict[str, Any] | None:
    """The integration's identity in one line, its tokens of the last 24 hours and its latest
    refusals with their reasons (three queries)."""
    runtime = selectors.integration_runtime(integration, now=timezone.now())
    return {
        "runtime": runtime,
        "identity_label": IdentityStatus(runtime.identity).label,
        "activity_url": reverse("runtime:activity") + "?" + urlencode({"integration": integration.pk}),
    }


def register() -> None:
    portal.register_nav(
        portal.NavEntry(
            label="Runtime activity",
            url_name="runtime:activity",
            order=85,
            visible=sees_everything,
            group=portal.OVERSIGHT,
        )
    )
    portal.register_nav(
        portal.NavEntry(
            label="Runtime policy",
            url_name="runtime:policies",
            order=86,
            visible=permissions.can_read_policies,
            group=portal.OVERSIGHT,
        )
    )
    portal.register_panel(
        portal.HomePanel(
            key="runtime-activity",
            template="runtime/panels/activity.html",
            build=activity_totals,
            order=40,
            roles=frozenset({Role.REVIEWER, Role.IAM_ADMIN, Role.AUDITOR}),
        )
    )
    register_integration_section(
        "runtime", template="runtime/sections/integration.html", build=integration_runtime, order=50
    )
