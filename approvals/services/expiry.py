"""The end of a grant's lifetime: grants past their expiry end (as the system, audited), owners
are warned before it (14 and 3 days ahead, once per warning) with a one-click renewal link, and
that link opens a renewal request for everything the integration holds."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import groupby

from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from approvals import selectors
from approvals.models import AccessRequest, RequestType
from approvals.permissions import can_open_renewal
from approvals.services.requests import request_open
from governance.actors import Actor
from governance.exceptions import Conflict, NotAllowed
from governance.models import User
from governance.services import email_enqueue
from governance.webhooks.events import emit_many as webhook_emit_many
from inventory.choices import GrantStatus
from inventory.models import Grant, Integration
from inventory.services import grants_end_many

WARN_DAYS = (14, 3)
WARN_CHUNK = 500  # integrations whose due grants are read at once


def grants_expire_due(*, now: datetime | None = None) -> int:
    """End every active grant past its expiry (status expired, audited as grant.expired)."""
    now = now or timezone.now()
    ids = list(Grant.objects.filter(status=GrantStatus.ACTIVE, expires_at__lte=now).values_list("pk", flat=True))
    if not ids:
        return 0
    return grants_end_many(
        actor=Actor.system(on_behalf_of=None),
        grant_ids=ids,
        status=GrantStatus.EXPIRED,
        reason="The grant reached its expiry date.",
        action="grant.expired",
    )


def _expiry_bands(now: datetime) -> list[tuple[int, datetime, datetime]]:
    """``(days, after, until)`` for each warning, closest first: a grant expiring in
    ``(after, until]`` is due the ``days`` warning. The bands do not overlap, so a grant first
    seen two days before its expiry gets the 3-day warning only, not both."""
    bands, after = [], now
    for days in sorted(WARN_DAYS):
        until = now + timedelta(days=days)
        bands.append((days, after, until))
        after = until
    return bands


def _not_warned_for(days: int) -> Q:
    """Grants not yet given this warning or a closer one."""
    return Q(expiry_warned_days__isnull=True) | Q(expiry_warned_days__gt=days)


def grants_warn_expiring(*, now: datetime | None = None) -> int:
    """Warn the owners of each integration whose grants expire within 14 and within 3 days
    (one email per owner listing the grants, with a one-click renewal link) and tell the
    webhook subscribers (``grant.expiring`` per grant); grants of elevations are left out. Each grant records the closest warning it
    was given, so a warning is given once — also for owners with no email address, whose
    ticketing side still hears it. Grants are read a slice of integrations at a time, one
    transaction per integration."""
    now = now or timezone.now()
    sent = 0
    for days, after, until in _expiry_bands(now):
        due = (
            Grant.objects.filter(status=GrantStatus.ACTIVE, expires_at__gt=after, expires_at__lte=until)
            .filter(_not_warned_for(days))
            .exclude(selectors.elevation_grants())
            .select_related(
                "integration__business_owner", "integration__technical_owner", "integration__backup_owner", "scope"
            )
            .order_by("integration_id", "expires_at", "id")
        )
        # No cursor stays open across the writes (SQLite does not isolate them from it): the ids
        # of the integrations due first, then their grants a slice of integrations at a time.
        integration_ids = sorted(set(due.values_list("integration_id", flat=True)))
        for start in range(0, len(integration_ids), WARN_CHUNK):
            chunk = due.filter(integration_id__in=integration_ids[start : start + WARN_CHUNK])
            for _, group in groupby(chunk, key=lambda grant: grant.integration_id):
                sent += _warn_integration(list(group), days)
    return sent


def _owners(integration: Integration) -> list[User]:
    owners = (integration.business_owner, integration.technical_owner, integration.backup_owner)
    return list({owner.pk: owner for owner in owners if owner}.values())


def _warn_integration(grants: list[Grant], days: int) -> int:
    integration = grants[0].integration
    with transaction.atomic():
        # The claim: only the grants still due are marked; a second run (or a concurrent one)
        # finds them marked and sends nothing.
        claimed = Grant.objects.filter(pk__in=[grant.pk for grant in grants]).filter(_not_warned_for(days))
        claimed_ids = set(claimed.values_list("pk", flat=True))
        if not claimed_ids:
            return 0
        Grant.objects.filter(pk__in=claimed_ids).update(expiry_warned_days=days)
        grants = [grant for grant in grants if grant.pk in claimed_ids]
        first = grants[0].expires_at
        sent = 0
        for owner in _owners(integration):
            email = email_enqueue(
                key=f"grant-expiry-{days}d-{integration.pk}-{owner.pk}-{first:%Y%m%d}",
                recipient=owner,
                subject=f"Access of {integration.name} expires in less than {days} days",
                template="grant_expiry_warning",
                context={
                    "integration": integration,
                    "grants": grants,
                    "days": days,
                    "link": reverse("approvals:renew", args=[integration.pk]),
                },
            )
            sent += 1 if email is not None else 0
        webhook_emit_many(
            event_type="grant.expiring",
            target_type="inventory.grant",
            targets=((str(grant.pk), {"expires_at": grant.expires_at, "warning_days": days}) for grant in grants),
        )
    return sent


def renewal_request_open(*, actor: Actor | User, integration: Integration, justification: str = "") -> AccessRequest:
    """One-click renewal: ask to renew every active grant of ``integration`` (owners only)."""
    if not can_open_renewal(Actor.coerce(actor).user, integration):
        raise NotAllowed("Only the integration's owners can ask to renew its access.")
    scopes = list(selectors.scopes_held_by(integration))
    if not scopes:
        raise Conflict(f"{integration.name} holds no active grant to renew.")
    return request_open(
        actor=actor,
        integration=integration,
        type=RequestType.RENEWAL,
        scopes=scopes,
        justification=justification or "Renewal of expiring access.",
    )
