"""Verifying a workload token: the proof an integration presents of what it is.

A token is believed only when everything below holds, checked in this order (the cheap and the
dangerous first, before any key is looked up):

1. It is a compact JWS whose header names an algorithm. ``none`` and every HMAC algorithm are
   refused outright (an HMAC "signed" with an issuer's public key is the key-confusion attack).
   A header naming its own key source (``jku``, ``x5u``, ``jwk``, ``x5c``) is refused too: keys
   come only from the trusted issuer's configured JWKS, and no genuine workload issuer sends
   these, so such a token is an attempt to choose the key it is checked with.
2. Its issuer is a trusted issuer, found by the exact ``iss`` (a SPIFFE JWT-SVID without ``iss``:
   by the trust domain of its ``spiffe://`` subject), and that issuer is active.
3. The algorithm is on that issuer's allow-list, never taken from the token alone; SPIFFE
   JWT-SVIDs use RS/ES/PS only (EdDSA refused) and a ``typ``, if any, of JWT or JOSE.
4. The signature verifies with the issuer's key named by ``kid``
   (``inventory.issuer_keys.verification_key``: cached keys, one refetch on an unknown kid).
5. ``aud`` contains the issuer's audience (blank: ``settings.RUNTIME_TOKEN_AUDIENCE``); ``exp`` and
   ``iat`` are present; ``exp``/``nbf``/``iat`` hold with the issuer's clock skew as leeway; the
   token is no older than the issuer's maximum age.
6. Exactly one workload binding names that issuer and subject and all its required claims equal
   the token's claims (dotted paths into nested claims). None, or several, is a refusal.

An issuer's configuration (algorithms, audience, ages, where its keys are) is read from a copy at
most ``ISSUER_CACHE_SECONDS`` old (``runtime.hotcache``; a save in this process drops it at once),
but never believed stale: whether the issuer is still active and still at the copy's ``updated_at``
(the configuration's version, moved by every change) is read fresh on every call — for a workload
token in the same query that finds its binding. Deactivating an issuer refuses the very next token
everywhere; a token checked against a copy older than the row is checked again with the row.

Every refusal is an ``ExchangeRefused`` with ``invalid_request``: RFC 8693 (section 2.2.2) asks for
that code whenever a presented token is invalid or unacceptable, whatever the reason; the
description says which check failed.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import jwt
from django.conf import settings
from django.utils import timezone

from inventory import issuer_keys
from inventory.choices import ASYMMETRIC_ALGORITHMS, SPIFFE_ALGORITHMS, IssuerKind
from inventory.models import Integration, TrustedIssuer, WorkloadBinding
from runtime.errors import INVALID_REQUEST, ExchangeRefused
from runtime.hotcache import TtlCache

# A header member that names where the verification key is: never followed, refused.
SELF_KEYED_HEADERS = ("jku", "x5u", "jwk", "x5c")
SPIFFE_TOKEN_TYPES = ("JWT", "JOSE")
SPIFFE_PREFIX = "spiffe://"
# Far beyond any workload token; a larger body is refused before it is parsed.
MAX_TOKEN_LENGTH = 16_384
# The latest time claim believed (the year 9999): a later one cannot become a date.
MAX_NUMERIC_DATE = 253_402_300_799
_MISSING = object()
# What an exchange reads of the binding, its integration and the owner who answers for it (the
# other columns are long texts and lists the token endpoint never needs).
BINDING_COLUMNS = (
    "integration_id",
    "issuer_id",
    "subject",
    "required_claims",
    "claims_key",
    "integration__name",
    "integration__status",
    "integration__risk_tier",
    "integration__acts_for_users",
    "integration__business_owner_id",
    "integration__business_owner__username",
    "integration__business_owner__is_active",
    # What the runtime policy is told about the integration and its owners (runtime.policy.entities).
    "first_verified_at",
    "integration__kind",
    "integration__autonomy",
    "integration__environment",
    "integration__data_classifications",
    "integration__vendor",
    "integration__workload_identity",
    "integration__orphaned",
    "integration__technical_owner_id",
    "integration__technical_owner__username",
    "integration__technical_owner__is_active",
    "integration__backup_owner_id",
    "integration__backup_owner__username",
    "integration__backup_owner__is_active",
)
ISSUER_CACHE_SECONDS = 5
ISSUER_COPIES: TtlCache[TrustedIssuer | None] = TtlCache(ISSUER_CACHE_SECONDS)
Verified = TypeVar("Verified")


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature, issuer, audience and times were verified."""

    issuer: TrustedIssuer
    subject: str
    claims: dict[str, Any]
    expires_at: datetime


@dataclass(frozen=True)
class VerifiedWorkload:
    """A verified workload token and the one integration its identity is bound to."""

    issuer: TrustedIssuer
    subject: str
    claims: dict[str, Any]
    expires_at: datetime
    binding: WorkloadBinding
    integration: Integration


def _refuse(description: str) -> ExchangeRefused:
    return ExchangeRefused(INVALID_REQUEST, description)


def _b64_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def unverified_parts(token: str, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, read without trusting them (to find who must
    verify it). Refuses anything that is not three base64url JSON parts."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise _refuse(f"The {what} is empty or too long.")
    parts = token.split(".")
    if len(parts) != 3:
        raise _refuse(f"The {what} is not a signed JWT (a compact JWS has three parts).")
    try:
        header, claims = _b64_json(parts[0]), _b64_json(parts[1])
    except (ValueError, UnicodeError, binascii.Error, RecursionError):
        # RecursionError: JSON nested deeper than the parser goes (a few kilobytes of "[").
        raise _refuse(f"The {what} is not a well-formed JWT.") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _refuse(f"The {what} is not a well-formed JWT.")
    return header, claims


def _header_check(header: dict[str, Any], what: str) -> str:
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or not algorithm:
        raise _refuse(f"The {what} names no signature algorithm.")
    if algorithm.lower() == "none" or algorithm.upper().startswith("HS"):
        raise _refuse(f"The {what} uses algorithm {algorithm[:20]}, which is never accepted (unsigned or HMAC).")
    named = [name for name in SELF_KEYED_HEADERS if name in header]
    if named:
        raise _refuse(
            f"The {what} names its own key source ({', '.join(named)}): keys come only from the trusted "
            "issuer's configuration, so such a token is refused."
        )
    return algorithm


def spiffe_trust_domain(subject: str) -> str | None:
    """``example.org`` for ``spiffe://example.org/ns/ai``; None when not a SPIFFE ID."""
    if not subject.startswith(SPIFFE_PREFIX):
        return None
    domain = subject[len(SPIFFE_PREFIX) :].split("/", 1)[0].lower()
    return domain or None


def _issuer_named(named: str, spiffe_only: bool) -> TrustedIssuer | None:
    found = TrustedIssuer.objects.filter(issuer=named).order_by()
    if spiffe_only:
        found = found.filter(kind=IssuerKind.SPIFFE)
    return next(iter(found[:1]), None)


def _issuer_for(claims: dict[str, Any], what: str) -> TrustedIssuer:
    """The trusted issuer a token names, from a copy at most ``ISSUER_CACHE_SECONDS`` old (its
    configuration); whether it is still active is confirmed fresh by the caller."""
    iss, subject = claims.get("iss"), claims.get("sub")
    if isinstance(iss, str) and iss:
        named, spiffe_only = iss, False
    elif iss is None and isinstance(subject, str) and (domain := spiffe_trust_domain(subject)):
        named, spiffe_only = f"{SPIFFE_PREFIX}{domain}", True
    else:
        raise _refuse(f"The {what} has no issuer (iss).")
    issuer = ISSUER_COPIES.get((named, spiffe_only), lambda: _issuer_named(named, spiffe_only))
    if issuer is None:
        raise _refuse(f"The {what} comes from {named[:200]}, which is not a trusted issuer.")
    if not issuer.is_active:
        raise _refuse(_deactivated(issuer, what))
    return issuer


def _deactivated(issuer: TrustedIssuer, what: str) -> str:
    return f"The {what} comes from {issuer.name}, a trusted issuer that is deactivated."


class _IssuerChanged(Exception):
    """The issuer's configuration was saved since this process copied it: verify again."""


def _confirm_current(issuer: TrustedIssuer, what: str) -> None:
    """The issuer is still active and still configured as the copy the token was checked with
    (``updated_at`` is the configuration's version); raises ``_IssuerChanged`` otherwise."""
    row = TrustedIssuer.objects.filter(pk=issuer.pk).values_list("is_active", "updated_at").first()
    if row is None or not row[0]:
        raise _refuse(_deactivated(issuer, what))
    if row[1] != issuer.updated_at:
        raise _IssuerChanged


def _verified_with_current_issuer(verify: Callable[[], Verified]) -> Verified:
    """``verify()``, and once more with fresh issuer rows when the copy it used was stale: an
    algorithm, key, audience or age taken off an issuer stops verifying at once everywhere."""
    try:
        return verify()
    except _IssuerChanged:
        ISSUER_COPIES.clear()
    try:
        return verify()
    except _IssuerChanged:
        raise _refuse("The issuer's configuration is being changed; present the token again.") from None


def _algorithm_allowed(issuer: TrustedIssuer, header: dict[str, Any], algorithm: str, what: str) -> None:
    if issuer.kind == IssuerKind.SPIFFE:
        if algorithm not in SPIFFE_ALGORITHMS:
            raise _refuse(f"The {what} is a SPIFFE JWT-SVID signed with {algorithm}; JWT-SVIDs use RS, ES or PS.")
        token_type = header.get("typ")
        if token_type is not None and token_type not in SPIFFE_TOKEN_TYPES:
            raise _refuse(f"The {what} is a SPIFFE JWT-SVID with typ {str(token_type)[:20]}; only JWT or JOSE.")
    if algorithm not in issuer.allowed_algorithms or algorithm not in ASYMMETRIC_ALGORITHMS:
        raise _refuse(f"The {what} is signed with {algorithm}, which {issuer.name} is not allowed to use.")


def _key_fits(key: jwt.PyJWK, algorithm: str) -> bool:
    """The key can verify that algorithm: an RSA key serves RS* and PS*; any other key only the
    algorithm its type and curve imply."""
    if key.key_type == "RSA":
        return algorithm.startswith(("RS", "PS"))
    return bool(key.algorithm_name == algorithm)


def _key_for(issuer: TrustedIssuer, header: dict[str, Any], algorithm: str, what: str) -> Any:
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise _refuse(f"The {what} has a kid that is not a string.")
    try:
        key = issuer_keys.verification_key(issuer, kid)
    except issuer_keys.KeyUnavailable as exc:
        raise _refuse(f"The {what} cannot be verified: {exc.reason}") from None
    if not _key_fits(key, algorithm):
        raise _refuse(f"The {what}'s algorithm {algorithm} does not fit the issuer's key {kid or ''}".rstrip() + ".")
    return key.key


def expected_audience(issuer: TrustedIssuer) -> str:
    return issuer.audience or settings.RUNTIME_TOKEN_AUDIENCE


_DECODE_REFUSALS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "has expired"),
    (jwt.ImmatureSignatureError, "is not valid yet (nbf or iat in the future)"),
    (jwt.InvalidAudienceError, "is not meant for the portal (aud does not name {audience})"),
    (jwt.MissingRequiredClaimError, "lacks a required claim ({detail})"),
    (jwt.InvalidIssuerError, "has the wrong issuer"),
    (jwt.InvalidSignatureError, "has a signature that does not verify with the issuer's key"),
)


def _decode(token: str, issuer: TrustedIssuer, algorithm: str, key: Any, what: str) -> dict[str, Any]:
    audience = expected_audience(issuer)
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            leeway=issuer.clock_skew_seconds,
            options={"require": ["exp", "iat", "sub", "aud"]},
        )
    except jwt.PyJWTError as exc:
        for kind, text in _DECODE_REFUSALS:
            if isinstance(exc, kind):
                raise _refuse(f"The {what} {text.format(audience=audience, detail=exc)}.") from None
        raise _refuse(f"The {what} is not valid: {str(exc)[:200]}.") from None


def _numeric_date(claims: dict[str, Any], name: str, what: str) -> float:
    """A time claim as RFC 7519 has it: a JSON number of seconds. PyJWT also takes text such as
    "1700000000" and any size of number; here text, booleans and numbers no date can hold are
    refused, so no odd type reaches the arithmetic below."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse(f"The {what}'s {name} claim is not a number of seconds.")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_NUMERIC_DATE:
        raise _refuse(f"The {what}'s {name} claim is not a plausible time.")
    return seconds


def _times_check(issuer: TrustedIssuer, claims: dict[str, Any], what: str) -> datetime:
    for name in ("iat", "exp", "nbf"):
        if name in claims:
            _numeric_date(claims, name, what)
    now = timezone.now().timestamp()
    age = now - _numeric_date(claims, "iat", what)
    if age > issuer.max_token_age_seconds:
        raise _refuse(
            f"The {what} was issued {int(age)} seconds ago; {issuer.name} tokens are accepted for "
            f"{issuer.max_token_age_seconds} seconds."
        )
    return datetime.fromtimestamp(_numeric_date(claims, "exp", what), tz=UTC)


def verify_issuer_token(token: str, *, what: str = "workload token", confirm_active: bool = True) -> VerifiedToken:
    """Verify ``token`` against the trusted issuer it names (steps 1-5 of the module doc).
    ``what`` names the token in refusals ("workload token", "subject token"). With
    ``confirm_active=False`` the caller confirms the issuer is still active and its copy current
    in a query of its own (the binding lookup does, in the same query)."""
    if confirm_active:
        return _verified_with_current_issuer(lambda: _verify_issuer_token(token, what, confirm_active=True))
    return _verify_issuer_token(token, what, confirm_active=False)


def _verify_issuer_token(token: str, what: str, *, confirm_active: bool) -> VerifiedToken:
    header, unverified = unverified_parts(token, what)
    algorithm = _header_check(header, what)
    issuer = _issuer_for(unverified, what)
    if confirm_active:
        _confirm_current(issuer, what)
    _algorithm_allowed(issuer, header, algorithm, what)
    key = _key_for(issuer, header, algorithm, what)
    claims = _decode(token, issuer, algorithm, key, what)
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise _refuse(f"The {what} has no subject (sub).")
    if issuer.kind == IssuerKind.SPIFFE and spiffe_trust_domain(subject) != spiffe_trust_domain(issuer.issuer):
        raise _refuse(f"The {what}'s SPIFFE ID is not in the trust domain of {issuer.name}.")
    expires_at = _times_check(issuer, claims, what)
    return VerifiedToken(issuer=issuer, subject=subject, claims=claims, expires_at=expires_at)


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The claim a dotted path names, or a private sentinel when absent. Claim names may hold
    dots themselves (Kubernetes' ``kubernetes.io``), so at each level the longest name that
    exists wins: ``kubernetes.io.namespace`` finds ``claims["kubernetes.io"]["namespace"]``."""
    if path in claims:
        return claims[path]
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        nested = claims.get(head)
        if isinstance(nested, dict):
            found = claim_at(nested, ".".join(parts[cut:]))
            if found is not _MISSING:
                return found
    return _MISSING


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def claim_matches(actual: Any, expected: Any) -> bool:
    """A required claim holds when the token's value equals it; a number and its decimal text
    count as equal (bindings typed in a form hold text, issuers send GitHub ids as text or
    numbers), and ``true`` equals "true"."""
    if actual is _MISSING:
        return False
    if actual == expected and type(actual) is type(expected):
        return True
    actual_text, expected_text = _scalar_text(actual), _scalar_text(expected)
    return actual_text is not None and actual_text == expected_text


def _mismatched_claims(binding: WorkloadBinding, claims: dict[str, Any]) -> list[str]:
    return [
        path
        for path, expected in sorted(binding.required_claims.items())
        if not claim_matches(claim_at(claims, path), expected)
    ]


def _binding_for(verified: VerifiedToken) -> WorkloadBinding:
    candidates = list(
        WorkloadBinding.objects.filter(
            issuer=verified.issuer,
            subject=verified.subject,
            issuer__is_active=True,
            issuer__updated_at=verified.issuer.updated_at,
        )
        .order_by()
        .select_related(
            "integration",
            "integration__business_owner",
            "integration__technical_owner",
            "integration__backup_owner",
        )
        .only(*BINDING_COLUMNS)
    )
    if not candidates:
        _confirm_current(verified.issuer, "workload token")
    matching = [binding for binding in candidates if not _mismatched_claims(binding, verified.claims)]
    if len(matching) == 1:
        matching[0].issuer = verified.issuer
        return matching[0]
    who = f"{verified.subject[:200]} from {verified.issuer.name}"
    if len(matching) > 1:
        raise _refuse(f"The workload identity {who} matches {len(matching)} integrations; it must match exactly one.")
    if candidates:
        differing = sorted({path for binding in candidates for path in _mismatched_claims(binding, verified.claims)})
        raise _refuse(
            f"The workload identity {who} does not carry the claims its binding requires "
            f"(differing or missing: {', '.join(differing)})."
        )
    raise _refuse(f"The workload identity {who} is not bound to any integration.")


def verify_workload_token(token: str) -> VerifiedWorkload:
    """Verify a workload token and find the one integration bound to its identity (the module
    doc lists every rule). Raises ``ExchangeRefused`` (``invalid_request``) naming what failed."""
    return _verified_with_current_issuer(lambda: _verify_workload_token(token))


def _verify_workload_token(token: str) -> VerifiedWorkload:
    verified = verify_issuer_token(token, what="workload token", confirm_active=False)
    binding = _binding_for(verified)
    return VerifiedWorkload(
        issuer=verified.issuer,
        subject=verified.subject,
        claims=verified.claims,
        expires_at=verified.expires_at,
        binding=binding,
        integration=binding.integration,
    )
