"""Kernel pages: home (what waits for each role), the audit trail, error handlers."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from governance import portal, roles
from governance.api.problems import problem_response
from governance.filters import AuditEventFilter
from governance.selectors import audit_events_for

log = logging.getLogger(__name__)

DEMO_ACCOUNTS = [
    ("alice", "Business user"),
    ("bob", "Business user"),
    ("rita", "IAM reviewer"),
    ("raj", "IAM reviewer"),
    ("sofia", "Security reviewer"),
    ("omar", "Resource owner (internal data systems)"),
    ("ivan", "IAM admin"),
    ("audrey", "Auditor"),
]


class PortalLoginView(LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        ctx["demo_accounts"] = DEMO_ACCOUNTS
        return ctx


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user_roles = roles.role_names(request.user)
    panels = []
    for panel in portal.home_panels():
        if panel.roles and not any(roles.has_role(request.user, r) for r in panel.roles):
            continue
        data = panel.build(request)
        if data is not None:
            panels.append({"template": panel.template, "data": data, "key": panel.key})
    return render(request, "governance/home.html", {"panels": panels, "has_roles": bool(user_roles) or request.user.is_superuser})


@login_required
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    filterset = AuditEventFilter(request.GET, queryset=audit_events_for(request.user).order_by("-id"))
    page = Paginator(filterset.qs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "governance/audit_list.html",
        {"filter": filterset, "page": page, "query": query.urlencode()},
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return problem_response(status=404, detail="Not found.")
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return problem_response(
            status=500,
            detail="The server failed to complete the request. It was logged with its request id.",
        )
    return render(request, "500.html", status=500)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return problem_response(status=403, detail=str(exception) if exception else "Not allowed.")
    return render(request, "governance/error.html", {"title": "Not allowed", "detail": str(exception or "")}, status=403)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return problem_response(status=400, detail="Bad request.")
    return render(request, "governance/error.html", {"title": "Bad request", "detail": ""}, status=400)
