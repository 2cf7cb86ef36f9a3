"""Kernel pages: home (what waits for each role), the audit trail, error handlers."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from governance import portal, roles
from governance.api.problems import problem_response
from governance.filters import AuditTrailFilter
from governance.history import action_label, audit_events_changes
from governance.models import AuditEvent, EmailStatus, User
from governance.permissions import can_retry_email, can_view_outbox
from governance.selectors import audit_events_for, outbox_for
from governance.services import email_retry
from governance.targets import target_links
from governance.web import attempt, signed_in

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
    ("mark", "Business user, manager of alice and bob"),
]


class PortalLoginView(LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        ctx["demo_accounts"] = DEMO_ACCOUNTS
        return ctx


# What the home page says each role is there for (the panels below it show the work itself).
ROLE_HOME: dict[str, tuple[str, str]] = {
    roles.Role.BUSINESS_USER: (
        "Your AI integrations",
        "What you own, what waits for your answer, and what expires soon.",
    ),
    roles.Role.REVIEWER: ("Your reviews", "Approval steps and recertification items waiting for your decision."),
    roles.Role.IAM_ADMIN: (
        "Portal administration",
        "Everything waiting for a decision, and what needs the IAM team's attention.",
    ),
    roles.Role.AUDITOR: (
        "Audit overview",
        "The latest privileged actions and the integrity of the audit trail. You have read-only access.",
    ),
}


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    heading, intro = ROLE_HOME.get(roles.primary_role(user), ("Welcome", ""))
    panels = []
    for panel in portal.home_panels():
        if panel.roles and not roles.has_role(user, *panel.roles):
            continue
        data = panel.build(request)
        if data is not None:
            panels.append({"template": panel.template, "data": data, "key": panel.key})
    return render(
        request,
        "governance/home.html",
        {
            "panels": panels,
            "has_roles": bool(roles.role_names(user)) or user.is_superuser,
            "heading": heading,
            "intro": intro,
        },
    )


@login_required
@require_GET
def outbox_list(request: HttpRequest) -> HttpResponse:
    """Emails not yet delivered (failed first), or one status; IAM admins may retry them."""
    user = signed_in(request)
    if not can_view_outbox(user):
        raise Http404
    status = request.GET.get("status", "")
    if status not in EmailStatus.values:
        status = ""
    page = Paginator(outbox_for(user, status=status), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "governance/outbox.html",
        {
            "page": page,
            "status": status,
            "statuses": EmailStatus.choices,
            "query": f"status={status}" if status else "",
            "can_retry": can_retry_email(user),
        },
    )


@login_required
@require_POST
def outbox_retry(request: HttpRequest, pk: int) -> HttpResponse:
    user = signed_in(request)
    email = get_object_or_404(outbox_for(user), pk=pk)
    attempt(
        request,
        lambda: email_retry(actor=user, email=email),
        success=f"The email to {email.to_address} will be sent again now.",
    )
    return redirect("outbox")


@login_required
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    """The audit trail the viewer may read, newest first: each event's object named and linked
    when the viewer may open it, and what it changed as people read it."""
    user = signed_in(request)
    events = audit_events_for(user).select_related("actor", "owner").order_by("-id")
    filterset = AuditTrailFilter(request.GET, queryset=events)
    # A filter the form refuses lists nothing (its error says why) rather than everything.
    listed = filterset.qs if filterset.is_valid() else events.none()
    page = Paginator(listed, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "governance/audit_list.html",
        {
            "filter": filterset,
            "page": page,
            "rows": _audit_rows(user, list(page)),
            "people": _people_named(events),
            "query": query.urlencode(),
        },
    )


def _audit_rows(user: User, events: list[AuditEvent]) -> list[dict[str, Any]]:
    """What a row of the audit trail shows, for a page of events in a fixed number of queries."""
    links = target_links(user, [(event.target_type, event.target_id, event.target_repr) for event in events])
    changes = audit_events_changes(events)
    return [
        {
            "event": event,
            "action": action_label(event.action),
            "target": link,
            "changes": changed,
            "actor": event.actor.label if event.actor else event.actor_username,
            "owner": event.owner.label if event.owner else event.owner_username,
        }
        for event, link, changed in zip(events, links, changes, strict=True)
    ]


# The suggestions offered while typing a name in a filter: enough to find anyone active.
PEOPLE_SUGGESTED = 500


def _people_named(events: QuerySet[AuditEvent]) -> list[str]:
    """Usernames that acted in the trail the viewer reads (the "who acted" suggestions)."""
    names = events.order_by("actor_username").exclude(actor_username="").values_list("actor_username", flat=True)
    return list(names.distinct()[:PEOPLE_SUGGESTED])


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
    return render(request, "403.html", {"detail": str(exception or "")}, status=403)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return problem_response(status=400, detail="Bad request.")
    return render(request, "governance/error.html", {"title": "Bad request", "detail": ""}, status=400)
