"""Revoking an access token before it expires (RFC 7009): a ``TokenRevocation`` row for its
``jti``, which introspection reads, audited as ``access_token.revoked``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import NotAllowed
from governance.models import User
from runtime.models import TokenEvent, TokenRevocation
from runtime.permissions import can_revoke_token_of


@dataclass(frozen=True)
class Revoker:
    """Who revokes: a person (an owner or an IAM admin), or the integration itself, proven by its
    workload token (``integration_id``), for whom the portal acts on behalf of its owner."""

    user: User | None = None
    integration_id: int | None = None
    workload_subject: str = ""


def _allowed(revoker: Revoker, event: TokenEvent) -> bool:
    if revoker.integration_id is not None:
        return revoker.integration_id == event.integration_id
    return can_revoke_token_of(revoker.user, event.integration)


def _actor_and_owner(revoker: Revoker, event: TokenEvent) -> tuple[Actor | User, User]:
    integration = event.integration
    owner = event.owner or (integration.business_owner if integration is not None else None)
    if revoker.user is not None:
        return revoker.user, owner or revoker.user
    if owner is None:
        raise NotAllowed("This token's integration has no accountable owner to answer for its revocation.")
    return Actor.system(on_behalf_of=owner), owner


def access_token_revoke(*, revoker: Revoker, event: TokenEvent, expires_at: datetime | None = None) -> bool:
    """Revoke the access token issued as ``event`` (an issued ``TokenEvent``). Allowed for the
    integration it was issued to (its own workload token), that integration's owners, and IAM
    admins; ``NotAllowed`` otherwise. Idempotent: revoking a revoked token changes nothing and
    writes no second event. Returns whether this call revoked it."""
    if not _allowed(revoker, event):
        raise NotAllowed("Only the integration itself, its owners or an IAM admin may revoke its tokens.")
    actor, owner = _actor_and_owner(revoker, event)
    by = revoker.user.username if revoker.user is not None else f"the integration itself ({revoker.workload_subject})"
    with transaction.atomic():
        revocation, created = TokenRevocation.objects.get_or_create(
            jti=event.jti,
            defaults={
                "revoked_at": timezone.now(),
                "revoked_by": revoker.user,
                "reason": f"Revoked by {by}."[:200],
                "expires_at": expires_at or event.expires_at or timezone.now(),
            },
        )
        if created:
            audit_record(
                actor=actor,
                action="access_token.revoked",
                target=event.integration or revocation,
                owner=owner,
                after={"jti": event.jti, "expires_at": revocation.expires_at, "revoked_by": by},
                reason=revocation.reason,
            )
    return created
