"""The approvals' nav entries, home-page panels and integration-page section (registered in
``ApprovalsConfig.ready``): the reviewer's queue with its count, the requester's open requests,
the workflow pages, and an integration's just-in-time elevations. Each ``build`` runs a fixed
number of queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from weakref import WeakKeyDictionary

from django.db.models import Case, Count, Min, Q, When
from django.http import HttpRequest
from django.utils import timezone

from approvals import permissions, selectors
from approvals.models import Decision, RequestStatus
from governance import portal
from governance.roles import Role
from governance.web import signed_in
from inventory.choices import GrantStatus, IntegrationStatus
from inventory.extensions import register_integration_section
from inventory.models import Integration
from inventory.selectors import grants_for

LIST_SIZE = 8
# The first items of the queue the home page lists (the queue page has the rest).
NEXT_ITEMS = 5
# "Due soon": an open step whose SLA ends within this time.
DUE_SOON = timedelta(hours=24)
# "Recently decided": requests closed, and decisions made, within this time.
RECENT = timedelta(days=14)
# "Expiring soon": grants that end within this time, early enough to ask for a renewal.
EXPIRING_WITHIN = timedelta(days=30)


# The number waiting in the user's queue, kept for the one request that counted it: the home
# page's queue panel counts it, and the nav's queue entry shows the same number on that page.
_QUEUE_COUNTS: WeakKeyDictionary[HttpRequest, int] = WeakKeyDictionary()


def _queue_count(request: HttpRequest) -> int:
    counted = _QUEUE_COUNTS.get(request)
    if counted is not None:
        return counted
    return selectors.queue_open_count(request.user, up_to=portal.BADGE_COUNT_UP_TO)


def review_queue(request: HttpRequest) -> dict[str, Any] | None:
    """What waits for the user's decision (overdue, due within a day, the rest), the first items
    by due date and the user's latest decisions: four queries. Shown to reviewers and IAM admins,
    and to anyone else with a step waiting for them (a requester's manager); None for others."""
    user = signed_in(request)
    now = timezone.now()
    queue = selectors.queue_for(user)
    counts = queue.aggregate(
        waiting=Count("pk"),
        overdue=Count("pk", filter=Q(due_at__lt=now)),
        due_soon=Count("pk", filter=Q(due_at__gte=now, due_at__lt=now + DUE_SOON)),
    )
    _QUEUE_COUNTS[request] = counts["waiting"]
    if not counts["waiting"] and not permissions.sees_queue(user):
        return None
    items = list(queue.select_related("step__request__integration", "step__request__requester")[:NEXT_ITEMS])
    # A reviewer's own decisions: each was made on a step assigned to them, so they see it.
    decided = list(
        Decision.objects.filter(reviewer=user, created_at__gte=now - RECENT)
        .select_related("request__integration")
        .order_by("-created_at", "-id")[:NEXT_ITEMS]
    )
    return {
        **counts,
        "items": [{"assignment": item, "overdue": item.due_at is not None and item.due_at < now} for item in items],
        "decided": decided,
        "due_soon_hours": int(DUE_SOON.total_seconds() // 3600),
    }


def my_requests(request: HttpRequest) -> dict[str, Any] | None:
    """The user's open requests (those sent back for changes first: they wait for the user) and
    the ones decided in the last two weeks, with the reason given: two queries."""
    user = signed_in(request)
    open_requests = list(
        selectors.my_open_requests(user)
        .select_related("integration")
        .order_by(Case(When(status=RequestStatus.CHANGES_REQUESTED, then=0), default=1), "-created_at")[:LIST_SIZE]
    )
    decided = list(
        selectors.access_requests_for(user)
        .filter(requester=user, closed_at__gte=timezone.now() - RECENT)
        .exclude(status__in=[RequestStatus.IN_REVIEW, RequestStatus.CHANGES_REQUESTED])
        .select_related("integration")
        .order_by("-closed_at", "-id")[:LIST_SIZE]
    )
    return {"requests": open_requests, "decided": decided}


def expiring_grants(request: HttpRequest) -> dict[str, Any] | None:
    """The user's integrations (as business or technical owner) with access ending within 30
    days, soonest first, each with the number of grants ending and a renewal link: one query."""
    user = signed_in(request)
    now = timezone.now()
    rows = list(
        grants_for(user)
        .filter(Q(integration__business_owner=user) | Q(integration__technical_owner=user))
        .filter(status=GrantStatus.ACTIVE, expires_at__gt=now, expires_at__lte=now + EXPIRING_WITHIN)
        .exclude(integration__status=IntegrationStatus.RETIRED)
        .values("integration_id", "integration__name")
        .annotate(grants=Count("pk"), first_expiry=Min("expires_at"))
        .order_by("first_expiry", "integration_id")[: LIST_SIZE + 1]
    )
    shown: list[dict[str, Any]] = [
        {**row, "days_left": max((row["first_expiry"] - now).days, 0)} for row in rows[:LIST_SIZE]
    ]
    return {"rows": shown, "more": len(rows) > LIST_SIZE, "days": EXPIRING_WITHIN.days}


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
            label="Workflows",
            url_name="approvals:workflow-list",
            order=80,
            visible=permissions.can_read_workflows,
            group=portal.ADMINISTRATION,
        )
    )
    portal.register_panel(
        portal.HomePanel(key="approvals-queue", template="approvals/panels/queue.html", build=review_queue, order=15)
    )
    portal.register_panel(
        portal.HomePanel(
            key="approvals-expiring",
            template="approvals/panels/expiring.html",
            build=expiring_grants,
            order=19,
            roles=frozenset({Role.BUSINESS_USER}),
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
