"""The dashboard: every registered ``governance.dashboard`` panel on ``/dashboard/`` for IAM
admins, reviewers and auditors (anyone else gets a 404), and the panels flagged ``home`` on
those roles' home pages.

How a panel is drawn: its ``build(request)`` runs (None: the panel is left out), then its
template is rendered with the returned dict as the context, plus ``data`` (the same dict),
``panel`` (the ``DashboardPanel``), ``panel_id`` (its key, for element ids), ``request`` and
``user``. The page's context processors (the header's navigation and its counts) run once for
the page, not again for each panel, so panel templates hold no forms (no CSRF token). The dashboard
writes the panel's title as the section's ``<h2 id="panel-<key>">``, so panel templates start
with their content (subheadings ``<h3>``) and include charts with
``{% include "charts/chart.html" with chart=chart %}`` (the page links ``governance/charts.css``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET

from governance import dashboard, portal
from governance.roles import Role, has_role
from governance.web import signed_in

DASHBOARD_ROLES = frozenset({Role.IAM_ADMIN, Role.REVIEWER, Role.AUDITOR})
HOME_PANEL_KEY = "dashboard"


def may_see_dashboard(user: Any) -> bool:
    """IAM admins, reviewers (and reviewer pools), auditors and superusers."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(getattr(user, "is_superuser", False)) or has_role(user, *DASHBOARD_ROLES)


def panels_render(request: HttpRequest, *, home: bool = False) -> list[dict[str, Any]]:
    """The registered panels (only those flagged ``home`` when asked), built and rendered in
    order; each costs its own fixed number of queries."""
    rendered = []
    for panel in dashboard.panels():
        if home and not panel.home:
            continue
        data = panel.build(request)
        if data is None:
            continue
        context = {
            **data,
            "data": data,
            "panel": panel,
            "panel_id": panel.key,
            "request": request,
            "user": request.user,
        }
        # Without the request: the context processors (navigation counts) would run per panel.
        html: SafeString = render_to_string(panel.template, context)
        rendered.append({"key": panel.key, "title": panel.title, "html": html})
    return rendered


@login_required
@require_GET
def dashboard_view(request: HttpRequest) -> HttpResponse:
    if not may_see_dashboard(signed_in(request)):
        raise Http404
    return render(request, "dashboard/dashboard.html", {"panels": panels_render(request)})


def home_build(request: HttpRequest) -> dict[str, Any] | None:
    panels = panels_render(request, home=True)
    return {"panels": panels} if panels else None


def register_home_panels() -> None:
    """One home-page panel that shows the dashboard panels flagged ``home`` (read when the page
    is drawn, so panels registered by apps loaded after this one are included)."""
    portal.register_panel(
        portal.HomePanel(
            key=HOME_PANEL_KEY,
            template="dashboard/home_panel.html",
            build=home_build,
            order=5,
            roles=DASHBOARD_ROLES,
        )
    )
