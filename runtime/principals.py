"""Whom an exchanged token is about, and who acts: the integration itself, a user it acts for
(a user's token from a trusted issuer, or a portal token about a user), or the integration that
called it along a registered ``invokes`` edge (nested ``act``). The rules are listed in
``runtime.exchange``; every refusal is an ``ExchangeRefused``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from governance.models import User
from inventory.choices import IntegrationStatus, IssuerKind
from inventory.models import Integration, WorkloadBinding
from runtime import errors, tokens
from runtime.errors import ExchangeRefused
from runtime.models import TokenRevocation
from runtime.workload import VerifiedWorkload, verify_issuer_token

# Integrations in one calling chain, the exchanging one included.
MAX_CHAIN = 4


@dataclass(frozen=True)
class Principal:
    """Whom the new token is about and who acts: ``subject`` (the ``sub`` claim), ``act`` (the
    ``act`` claim), the user acted for, the chain of integration ids (outermost caller first,
    the exchanging integration last) and the expiry of every token presented."""

    subject: str
    act: dict[str, Any]
    acting_for: User | None
    chain: list[int]
    expiries: list[datetime]


def integration_subject(integration_id: int) -> str:
    return f"integration:{integration_id}"


def _id_of(subject: Any, prefix: str) -> int | None:
    if isinstance(subject, str) and subject.startswith(prefix) and subject[len(prefix) :].isdigit():
        return int(subject[len(prefix) :])
    return None


def check_usable(integration: Integration, *, role: str) -> None:
    """An integration obtains tokens (or stays in a chain) only while it is active and its
    business owner, who answers for it, is active."""
    if integration.status != IntegrationStatus.ACTIVE:
        raise ExchangeRefused(
            errors.UNAUTHORIZED_CLIENT,
            f"{role} {integration.name} is {integration.get_status_display().lower()}: only an active "
            "integration obtains tokens.",
        )
    if not integration.business_owner.is_active:
        raise ExchangeRefused(
            errors.UNAUTHORIZED_CLIENT,
            f"The business owner of {role.lower()} {integration.name} is deactivated: nobody answers for it.",
        )


def acting_for_allowed(integration: Integration, user: User) -> None:
    if not integration.acts_for_users:
        raise ExchangeRefused(
            errors.UNAUTHORIZED_CLIENT,
            f"Delegation not allowed: {integration.name} is not registered as acting for users.",
        )
    if not user.is_active or user.is_service_account:
        raise ExchangeRefused(errors.ACCESS_DENIED, f"The user {user.username} is not an active person.")


def _email_verified(claims: Mapping[str, Any]) -> bool:
    """An issuer that leaves ``email_verified`` out vouches for the address; one that sends it
    vouches only with ``true`` (some send the text "true"/"false": "false" is not a yes)."""
    if "email_verified" not in claims:
        return True
    verified = claims["email_verified"]
    return verified is True or (isinstance(verified, str) and verified.strip().lower() == "true")


def _user_from_claims(claims: Mapping[str, Any]) -> User:
    """The portal account a user token names: by ``preferred_username``, else by ``email`` (not
    when the issuer says it is unverified); exactly one active person must match."""
    people = User.objects.filter(is_service_account=False)
    username = claims.get("preferred_username")
    if isinstance(username, str) and username:
        found = list(people.filter(username__iexact=username)[:2])
        if len(found) == 1:
            return found[0]
    email = claims.get("email")
    if isinstance(email, str) and email and _email_verified(claims):
        found = list(people.filter(email__iexact=email)[:2])
        if len(found) == 1:
            return found[0]
    raise ExchangeRefused(
        errors.INVALID_REQUEST, "The subject token names no portal user (by preferred_username or verified email)."
    )


def user_token_principal(token: str, workload: VerifiedWorkload) -> Principal:
    """A user's token from a trusted issuer (not a workload identity)."""
    verified = verify_issuer_token(token, what="subject token")
    if (
        verified.issuer.kind == IssuerKind.SPIFFE
        or WorkloadBinding.objects.filter(issuer=verified.issuer, subject=verified.subject).exists()
    ):
        raise ExchangeRefused(errors.INVALID_REQUEST, "The subject token is a workload identity, not a user's token.")
    user = _user_from_claims(verified.claims)
    return Principal(
        subject=f"user:{user.pk}",
        act={"sub": integration_subject(workload.integration.pk)},
        acting_for=user,
        chain=[workload.integration.pk],
        expiries=[verified.expires_at, workload.expires_at],
    )


def _prior_chain(act: Any) -> list[int]:
    """Integration ids named by a token's nested ``act``, outermost caller first."""
    chain: list[int] = []
    depth = 0
    while isinstance(act, dict) and depth <= MAX_CHAIN:
        integration_id = _id_of(act.get("sub"), "integration:")
        if integration_id is None:
            raise ExchangeRefused(errors.INVALID_REQUEST, "The subject token's act claim names no integration.")
        chain.insert(0, integration_id)
        act = act.get("act")
        depth += 1
    if act is not None:
        raise ExchangeRefused(errors.UNAUTHORIZED_CLIENT, f"The calling chain is longer than {MAX_CHAIN} integrations.")
    return chain


def _chain_check(chain: list[int], integration: Integration) -> None:
    """Every integration of the chain still active with an active owner, and every hop a
    registered ``invokes`` edge (the inventory may have changed since the earlier tokens)."""
    if len(chain) > MAX_CHAIN:
        raise ExchangeRefused(errors.UNAUTHORIZED_CLIENT, f"The calling chain is longer than {MAX_CHAIN} integrations.")
    others = {pk: row for pk, row in Integration.objects.select_related("business_owner").in_bulk(chain).items()}
    others[integration.pk] = integration
    for pk in chain:
        if pk not in others:
            raise ExchangeRefused(errors.UNAUTHORIZED_CLIENT, "An integration of the calling chain no longer exists.")
        check_usable(others[pk], role="Calling integration" if pk != integration.pk else "Integration")
    hops = {(caller, callee) for caller, callee in zip(chain, chain[1:], strict=False) if caller != callee}
    edges = Integration.invokes.through.objects.filter(
        from_integration_id__in=[hop[0] for hop in hops], to_integration_id__in=[hop[1] for hop in hops]
    ).values_list("from_integration_id", "to_integration_id")
    missing = hops - set(edges)
    if missing:
        caller, callee = sorted(missing)[0]
        raise ExchangeRefused(
            errors.UNAUTHORIZED_CLIENT,
            f"Chain not registered: {others[caller].name} is not registered as invoking {others[callee].name}.",
        )


def portal_token_principal(token: str, workload: VerifiedWorkload) -> Principal:
    """A portal access token issued to integration A (for itself or a user), exchanged by B."""
    try:
        claims = tokens.verify(token)
    except tokens.InvalidToken as exc:
        raise ExchangeRefused(errors.INVALID_REQUEST, f"The subject token: {exc}") from None
    if TokenRevocation.objects.filter(jti=str(claims.get("jti", ""))).exists():
        raise ExchangeRefused(errors.INVALID_REQUEST, "The subject token was revoked.")
    integration = workload.integration
    prior = _prior_chain(claims.get("act"))
    if not prior:
        raise ExchangeRefused(errors.INVALID_REQUEST, "The subject token names no acting integration (act).")
    if _id_of(claims.get("client_id"), "integration:") != (prior[-1] if prior else None):
        raise ExchangeRefused(errors.INVALID_REQUEST, "The subject token's client_id and act claim disagree.")
    same = prior[-1] == integration.pk
    chain = prior if same else [*prior, integration.pk]
    _chain_check(chain, integration)
    acting_for = None
    user_id = _id_of(claims.get("sub"), "user:")
    if user_id is not None:
        acting_for = User.objects.filter(pk=user_id).first()
        if acting_for is None:
            raise ExchangeRefused(errors.INVALID_REQUEST, "The subject token's user no longer exists.")
    act = claims["act"] if same else {"sub": integration_subject(integration.pk), "act": claims["act"]}
    expires_at = datetime.fromtimestamp(float(claims["exp"]), tz=UTC)
    return Principal(str(claims["sub"]), act, acting_for, chain, [expires_at, workload.expires_at])
