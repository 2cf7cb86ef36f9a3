"""Token introspection (RFC 7662): is this access token still live, and what does it say?

A token is active only when every one of these holds now, not just when it was issued:
- it verifies (``runtime.tokens.verify``: a published key, ``typ``, ``iss``, ``exp``, ``nbf``);
- its ``jti`` is in the token log as issued, and not revoked (``TokenRevocation``);
- its integration, and every integration of its calling chain, is active with an active business
  owner (the kill switch suspends an integration in one transaction, so its tokens go inactive
  with it);
- every grant it was issued under is still active and not past ``expires_at``;
- the accountable owner and the user it acts for are still active accounts.
Anything else answers ``{"active": false}`` and nothing more, as the RFC asks: the caller learns
no reason, and an unknown token looks like an expired one.

Cost: at most three queries (the logged issuance with its integration, owner, user and
revocation; its grants; the other integrations of its chain), whatever the token.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from inventory.choices import GrantStatus, IntegrationStatus
from inventory.models import Grant, Integration
from runtime import tokens
from runtime.models import TokenEvent, TokenOutcome, TokenRevocation

INACTIVE: dict[str, Any] = {"active": False}
# The token's own claims an active answer repeats (RFC 7662 section 2.2, RFC 8693 ``act``).
ANSWERED_CLAIMS = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "act", "owner")


def issued_event(jti: str) -> TokenEvent | None:
    """The logged issuance of ``jti`` with what introspection and revocation need, or None."""
    return (
        TokenEvent.objects.filter(jti=jti, outcome=TokenOutcome.ISSUED)
        .select_related("integration__business_owner", "owner", "acting_for")
        .annotate(revoked=Exists(TokenRevocation.objects.filter(jti=OuterRef("jti"))))
        .order_by("id")
        .first()
    )


def _people_active(event: TokenEvent, integration: Integration) -> bool:
    """The owner named in the token, the integration's business owner now, and the user it acts
    for are all active accounts."""
    people = [event.owner, integration.business_owner, event.acting_for]
    return all(person is None or person.is_active for person in people)


def _grants_live(event: TokenEvent) -> bool:
    """Every grant the token was issued under is active and unexpired. An issuance naming no
    grant is not live: every token is issued under at least one, so such a row is not one the
    token endpoint wrote."""
    grant_ids = [int(grant_id) for grant_id in event.grant_ids]
    if not grant_ids:
        return False
    live = Grant.objects.filter(pk__in=grant_ids, status=GrantStatus.ACTIVE).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )
    return live.count() == len(set(grant_ids))


def _chain_live(event: TokenEvent) -> bool:
    others = {int(integration_id) for integration_id in event.chain} - {event.integration_id}
    if not others:
        return True
    live = Integration.objects.filter(pk__in=others, status=IntegrationStatus.ACTIVE, business_owner__is_active=True)
    return live.count() == len(others)


def is_live(event: TokenEvent) -> bool:
    """Whether the issuance ``event`` (from ``issued_event``) still stands right now."""
    integration = event.integration
    if getattr(event, "revoked", False) or integration is None:
        return False
    if integration.status != IntegrationStatus.ACTIVE or not _people_active(event, integration):
        return False
    return _grants_live(event) and _chain_live(event)


def introspect(token: str) -> dict[str, Any]:
    """The RFC 7662 answer for ``token``: ``{"active": false}``, or ``active: true`` with its
    claims, ``token_type`` and the accountable owner's username."""
    try:
        claims = tokens.verify(token)
    except tokens.InvalidToken:
        return dict(INACTIVE)
    event = issued_event(str(claims.get("jti", "")))
    if event is None or not is_live(event):
        return dict(INACTIVE)
    answer: dict[str, Any] = {"active": True, "token_type": "Bearer"}
    answer.update({name: claims[name] for name in ANSWERED_CLAIMS if name in claims})
    if "owner" not in answer and event.owner is not None:
        answer["owner"] = event.owner.username
    return answer
