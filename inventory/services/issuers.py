"""The trusted workload issuers IAM admins keep: whose tokens an integration may present to
prove what it is. Three kinds, each with its own rules (checked here, whoever calls):

- OpenID Connect issuer: ``issuer`` is an https URL without query or fragment (plain http only
  for a host in ``OUTBOUND_ALLOWED_HOSTS``); its keys come from the discovery document's
  ``jwks_uri`` (``discovery_url``, by default ``<issuer>/.well-known/openid-configuration``).
- SPIFFE trust domain: ``issuer`` is ``spiffe://<trust domain>``; keys from a JWT bundle URL or a
  pasted JWKS (one of the two); algorithms only RS/ES/PS (JWT-SVID: EdDSA is refused).
- Static JWKS: the public keys are pasted.

Everywhere: algorithms are asymmetric ones only (``none`` and HMAC never: they would let anyone
holding the public key, or nobody at all, sign), clock skew at most a minute, pasted keys public
and asymmetric. Every change is audited with the acting IAM admin as the accountable owner.

The keys' bookkeeping (``trusted_issuer_keys_fetched`` / ``trusted_issuer_keys_failed``) is not
a governance change — nobody decides anything, the portal caches what the issuer publishes — so
it is not audited and leaves ``updated_at`` (the configuration's version) alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance import outbound
from governance.actors import Actor
from governance.audit import audit_record, snapshot
from governance.exceptions import IllegalTransition, NotAllowed, Unprocessable
from governance.models import User
from governance.validators import has_control_characters
from inventory import jwks, permissions
from inventory.choices import ASYMMETRIC_ALGORITHMS, DEFAULT_ISSUER_ALGORITHMS, SPIFFE_ALGORITHMS, IssuerKind
from inventory.models import TrustedIssuer

ISSUER_FIELDS = (
    "name",
    "kind",
    "issuer",
    "discovery_url",
    "jwks_uri",
    "allowed_algorithms",
    "audience",
    "max_token_age_seconds",
    "clock_skew_seconds",
    "key_cache_seconds",
)
# What a caller may give: the configuration and, for the kinds whose keys are pasted, the JWKS.
ISSUER_INPUT_FIELDS = (*ISSUER_FIELDS, "jwks")
MAX_CLOCK_SKEW_SECONDS = 60
NUMBER_LIMITS = {
    "max_token_age_seconds": (60, 86_400),
    "clock_skew_seconds": (0, MAX_CLOCK_SKEW_SECONDS),
    "key_cache_seconds": (30, 86_400),
}
TEXT_LIMITS = {"name": 120, "issuer": 300, "discovery_url": 500, "jwks_uri": 500, "audience": 300}
# A SPIFFE trust domain: lower-case letters, digits, dots, dashes and underscores.
SPIFFE_ISSUER = re.compile(r"spiffe://[a-z0-9._-]{1,255}")
DISCOVERY_PATH = "/.well-known/openid-configuration"


def _issuer_keeper(actor: Actor | User) -> Actor:
    resolved = Actor.coerce(actor)
    if not permissions.can_manage_issuers(resolved):
        raise NotAllowed("Only IAM admins keep the trusted workload issuers.")
    return resolved


def keys_are_pasted(issuer: TrustedIssuer) -> bool:
    """True when an IAM admin pasted the keys (static JWKS, SPIFFE without a bundle URL); else
    ``jwks`` is the last set fetched."""
    return _pasted_config({"kind": issuer.kind, "jwks_uri": issuer.jwks_uri})


def discovery_url_of(issuer: TrustedIssuer) -> str:
    return issuer.discovery_url or issuer.issuer.rstrip("/") + DISCOVERY_PATH


def trusted_issuer_create(*, actor: Actor | User, values: Mapping[str, Any]) -> TrustedIssuer:
    """Add a trusted issuer (``trusted_issuer.created``), active at once. IAM admins only; the
    kind's rules above; a unique ``issuer``."""
    resolved = _issuer_keeper(actor)
    cleaned = _checked(values, current=None)
    with transaction.atomic():
        target = TrustedIssuer(**cleaned)
        if keys_are_pasted(target):
            target.keys_fetched_at = timezone.now()
        target._history_user = resolved.user
        target.save()
        audit_record(actor=resolved, action="trusted_issuer.created", target=target, after=_audit_view(target))
    return target


def trusted_issuer_update(*, actor: Actor | User, issuer: TrustedIssuer, values: Mapping[str, Any]) -> TrustedIssuer:
    """Change an issuer's configuration (``trusted_issuer.changed``, before and after). The kind
    is fixed. When where the keys come from changes, the cached keys and their status are
    dropped: keys from the old source must not verify tokens for the new one."""
    resolved = _issuer_keeper(actor)
    with transaction.atomic():
        target = TrustedIssuer.objects.select_for_update().get(pk=issuer.pk)
        cleaned = _checked(values, current=target)
        before = _audit_view(target)
        source_before = _key_source(target)
        for field, value in cleaned.items():
            setattr(target, field, value)
        if _key_source(target) != source_before:
            _reset_keys(target)
        target.updated_at = timezone.now()
        target._history_user = resolved.user
        target.save()
        after = _audit_view(target)
        if after != before:
            audit_record(actor=resolved, action="trusted_issuer.changed", target=target, before=before, after=after)
    return target


def trusted_issuer_set_active(
    *, actor: Actor | User, issuer: TrustedIssuer, active: bool, reason: str = ""
) -> TrustedIssuer:
    """Activate or deactivate (``trusted_issuer.activated`` / ``.deactivated``). An issuer with
    bindings may be deactivated: from then on every token it issued is refused, and the bound
    integrations cannot obtain credentials until it is active again or they are bound elsewhere.
    Asking for the state it is already in is refused (a stale page)."""
    resolved = _issuer_keeper(actor)
    with transaction.atomic():
        target = TrustedIssuer.objects.select_for_update().get(pk=issuer.pk)
        if target.is_active == active:
            raise IllegalTransition(f"{target.name} is already {'active' if active else 'inactive'}.")
        target.is_active = active
        target.updated_at = timezone.now()
        target._history_user = resolved.user
        target.save()
        audit_record(
            actor=resolved,
            action="trusted_issuer.activated" if active else "trusted_issuer.deactivated",
            target=target,
            before={"is_active": not active},
            after={"is_active": active, "bindings": target.bindings.count()},
            reason=reason,
        )
    return target


def trusted_issuer_keys_fetched(
    *, issuer: TrustedIssuer, document: dict[str, Any], at: datetime, jwks_uri: str | None = None
) -> None:
    """Record a successful key fetch: the set, when, and (OpenID Connect) the ``jwks_uri`` the
    discovery document named; clears the last error. A single UPDATE that leaves ``updated_at``
    alone, so caches keyed on the configuration stay valid. Called by ``inventory.issuer_keys``.
    Stored only while the row still has the configuration the fetch was made for: keys fetched
    from a source that an edit replaced meanwhile must not become the new source's keys."""
    changes: dict[str, Any] = {"jwks": document, "keys_fetched_at": at, "keys_error": "", "keys_error_at": None}
    if jwks_uri is not None:
        changes["jwks_uri"] = jwks_uri
    TrustedIssuer.objects.filter(pk=issuer.pk, updated_at=issuer.updated_at).update(**changes)
    for field, value in changes.items():
        setattr(issuer, field, value)


def trusted_issuer_keys_failed(*, issuer: TrustedIssuer, error: str, at: datetime) -> None:
    """Record a failed key fetch (the keys already held stay). A safe, short text: shown on the
    issuer's page. Called by ``inventory.issuer_keys``; like a success, only for the
    configuration the fetch was made for."""
    changes = {"keys_error": error[:1000], "keys_error_at": at}
    TrustedIssuer.objects.filter(pk=issuer.pk, updated_at=issuer.updated_at).update(**changes)
    for field, value in changes.items():
        setattr(issuer, field, value)


# --- Validation -------------------------------------------------------------------------------


def _checked(values: Mapping[str, Any], *, current: TrustedIssuer | None) -> dict[str, Any]:
    """The fields to set from ``values`` over ``current`` (the whole resulting configuration is
    checked, so a partial change cannot leave an inconsistent one). Raises ``Unprocessable``
    (a ``ValidationFailed``): the rules go beyond what an API schema can state."""
    errors: dict[str, list[str]] = {}
    merged = _merged(values, current)
    kind = merged["kind"]
    if kind not in IssuerKind.values:
        _add(errors, "kind", f"Choose one of: {', '.join(IssuerKind.values)}.")
    elif current is not None and kind != current.kind:
        _add(errors, "kind", "The kind is fixed once created: add a new issuer instead.")
    _check_texts(merged, errors)
    _check_numbers(merged, errors)
    _check_algorithms(merged, errors)
    if not errors.get("issuer"):
        _check_issuer_unique(merged["issuer"], current, errors)
    if kind == IssuerKind.OIDC:
        _check_oidc(merged, values, current, errors)
    elif kind == IssuerKind.SPIFFE:
        _check_spiffe(merged, errors)
    elif kind == IssuerKind.STATIC_JWKS:
        _check_static(merged, errors)
    if errors:
        raise Unprocessable(next(iter(errors.values()))[0], errors=errors)
    if current is None:
        return {field: merged[field] for field in ISSUER_INPUT_FIELDS}
    changed = {field: merged[field] for field in ISSUER_FIELDS if field in values}
    if kind == IssuerKind.OIDC:
        changed.pop("jwks_uri", None)  # discovered, never input
    if _pasted_config(merged):
        changed["jwks"] = merged["jwks"]
    return changed


def _merged(values: Mapping[str, Any], current: TrustedIssuer | None) -> dict[str, Any]:
    """``values`` over the current configuration (or the defaults), strings stripped."""
    template = current or TrustedIssuer(allowed_algorithms=list(DEFAULT_ISSUER_ALGORITHMS))
    base: dict[str, Any] = {field: getattr(template, field) for field in ISSUER_FIELDS}
    # Pasted keys carry over; a fetched set is a cache, never input.
    base["jwks"] = current.jwks if current is not None and keys_are_pasted(current) else {}
    for field in ISSUER_INPUT_FIELDS:
        if field in values:
            value = values[field]
            base[field] = value.strip() if isinstance(value, str) else value
    if base["jwks"] is None:
        base["jwks"] = {}
    return base


def _pasted_config(merged: Mapping[str, Any]) -> bool:
    """``keys_are_pasted`` for a configuration not saved yet."""
    return merged["kind"] == IssuerKind.STATIC_JWKS or (merged["kind"] == IssuerKind.SPIFFE and not merged["jwks_uri"])


def _add(errors: dict[str, list[str]], field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _check_texts(merged: Mapping[str, Any], errors: dict[str, list[str]]) -> None:
    for field, limit in TEXT_LIMITS.items():
        value = merged[field]
        if not isinstance(value, str):
            _add(errors, field, "Give text.")
        elif has_control_characters(value):
            _add(errors, field, "Use a single line: no line breaks, tabs or other control characters.")
        elif len(value) > limit:
            _add(errors, field, f"At most {limit} characters.")
    for field in ("name", "issuer"):
        if isinstance(merged[field], str) and not merged[field]:
            _add(errors, field, "This field is required.")


def _check_numbers(merged: Mapping[str, Any], errors: dict[str, list[str]]) -> None:
    for field, (low, high) in NUMBER_LIMITS.items():
        value = merged[field]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            _add(errors, field, f"Give a whole number of seconds from {low} to {high}.")


def _check_algorithms(merged: Mapping[str, Any], errors: dict[str, list[str]]) -> None:
    chosen = merged["allowed_algorithms"]
    if not isinstance(chosen, list) or not chosen or not all(isinstance(alg, str) for alg in chosen):
        _add(errors, "allowed_algorithms", "Choose at least one algorithm.")
        return
    refused = [alg for alg in chosen if alg.lower() == "none" or alg.upper().startswith("HS")]
    if refused:
        _add(
            errors,
            "allowed_algorithms",
            f"{', '.join(refused)} can never be allowed: an unsigned token, or one signed with a shared "
            "secret, proves nothing about who issued it. Choose asymmetric algorithms (RS, ES, PS).",
        )
        return
    unknown = [alg for alg in chosen if alg not in ASYMMETRIC_ALGORITHMS]
    if unknown:
        _add(errors, "allowed_algorithms", f"Unknown algorithm(s) {', '.join(unknown)}.")
    elif merged["kind"] == IssuerKind.SPIFFE and not set(chosen) <= set(SPIFFE_ALGORITHMS):
        _add(errors, "allowed_algorithms", "JWT-SVIDs are signed with RS, ES or PS algorithms only: remove EdDSA.")
    if len(set(chosen)) != len(chosen):
        _add(errors, "allowed_algorithms", "Name each algorithm once.")


def _check_issuer_unique(issuer: str, current: TrustedIssuer | None, errors: dict[str, list[str]]) -> None:
    others = TrustedIssuer.objects.filter(issuer=issuer)
    if current is not None:
        others = others.exclude(pk=current.pk)
    if others.exists():
        _add(errors, "issuer", "Another trusted issuer already has this iss.")


def _check_url(field: str, url: str, errors: dict[str, list[str]]) -> None:
    """A URL the portal may fetch: https (http only for an allow-listed host), an allowed port,
    no credentials."""
    try:
        outbound.parse(url, require_https=True)
    except outbound.Refused as exc:
        message = {
            "scheme": "Use an https URL (plain http only for a host in OUTBOUND_ALLOWED_HOSTS).",
            "port": "This port is not allowed for outbound requests (OUTBOUND_ALLOWED_PORTS).",
        }.get(exc.rule, "Give a valid URL (no credentials, spaces or control characters).")
        _add(errors, field, message)


def _check_oidc(
    merged: dict[str, Any], values: Mapping[str, Any], current: TrustedIssuer | None, errors: dict[str, list[str]]
) -> None:
    issuer = merged["issuer"]
    if issuer and not errors.get("issuer"):
        _check_url("issuer", issuer, errors)
        if "?" in issuer or "#" in issuer:
            _add(errors, "issuer", "An OpenID Connect issuer has no query or fragment.")
    if merged["discovery_url"] and not errors.get("discovery_url"):
        _check_url("discovery_url", merged["discovery_url"], errors)
    given_uri = values.get("jwks_uri") or ""
    if given_uri and given_uri != (current.jwks_uri if current else ""):
        _add(
            errors, "jwks_uri", "An OpenID Connect issuer names its jwks_uri in its discovery document: leave it empty."
        )
    if merged["jwks"]:
        _add(errors, "jwks", "An OpenID Connect issuer's keys are fetched from its discovery document: paste none.")


def _check_spiffe(merged: dict[str, Any], errors: dict[str, list[str]]) -> None:
    if merged["issuer"] and not SPIFFE_ISSUER.fullmatch(merged["issuer"]):
        _add(errors, "issuer", "Give the trust domain as spiffe://<trust domain> (lower case, no path or port).")
    if merged["discovery_url"]:
        _add(errors, "discovery_url", "A SPIFFE trust domain has no discovery document: give its bundle URL.")
    if merged["jwks_uri"] and merged["jwks"]:
        _add(errors, "jwks", "Give either the bundle URL or the pasted bundle, not both.")
    elif merged["jwks_uri"]:
        if not errors.get("jwks_uri"):
            _check_url("jwks_uri", merged["jwks_uri"], errors)
    elif not merged["jwks"]:
        _add(errors, "jwks_uri", "Give the trust domain's JWT bundle URL, or paste the bundle (a JWKS).")
    else:
        _check_pasted(merged["jwks"], errors)


def _check_static(merged: dict[str, Any], errors: dict[str, list[str]]) -> None:
    for field, what in (("discovery_url", "a discovery document"), ("jwks_uri", "a key URL")):
        if merged[field]:
            _add(errors, field, f"A static JWKS has no {what}: paste the keys.")
    if not merged["jwks"]:
        _add(errors, "jwks", "Paste the issuer's public keys (a JWKS).")
    else:
        _check_pasted(merged["jwks"], errors)


def _check_pasted(document: Any, errors: dict[str, list[str]]) -> None:
    try:
        jwks.parse(document)
    except jwks.JwksRefused as exc:
        _add(errors, "jwks", str(exc))


# --- Keys and audit views ---------------------------------------------------------------------


def _key_source(issuer: TrustedIssuer) -> tuple[Any, ...]:
    """What the keys are read from: a change of it invalidates the keys held."""
    if keys_are_pasted(issuer):
        return ("pasted", issuer.jwks)
    if issuer.kind == IssuerKind.OIDC:
        return ("discovery", discovery_url_of(issuer))
    return ("bundle", issuer.jwks_uri)


def _reset_keys(issuer: TrustedIssuer) -> None:
    if keys_are_pasted(issuer):
        issuer.keys_fetched_at = timezone.now()
    else:
        issuer.jwks = {}
        issuer.keys_fetched_at = None
        if issuer.kind == IssuerKind.OIDC:
            issuer.jwks_uri = ""
    issuer.keys_error = ""
    issuer.keys_error_at = None


def _audit_view(issuer: TrustedIssuer) -> dict[str, Any]:
    """The configuration for an event's before/after; pasted keys by id (the set is public but
    long), fetched ones not at all (a cache, not configuration)."""
    view = snapshot(issuer, (*ISSUER_FIELDS, "is_active"))
    if keys_are_pasted(issuer):
        try:
            view["pasted_keys"] = jwks.parse(issuer.jwks).summary()
        except jwks.JwksRefused:
            view["pasted_keys"] = []
    return view
