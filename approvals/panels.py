"""The approvals' nav entries, home-page panels and integration-page section (registered in
``ApprovalsConfig.ready``): the reviewer's queue with its count, the requester's open requests,
the workflow pages, and an integration's just-in-time elevations. Each ``build`` runs a fixed
number of queries."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from approvals import permissions, selectors
from governance import portal
from governance.roles import Role
from inventory.extensions import register_integration_section
from inventory.models import Integration

LIST_SIZE = 8


def _queue_count(request: HttpRequest) -> int:
    return selectors.queue_open_count(request.user)


def review_queue(request: HttpRequest) -> dict[str, Any] | None:
    return {"waiting": selectors.queue_open_count(request.user), "overdue": selectors.overdue_count(request.user)}


def my_requests(request: HttpRequest) -> dict[str, Any] | None:
    return {"requests": list(selectors.my_open_requests(request.user)[:LIST_SIZE])}


def integration_elevations(request: HttpRequest, integration: Integration) -> dict[str, Any] | None:
    """The integration's just-in-time elevations (none: no section), four queries."""
    rows = selectors.elevations_of(request.user, integration)
    if not rows:
        return None
    return {"elevations": rows, "limit": selectors.ELEVATIONS_SHOWN}


def register() -> None:
    portal.register_nav(
        portal.NavEntry(
            label="Queue", url_name="approvals:queue", order=20, visible=permissions.sees_queue, count=_queue_count
        )
    )
    portal.register_nav(portal.NavEntry(label="Requests", url_name="approvals:request-list", order=21))
    portal.register_nav(
        portal.NavEntry(
            label="Workflows", url_name="approvals:workflow-list", order=80, visible=permissions.can_read_workflows
        )
    )
    portal.register_panel(
        portal.HomePanel(
            key="approvals-queue",
            template="approvals/panels/queue.html",
            build=review_queue,
            order=20,
            roles=frozenset({Role.REVIEWER, Role.IAM_ADMIN}),
        )
    )
    register_integration_section(
        "elevations", template="approvals/sections/elevations.html", build=integration_elevations, order=40
    )
    portal.register_panel(
        portal.HomePanel(
            key="approvals-mine",
            template="approvals/panels/my_requests.html",
            build=my_requests,
            order=21,
            roles=frozenset({Role.BUSINESS_USER}),
        )
    )
