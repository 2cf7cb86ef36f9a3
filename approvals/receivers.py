"""Receivers of the inventory's signals (``inventory/signals.py``). Each one only calls a
service; they run inside the inventory's transaction, so the request opens (or the requests are
cancelled) atomically with the change that caused it."""

from __future__ import annotations

from typing import Any

from approvals import selectors, services
from approvals.models import AccessRequest, RequestStatus, RequestType
from governance.actors import Actor
from governance.models import User
from inventory.choices import RISK_TIER_ORDER, IntegrationStatus
from inventory.models import Integration, Scope


def _requester(actor: Actor) -> User:
    return actor.on_behalf_of or actor.user


def on_integration_submitted(
    sender: Any, *, integration: Integration, actor: Actor, scopes: list[Scope], **_: Any
) -> None:
    """A submission opens a registration request — or, after "changes requested", the next round
    of the same request."""
    waiting = AccessRequest.objects.filter(
        integration=integration, type=RequestType.REGISTRATION, status=RequestStatus.CHANGES_REQUESTED
    ).first()
    if waiting is not None:
        services.request_resubmit(actor=actor, request=waiting, scopes=scopes)
        return
    services.request_open(
        actor=actor, integration=integration, type=RequestType.REGISTRATION, scopes=scopes, requester=_requester(actor)
    )


def on_integration_scopes_added(
    sender: Any, *, integration: Integration, actor: Actor, added_scopes: list[Scope], **_: Any
) -> None:
    services.request_open(
        actor=actor,
        integration=integration,
        type=RequestType.EXPANSION,
        scopes=added_scopes,
        requester=_requester(actor),
    )


def on_integration_risk_raised(
    sender: Any, *, integration: Integration, actor: Actor, old_tier: str, new_tier: str, **_: Any
) -> None:
    """An active integration whose tier rose is re-reviewed for what it holds; an open request
    that started at a lower tier starts again with the new tier's workflow."""
    for req in AccessRequest.objects.filter(integration=integration, status=RequestStatus.IN_REVIEW):
        if RISK_TIER_ORDER.get(req.risk_tier, 0) < RISK_TIER_ORDER.get(new_tier, 0):
            services.request_restart_for_risk(
                actor=actor, request=req, new_tier=new_tier, reason=f"Risk tier raised from {old_tier} to {new_tier}."
            )
    _re_review_open(actor, integration, f"Risk tier raised from {old_tier} to {new_tier}.")


def _re_review_open(actor: Actor, integration: Integration, justification: str) -> None:
    """An active integration's held scopes are reviewed again, unless a re-review is already open
    (it covers this too) or it holds nothing."""
    if integration.status != IntegrationStatus.ACTIVE:
        return
    scopes = list(selectors.scopes_held_by(integration))
    if (
        not scopes
        or AccessRequest.objects.filter(
            integration=integration,
            type=RequestType.RE_REVIEW,
            status__in=[RequestStatus.IN_REVIEW, RequestStatus.CHANGES_REQUESTED],
        ).exists()
    ):
        return
    services.request_open(
        actor=actor,
        integration=integration,
        type=RequestType.RE_REVIEW,
        scopes=scopes,
        requester=_requester(actor),
        justification=justification,
    )


def on_integration_identity_changed(
    sender: Any, *, integration: Integration, actor: Actor, old_identity: str, new_identity: str, **_: Any
) -> None:
    """A high or critical integration proves another workload identity: an active one is
    re-reviewed for what it holds, as after a tier increase; a pending one's request in review
    starts its round again, since the decisions taken so far were about the old identity."""
    justification = f"Workload identity changed from {old_identity} to {new_identity}."
    if integration.status == IntegrationStatus.PENDING:
        for req in AccessRequest.objects.filter(integration=integration, status=RequestStatus.IN_REVIEW):
            services.request_restart_for_risk(
                actor=actor, request=req, new_tier=integration.risk_tier, reason=justification
            )
        return
    _re_review_open(actor, integration, justification)


def on_integration_disabled(
    sender: Any, *, integration: Integration, actor: Actor, status: str, reason: str = "", **_: Any
) -> None:
    services.requests_cancel_for_integration(
        actor=actor, integration=integration, reason=reason or f"The integration became {status}."
    )


def on_integration_rescored(sender: Any, *, integration: Integration, **_: Any) -> None:
    """The queue's copies of the integration's tier and score change in the transaction that
    rescored it."""
    services.assignments_rescore(integration)
