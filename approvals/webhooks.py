"""How access requests and grants appear in webhook events: their current API representation,
read when the event is sent (governance.webhooks.events.register_representation)."""

from __future__ import annotations

from typing import Any

from governance.webhooks.events import register_representation


def access_request(target_id: str) -> dict[str, Any] | None:
    from approvals.api.serializers import AccessRequestDetailSerializer
    from approvals.models import AccessRequest
    from approvals.selectors import with_detail

    obj = with_detail(AccessRequest.objects.filter(pk=target_id)).first()
    return dict(AccessRequestDetailSerializer(obj).data) if obj else None


def grant(target_id: str) -> dict[str, Any] | None:
    from approvals.api.serializers import GrantSerializer
    from inventory.models import Grant

    obj = (
        Grant.objects.filter(pk=target_id)
        .select_related("integration", "scope", "ended_by")
        .prefetch_related("approvers")
        .first()
    )
    if obj is None:
        return None
    # A grant has no ticket of its own: the integration's (the events layer falls back to it).
    return {**GrantSerializer(obj).data, "ticket_ref": obj.integration.ticket_ref}


def register() -> None:
    from approvals.models import AccessRequest
    from inventory.models import Grant

    register_representation(AccessRequest._meta.label_lower, access_request)
    register_representation(Grant._meta.label_lower, grant)  # the model lives in inventory
