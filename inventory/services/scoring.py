"""Keeping an integration's stored risk score and search text up to date after a change, and
asking for a re-review when the risk tier of a live integration rises."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import audit_record
from governance.models import User
from inventory import risk, signals
from inventory.choices import RISK_TIER_ORDER, IntegrationStatus
from inventory.models import Integration

# Statuses in which the integration runs or is about to: a raised tier there needs a re-review.
LIVE_STATUSES = (IntegrationStatus.ACTIVE, IntegrationStatus.PENDING)


def search_text_of(integration: Integration) -> str:
    """The lower-cased words the list's search matches (``Integration.search_text``)."""
    parts = [
        integration.name,
        integration.vendor,
        integration.ticket_ref,
        " ".join(integration.tags or []),
        integration.purpose,
    ]
    return " ".join(part for part in parts if part).lower()


def risk_apply(*, actor: Actor, integration: Integration, user: User | None, reason: str = "") -> tuple[str, str]:
    """Recompute and save the score and search text of ``integration`` (in the caller's
    transaction); return (old tier, new tier). A raised tier on a live integration is audited
    (``integration.risk_raised``) and sends ``integration_risk_raised`` (approvals opens a
    re-review); a changed score or tier sends ``integration_rescored``."""
    old_tier, old_score = integration.risk_tier, integration.risk_score
    integration.search_text = search_text_of(integration)
    result = risk.assess(risk.input_from(integration))
    integration.risk_score, integration.risk_tier, integration.risk_factors = result.score, result.tier, result.factors
    integration.updated_at = timezone.now()
    integration._history_user = user
    integration._change_reason = reason[:100] if reason else None
    integration.save()
    if (result.tier, result.score) != (old_tier, old_score):
        signals.integration_rescored.send(sender=Integration, integration=integration)
    if RISK_TIER_ORDER[result.tier] > RISK_TIER_ORDER[old_tier] and integration.status in LIVE_STATUSES:
        audit_record(
            actor=actor,
            action="integration.risk_raised",
            target=integration,
            owner=integration.business_owner,
            before={"risk_tier": old_tier},
            after={"risk_tier": result.tier, "risk_score": result.score},
            reason=reason,
        )
        signals.integration_risk_raised.send(
            sender=Integration,
            integration=integration,
            actor=actor,
            old_tier=old_tier,
            new_tier=result.tier,
            factors=result.factors,
        )
    return old_tier, result.tier


def integrations_risk_refresh(*, actor: Actor | User, integration_ids: Iterable[int], reason: str = "") -> int:
    """Recompute the score of each integration that is not retired (e.g. those upstream of a
    change: what calls an integration that now reaches more data). An unchanged score writes
    nothing. Returns how many changed tier."""
    resolved = Actor.coerce(actor)
    changed = 0
    with transaction.atomic():
        for integ in Integration.objects.select_for_update().filter(pk__in=list(integration_ids)).order_by("pk"):
            if integ.status == IntegrationStatus.RETIRED:
                continue
            fresh = risk.assess(risk.input_from(integ))
            if (fresh.score, fresh.tier, fresh.factors) == (integ.risk_score, integ.risk_tier, integ.risk_factors):
                continue  # unchanged: no history row, no event
            old, new = risk_apply(actor=resolved, integration=integ, user=resolved.user, reason=reason)
            changed += old != new
    return changed


def upstream_risk_refresh(actor: Actor, integration: Integration) -> None:
    """Rescore what calls ``integration``, directly or down a chain: its reach changed."""
    upstream = risk.upstream_ids(integration.pk)
    if upstream:
        integrations_risk_refresh(actor=actor, integration_ids=upstream, reason=f"{integration.name} changed")
