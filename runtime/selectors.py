"""Reads of the runtime's token log, always for a user: what they may see is decided here, and the
activity page, its CSV export, the API and the integration's Runtime section all read through it.

Who sees which token events: reviewers, IAM admins and auditors see every event, including
refusals that name no integration (an unknown issuer, an identity bound to nothing); anyone else
sees the events of the integrations they may see (``inventory.selectors.integrations_for``: the
ones they own), so an event answers 404 exactly when its integration would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet

from governance.roles import sees_everything
from inventory import selectors as inventory_selectors
from inventory.models import Integration, WorkloadBinding
from runtime.models import TokenEvent, TokenOutcome, TokenRevocation

# How far back the Runtime section and the home panel count.
RECENT = timedelta(hours=24)
# Refusals the Runtime section lists.
RECENT_REFUSALS = 10


def token_events_for(user: Any) -> QuerySet[TokenEvent]:
    """The token events ``user`` may see (an unseen one answers 404)."""
    if not getattr(user, "is_authenticated", False):
        return TokenEvent.objects.none()
    if sees_everything(user):
        return TokenEvent.objects.all()
    return TokenEvent.objects.filter(integration__in=inventory_selectors.integrations_for(user).values("pk"))


def token_events_listed(user: Any) -> QuerySet[TokenEvent]:
    """For the activity page, its export and the API: everything a row shows (the integration's
    name, the owner's and the acted-for user's names) joined in the one query, newest first."""
    return token_events_for(user).select_related("integration", "owner", "acting_for").order_by("-at", "-id")


@dataclass(frozen=True)
class ActivityTotals:
    issued: int
    refused: int
    live: int


def _totals(events: QuerySet[TokenEvent], now: datetime) -> ActivityTotals:
    """Issued and refused since ``now - RECENT``, and how many issued tokens are still live (not
    expired, not revoked), in one query. Tokens live at most 15 minutes, so every live token was
    issued within the window."""
    revoked = TokenRevocation.objects.values("jti")
    issued = Q(outcome=TokenOutcome.ISSUED)
    counts = events.filter(at__gte=now - RECENT).aggregate(
        issued=Count("pk", filter=issued),
        refused=Count("pk", filter=Q(outcome=TokenOutcome.REFUSED)),
        live=Count("pk", filter=issued & Q(expires_at__gt=now) & ~Q(jti__in=revoked)),
    )
    return ActivityTotals(issued=counts["issued"], refused=counts["refused"], live=counts["live"])


def activity_totals(user: Any, *, now: datetime) -> ActivityTotals:
    """What the home panel counts: the events ``user`` may see, last 24 hours (one query)."""
    return _totals(token_events_for(user), now)


@dataclass(frozen=True)
class IntegrationRuntime:
    identity: str
    binding: WorkloadBinding | None
    totals: ActivityTotals
    refusals: list[TokenEvent]


def integration_runtime(integration: Integration, *, now: datetime) -> IntegrationRuntime:
    """The Runtime section of one integration, in two queries: the counts of the last 24 hours
    and its latest refusals (its binding comes joined with the integration when it was read
    through ``inventory.selectors.integration_detail``). The caller looked ``integration`` up
    through the visibility gate; every event of an integration one may see is visible."""
    events = TokenEvent.objects.filter(integration=integration)
    refusals = list(
        events.filter(outcome=TokenOutcome.REFUSED)
        .select_related("acting_for")
        .order_by("-at", "-id")[:RECENT_REFUSALS]
    )
    return IntegrationRuntime(
        identity=inventory_selectors.identity_status_of(integration),
        binding=inventory_selectors.binding_of(integration),
        totals=_totals(events, now),
        refusals=refusals,
    )
