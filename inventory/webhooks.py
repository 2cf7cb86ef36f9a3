"""How integrations and grants appear in webhook events: their current API representation, read
when the event is sent (governance.webhooks.events.register_representation)."""

from __future__ import annotations

from typing import Any

from governance.webhooks.events import register_representation


def integration(target_id: str) -> dict[str, Any] | None:
    from inventory.api.serializers import IntegrationSerializer
    from inventory.models import Integration
    from inventory.selectors import with_detail

    obj = with_detail(Integration.objects.filter(pk=target_id)).first()
    return dict(IntegrationSerializer(obj).data) if obj else None


def grant(target_id: str) -> dict[str, Any] | None:
    from inventory.api.serializers import GrantSerializer
    from inventory.models import Grant
    from inventory.selectors import with_grant_detail

    obj = with_grant_detail(Grant.objects.filter(pk=target_id)).first()
    if obj is None:
        return None
    # A grant has no ticket of its own: it carries its integration's.
    return {**GrantSerializer(obj).data, "ticket_ref": obj.integration.ticket_ref}


def register() -> None:
    from inventory.models import Grant, Integration

    register_representation(Integration._meta.label_lower, integration)
    register_representation(Grant._meta.label_lower, grant)
