"""How access requests appear in webhook events: their current API representation,
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


def register() -> None:
    from approvals.models import AccessRequest

    register_representation(AccessRequest._meta.label_lower, access_request)
