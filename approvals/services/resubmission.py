"""After "changes requested": the requester (or an owner) changes what the reviewers asked for and
sends the request back, in one transaction — the integration's declared fields through the
inventory's change service, the scopes asked for, and the next round of review. Nothing is
written here directly: the inventory's and this app's services write and audit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from approvals.models import AccessRequest, RequestStatus, RequestType
from approvals.permissions import can_withdraw
from approvals.services.requests import integration_of, lock_integration_of, request_resubmit
from governance.actors import Actor
from governance.exceptions import Conflict, NotAllowed
from governance.models import User
from inventory import services as inventory_services
from inventory.models import Scope

CHANGED_FOR_REVIEW = "Changed for the reviewers, who asked for changes."


def request_resubmit_edited(
    *,
    actor: Actor | User,
    request: AccessRequest,
    values: Mapping[str, Any] | None,
    scopes: Sequence[Scope],
    comment: str = "",
) -> AccessRequest:
    """Change the integration (``values``, the inventory's input fields; None leaves it as it is)
    and the scopes asked for, then start the next round of ``request``'s review. A registration
    goes back the way the inventory submits a draft (its requested scopes become ``scopes``, and
    its submission starts the round); any other request starts its round with ``scopes`` itself
    (the integration's own requested scopes are the owners' business, not this request's).

    Rules: the request waits for changes; only its requester or the integration's owners
    resubmit, and only owners and IAM admins change the integration (the inventory's rule);
    whatever is refused undoes the whole resubmission."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        lock_integration_of(request)
        req = AccessRequest.objects.select_for_update().get(pk=request.pk)
        if req.status != RequestStatus.CHANGES_REQUESTED:
            raise Conflict(f"This request is {req.get_status_display().lower()}: it does not wait for changes.")
        if not resolved.is_system and not can_withdraw(resolved.user, req):
            raise NotAllowed("Only the requester or the integration's owners can resubmit this request.")
        integration = integration_of(req)
        reason = comment.strip() or CHANGED_FOR_REVIEW
        if req.type == RequestType.REGISTRATION:
            changes = dict(values or {}) | {"requested_scopes": list(scopes)}
            inventory_services.integration_update(
                actor=resolved, integration=integration, values=changes, reason=reason
            )
            # The submission's receiver starts the next round of this very request.
            inventory_services.integration_submit(actor=resolved, integration=integration, reason=reason)
        else:
            if values:
                changes = {name: value for name, value in values.items() if name != "requested_scopes"}
                inventory_services.integration_update(
                    actor=resolved, integration=integration, values=changes, reason=reason
                )
            request_resubmit(actor=resolved, request=req, scopes=scopes, comment=comment.strip())
        req.refresh_from_db()
    request.refresh_from_db()
    return req
