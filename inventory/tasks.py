"""Background work of the inventory: tasks take ids (or nothing), call a service, and are
idempotent (running one twice leaves the same rows)."""

from __future__ import annotations

from governance.actors import Actor
from governance.context import task_context
from inventory.models import Integration, IntegrationStatus
from inventory.services import integrations_risk_refresh

CHUNK = 500


def risk_refresh_all() -> int:
    """Daily: rescore every integration that is not retired, because time alone changes some
    factors (a credential passes 90 days without rotation). A tier that rises on a live
    integration asks for a re-review, exactly as an edit would. Returns how many changed tier."""
    actor = Actor.system(on_behalf_of=None)
    changed = 0
    last_id = 0
    with task_context(user=actor.user):
        while True:
            ids = list(
                Integration.objects.filter(pk__gt=last_id)
                .exclude(status=IntegrationStatus.RETIRED)
                .order_by("pk")
                .values_list("pk", flat=True)[:CHUNK]
            )
            if not ids:
                return changed
            changed += integrations_risk_refresh(actor=actor, integration_ids=ids, reason="daily risk review")
            last_id = ids[-1]
