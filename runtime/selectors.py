"""Reads of the runtime's token log, always for a user: what they may see is decided here, and the
activity page, its CSV export, the API and the integration's Runtime section all read through it.

Who sees which token events: reviewers, IAM admins and auditors see every event, including
refusals that name no integration (an unknown issuer, an identity bound to nothing); anyone else
sees the events of the integrations they may see (``inventory.selectors.integrations_for``: the
ones they own), so an event answers 404 exactly when its integration would.

Policy versions are read by IAM admins, reviewers and auditors (all of them); nobody else sees one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery

from approvals.models import AccessRequest
from governance.roles import sees_everything
from inventory import selectors as inventory_selectors
from inventory.models import Integration, WorkloadBinding
from runtime.models import (
    PolicyDecision,
    PolicyReplay,
    PolicyStatus,
    PolicyVersion,
    TokenEvent,
    TokenOutcome,
    TokenRevocation,
)
from runtime.permissions import can_read_policies

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


# --- Policy versions ---------------------------------------------------------------------------
# Replays a version's page and API detail list (newest first).
RECENT_REPLAYS = 20


def policy_versions_for(user: Any) -> QuerySet[PolicyVersion]:
    """The runtime policy versions ``user`` may read: every one for IAM admins, reviewers and
    auditors; none for anyone else (an unseen version answers 404)."""
    if not can_read_policies(user):
        return PolicyVersion.objects.none()
    return PolicyVersion.objects.all()


def _policy_rows(user: Any) -> QuerySet[PolicyVersion]:
    """The versions ``user`` may read with the people they name joined and the status of each
    one's change request (``change_request_status``) alongside."""
    request_status = AccessRequest.objects.filter(pk=OuterRef("change_request_id")).values("status")[:1]
    return (
        policy_versions_for(user)
        .select_related("created_by", "edited_by", "approved_by", "enforced_by", "retired_by")
        .annotate(change_request_status=Subquery(request_status))
    )


def policy_versions_listed(user: Any) -> QuerySet[PolicyVersion]:
    """For the list page and endpoint, newest first, in one query (the long texts left out)."""
    return _policy_rows(user).defer("cedar_text", "tests", "test_results").order_by("-number")


def policy_version_detail(user: Any) -> QuerySet[PolicyVersion]:
    """For one version's page and API detail: its text and tests too, and its latest replays
    (``recent_replays``) with who asked for them."""
    replays = PolicyReplay.objects.select_related("requested_by").order_by("-created_at", "-id")
    return _policy_rows(user).prefetch_related(
        Prefetch("replays", queryset=replays[:RECENT_REPLAYS], to_attr="recent_replays")
    )


def enforced_version() -> PolicyVersion | None:
    """The version that decides now (None only if an operator broke the seeded state)."""
    return PolicyVersion.objects.filter(status=PolicyStatus.ENFORCED).first()


def policy_decisions_for(user: Any) -> QuerySet[PolicyDecision]:
    """The decision log ``user`` may read: all of it for IAM admins, reviewers and auditors; none
    of it for anyone else (the decisions page answers them 404)."""
    if not can_read_policies(user):
        return PolicyDecision.objects.none()
    return PolicyDecision.objects.all()


def policy_decisions_listed(user: Any) -> QuerySet[PolicyDecision]:
    """For the decisions page: the integration, owner and deciding version joined in the one
    query (the versions' texts and the request contexts left out), newest first."""
    return (
        policy_decisions_for(user)
        .select_related("integration", "owner", "policy_version")
        .defer("context", "policy_version__cedar_text", "policy_version__tests", "policy_version__test_results")
        .order_by("-at", "-id")
    )
