"""The token exchange (RFC 8693): an integration proves what it is with its workload token and
receives a short-lived access token (RFC 9068 JWT) for exactly its approved scopes on one
resource system.

Three shapes of request (``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``):

* **Acting as itself** — ``subject_token`` = the workload token. The access token's ``sub`` is
  ``integration:<id>``.
* **Acting for a user** — ``subject_token`` = the user's token, ``actor_token`` = the workload
  token; only for an integration registered as acting for users, and only while the user's
  account is active. The user's token is either a token from a trusted issuer that is not a
  workload identity (an IdP's ID or access token: verified like a workload token, then mapped to
  a portal account by ``preferred_username``, else by a verified ``email``), or a portal access
  token whose ``sub`` is a user (see the chain below). The access token's ``sub`` is
  ``user:<id>`` with the user's ``preferred_username``.
* **One integration calling another** — ``subject_token`` = a portal access token issued to
  integration A (acting as itself or for a user), ``actor_token`` = B's workload token: allowed
  only if the inventory registers that A invokes B (every edge of the chain is checked again,
  and every integration in it must still be active with an active owner), at most
  ``MAX_CHAIN`` integrations long. The new token keeps A's ``sub`` and nests the actors:
  ``act = {"sub": "integration:B", "act": {"sub": "integration:A"}}`` (RFC 8693 section 4.1:
  the outermost ``act`` is the current actor). A presenting its own portal token again (A = B)
  changes nothing in ``sub``/``act``.

Every token names its current actor in ``act`` (also when acting as itself), its client
(``client_id`` = ``integration:<id>``) and the accountable owner (``owner``, the business
owner's username). ``audience`` or ``resource`` names a resource system (its token audience or
its code). ``scope`` lists scope codes; granted = requested ∩ the integration's active,
unexpired grants on that system whose recertification is not overdue (default: all of them).
A requested scope marked JIT eligible that the integration does not hold opens an elevation
request when a ``task`` says what for. Lifetime = min(``RUNTIME_TOKEN_MAX_SECONDS``, the tier's
lifetime, the remaining life of every presented token and of every grant it carries).

Refusal codes (RFC 6749 section 5.2, RFC 8693 section 2.2.2):

================================  ============================================================
``unsupported_grant_type``        another grant type
``invalid_request``               missing or malformed parameters; any presented token that is
                                  invalid or unacceptable (signature, issuer, algorithm, times,
                                  audience, age, identity not bound) — RFC 8693 asks for this
                                  code for every bad token; the description says which check
``unauthorized_client``           integration not active (draft, pending, suspended, retired,
                                  rejected), business owner deactivated, delegation not allowed,
                                  chain not registered or too long
``invalid_target``                audience/resource unknown, or not covered by any grant
``invalid_scope``                 a scope unknown, of another system, or not granted
``invalid_grant``                 the grant of a requested scope expired or was revoked
``access_denied``                 recertification overdue; the user acted for is deactivated;
                                  a JIT-eligible scope (elevation opened, or a task is needed)
``temporarily_unavailable`` (503) the portal's signing key cannot be used, or deciding or
                                  recording failed unexpectedly (recorded as a refusal if the
                                  log can still be written: never a token)
================================  ============================================================
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from approvals.services import elevation_open
from governance.exceptions import DomainError
from inventory.choices import GrantStatus
from inventory.models import Grant, Integration, ResourceSystem, Scope
from runtime import errors, keys, tokens
from runtime.errors import ExchangeRefused
from runtime.grantfacts import overdue_grant_ids
from runtime.hotcache import TtlCache
from runtime.log import TokenAttempt, record
from runtime.models import PolicyDecisionPoint, TokenOutcome
from runtime.policy import log as decision_log
from runtime.policy import pdp
from runtime.policy.entities import prepare
from runtime.policy.pdp import PolicyRequest
from runtime.principals import (
    Principal,
    acting_for_allowed,
    check_usable,
    integration_subject,
    portal_token_principal,
    user_token_principal,
)
from runtime.workload import VerifiedWorkload, unverified_parts, verify_workload_token

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
SUBJECT_TOKEN_TYPES = frozenset({JWT_TOKEN_TYPE, ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE})
ACTOR_TOKEN_TYPES = frozenset({JWT_TOKEN_TYPE})
ISSUED_TOKEN_TYPES = frozenset({ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE})
SYSTEM_AUDIENCE_PREFIX = "urn:ai-governance:system:"
MAX_SCOPES = 50
SCOPE_MAX_LENGTH = 170
TASK_MAX_LENGTH = 200
SYSTEM_CACHE_SECONDS = 30
# A grant as the exchange reads it: with its scope as the runtime policy is told about it.
GRANT_COLUMNS = (
    "scope_id",
    "expires_at",
    "scope__code",
    "scope__sensitivity",
    "scope__access",
    "scope__jit_eligible",
    "scope__is_active",
    "scope__system__code",
    "scope__system__name",
    "scope__system__environment",
)
SYSTEM_COPIES: TtlCache[ResourceSystem | None] = TtlCache(SYSTEM_CACHE_SECONDS)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """The scopes to issue and the grants that carry them, and every scope, of any system, the
    integration could use now (what the runtime policy is told it holds)."""

    scopes: list[str]
    grants: list[Grant]
    usable: frozenset[str] = frozenset()


class ElevationNeeded(Exception):
    """Requested JIT-eligible scopes the integration does not hold, with a task: the caller opens
    the elevations and records the refusal in one transaction."""

    def __init__(self, integration: Integration, scopes: list[Scope], task: str) -> None:
        super().__init__(", ".join(scope.code for scope in scopes))
        self.integration = integration
        self.scopes = scopes
        self.task = task


# --- Request parameters -----------------------------------------------------------------------


def _param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _scopes_requested(raw: str) -> list[str]:
    codes = list(dict.fromkeys(raw.split()))
    if len(codes) > MAX_SCOPES or any(len(code) > SCOPE_MAX_LENGTH for code in codes):
        raise ExchangeRefused(errors.INVALID_SCOPE, f"Ask for at most {MAX_SCOPES} scope codes at a time.")
    return codes


def _task(raw: str) -> str:
    if len(raw) > TASK_MAX_LENGTH:
        raise ExchangeRefused(errors.INVALID_REQUEST, f"The task is at most {TASK_MAX_LENGTH} characters.")
    if any(ord(char) < 32 or ord(char) == 127 for char in raw):
        raise ExchangeRefused(errors.INVALID_REQUEST, "The task is one line of text.")
    return raw


def _read_request(params: Mapping[str, str], attempt: TokenAttempt) -> None:
    """The parameters every shape needs; fills what the log records of the request itself."""
    attempt.task = _param(params, "task")[:TASK_MAX_LENGTH]
    attempt.audience = _param(params, "audience") or _param(params, "resource")
    if _param(params, "grant_type") != GRANT_TYPE:
        raise ExchangeRefused(errors.UNSUPPORTED_GRANT_TYPE, f"The token endpoint supports only {GRANT_TYPE}.")
    attempt.scopes_requested = _scopes_requested(_param(params, "scope"))
    attempt.task = _task(_param(params, "task"))
    if not _param(params, "subject_token") or _param(params, "subject_token_type") not in SUBJECT_TOKEN_TYPES:
        raise ExchangeRefused(
            errors.INVALID_REQUEST,
            "Give subject_token and its subject_token_type (a jwt, access_token or id_token URN).",
        )
    if _param(params, "actor_token") and _param(params, "actor_token_type") not in ACTOR_TOKEN_TYPES:
        raise ExchangeRefused(
            errors.INVALID_REQUEST, f"The actor_token is a workload JWT: actor_token_type {JWT_TOKEN_TYPE}."
        )
    if _param(params, "actor_token_type") and not _param(params, "actor_token"):
        raise ExchangeRefused(errors.INVALID_REQUEST, "actor_token_type is given without an actor_token.")
    requested_type = _param(params, "requested_token_type")
    if requested_type and requested_type not in ISSUED_TOKEN_TYPES:
        raise ExchangeRefused(errors.INVALID_REQUEST, "The token endpoint issues access tokens only.")
    if not attempt.audience:
        raise ExchangeRefused(
            errors.INVALID_REQUEST, "Name the resource system the token is for (audience or resource)."
        )
    audience, resource = _param(params, "audience"), _param(params, "resource")
    if audience and resource and audience != resource:
        raise ExchangeRefused(errors.INVALID_TARGET, "audience and resource name different targets; name one system.")


# --- Who: the workload and the principal --------------------------------------------------------


def _note_claimed_identity(token: str, attempt: TokenAttempt) -> None:
    """Record who the workload token claims to be before it is believed, so a refusal names it."""
    try:
        _header, claims = unverified_parts(token, "workload token")
    except ExchangeRefused:
        return
    attempt.workload_issuer = str(claims.get("iss") or "")
    attempt.workload_subject = str(claims.get("sub") or "")


def _workload(token: str, attempt: TokenAttempt) -> VerifiedWorkload:
    _note_claimed_identity(token, attempt)
    workload = verify_workload_token(token)
    attempt.workload_issuer = workload.issuer.issuer
    attempt.workload_subject = workload.subject
    attempt.integration = workload.integration
    attempt.owner = workload.integration.business_owner
    return workload


def _principal(params: Mapping[str, str], attempt: TokenAttempt) -> tuple[VerifiedWorkload, Principal]:
    subject_token, actor_token = _param(params, "subject_token"), _param(params, "actor_token")
    if not actor_token:
        workload = _workload(subject_token, attempt)
        pk = workload.integration.pk
        principal = Principal(
            integration_subject(pk), {"sub": integration_subject(pk)}, None, [pk], [workload.expires_at]
        )
    else:
        workload = _workload(actor_token, attempt)
        _header, unverified = unverified_parts(subject_token, "subject token")
        if unverified.get("iss") == settings.RUNTIME_ISSUER:
            principal = portal_token_principal(subject_token, workload)
        else:
            principal = user_token_principal(subject_token, workload)
    attempt.chain = principal.chain
    attempt.acting_for = principal.acting_for
    check_usable(workload.integration, role="Integration")
    if principal.acting_for is not None:
        acting_for_allowed(workload.integration, principal.acting_for)
    return workload, principal


# --- What: the system and the scopes ------------------------------------------------------------


def _system_for(target: str) -> ResourceSystem:
    """The resource system a target names: its token audience (explicit, or the default
    ``urn:ai-governance:system:<code>``), else its code. Configuration: read from a copy at most
    ``SYSTEM_CACHE_SECONDS`` old (``runtime.hotcache``)."""
    system = SYSTEM_COPIES.get(target, lambda: _system_named(target))
    if system is None:
        raise ExchangeRefused(errors.INVALID_TARGET, f"No resource system is known as {target[:200]}.")
    return system


def _system_named(target: str) -> ResourceSystem | None:
    code = target.removeprefix(SYSTEM_AUDIENCE_PREFIX)
    found = list(
        ResourceSystem.objects.filter(Q(audience=target) | Q(code=code, audience="") | Q(code=target)).order_by()[:3]
    )
    for matches in (
        lambda system: system.token_audience == target,
        lambda system: system.code == target,
    ):
        for system in found:
            if matches(system):
                return system
    return None


def _ended_reason(integration: Integration, code: str) -> ExchangeRefused | None:
    ended = (
        Grant.objects.filter(integration=integration, scope__code=code)
        .exclude(status=GrantStatus.ACTIVE)
        .order_by("-ended_at", "-pk")
        .first()
    )
    if ended is None:
        return None
    when = f" on {ended.ended_at:%Y-%m-%d %H:%M} UTC" if ended.ended_at else ""
    verb = "was revoked" if ended.status == GrantStatus.REVOKED else "expired"
    return ExchangeRefused(errors.INVALID_GRANT, f"The grant of {code} to {integration.name} {verb}{when}.")


def _why_not(
    code: str,
    integration: Integration,
    system: ResourceSystem,
    held: Mapping[str, Grant],
    overdue: set[int],
    now: datetime,
) -> ExchangeRefused:
    """The refusal that explains why one requested scope cannot be given."""
    grant = held.get(code)
    if grant is not None and grant.pk in overdue:
        return ExchangeRefused(
            errors.ACCESS_DENIED,
            f"Recertification overdue: the review of {code} for {integration.name} passed its campaign deadline "
            "undecided; the grant cannot be used until it is decided.",
        )
    if grant is not None and grant.expires_at is not None and grant.expires_at <= now:
        return ExchangeRefused(
            errors.INVALID_GRANT,
            f"The grant of {code} to {integration.name} expired on {grant.expires_at:%Y-%m-%d %H:%M} UTC.",
        )
    ended = _ended_reason(integration, code)
    if ended is not None:
        return ended
    scope = Scope.objects.filter(code=code).select_related("system").first()
    if scope is None:
        return ExchangeRefused(errors.INVALID_SCOPE, f"There is no scope {code[:SCOPE_MAX_LENGTH]} in the catalog.")
    if scope.system_id != system.pk:
        return ExchangeRefused(errors.INVALID_SCOPE, f"{code} is a scope of {scope.system.name}, not of {system.name}.")
    if not held:
        return _not_covered(integration, system)
    return ExchangeRefused(errors.INVALID_SCOPE, f"Scope not granted: {integration.name} does not hold {code}.")


def _not_covered(integration: Integration, system: ResourceSystem) -> ExchangeRefused:
    return ExchangeRefused(
        errors.INVALID_TARGET, f"Audience not covered: {integration.name} holds no grant on {system.name}."
    )


def _jit_candidates(
    integration: Integration, system: ResourceSystem, codes: list[str], held: Mapping[str, Grant]
) -> list[Scope]:
    """Requested scopes of this system, JIT eligible and active, that the integration holds in
    no form (an active grant past its expiry is not "not held": it is refused as expired)."""
    wanted = [code for code in codes if code not in held]
    if not wanted:
        return []
    return list(
        Scope.objects.filter(system=system, code__in=wanted, jit_eligible=True, is_active=True).order_by("code")
    )


def _decide(
    integration: Integration, system: ResourceSystem, requested: list[str], task: str, now: datetime
) -> Decision:
    # Every active grant, of every system: the runtime policy is told every scope the integration
    # can use (as the decision API tells it), or a forbid on holding another system's scope
    # would never match here. The token itself only ever carries this system's scopes.
    active = list(
        Grant.objects.filter(integration=integration, status=GrantStatus.ACTIVE)
        .select_related("scope", "scope__system")
        .only(*GRANT_COLUMNS)
        .order_by()
    )
    live_anywhere = [grant for grant in active if grant.expires_at is None or grant.expires_at > now]
    overdue = overdue_grant_ids([integration.pk], [grant.pk for grant in live_anywhere], now)
    usable_anywhere = frozenset(grant.scope.code for grant in live_anywhere if grant.pk not in overdue)
    held = {grant.scope.code: grant for grant in active if grant.scope.system_id == system.pk}
    live = [grant for grant in held.values() if grant.expires_at is None or grant.expires_at > now]
    usable = {grant.scope.code: grant for grant in live if grant.pk not in overdue}
    asked = requested or sorted(held)
    missing = [code for code in asked if code not in usable]
    if requested and missing:
        jit = _jit_candidates(integration, system, missing, held)
        if jit and not task:
            raise ExchangeRefused(
                errors.ACCESS_DENIED,
                f"{', '.join(scope.code for scope in jit)} can be granted just in time: ask again with a task "
                f"(at most {TASK_MAX_LENGTH} characters) saying what it is for.",
            )
        if jit:
            raise ElevationNeeded(integration, jit, task)
    granted = [code for code in asked if code in usable]
    if not granted:
        if not asked:
            raise _not_covered(integration, system)
        raise _why_not(missing[0], integration, system, held, overdue, now)
    return Decision(scopes=granted, grants=[usable[code] for code in granted], usable=usable_anywhere)


def _policy_check(
    integration: Integration, principal: Principal, decision: Decision, attempt: TokenAttempt, now: datetime, jti: str
) -> Decision:
    """Ask the runtime policy about each scope the grants allow (action ``exchange_token``, one
    logged decision per scope): the token carries the scopes it allows; none allowed is a
    refusal whose description names the deciding policies. The policy can only narrow what the
    grants give, never widen it."""
    # The integration and its owners came with the workload binding (runtime.workload), the
    # scopes with the grants: only the groups of the owners and of the person acted for are read
    # here, once, however many scopes are decided.
    acting_for = [principal.acting_for] if principal.acting_for is not None else []
    prepare([integration], {integration.pk: set(decision.usable)}, acting_for)
    requests = [
        PolicyRequest(
            integration=integration,
            action="exchange_token",
            scope=grant.scope,
            task=attempt.task,
            chain_depth=len(principal.chain),
            delegated_user=principal.acting_for,
            at=now,
        )
        for grant in decision.grants
    ]
    # Logged with the token event's record, in its transaction (one commit per exchange).
    outcomes, attempt.policy_log = pdp.decide_pending(requests, point=PolicyDecisionPoint.TOKEN_EXCHANGE, trace=jti)
    attempt.policy_version = outcomes[0].enforced.number if outcomes else None
    attempt.policy_decisions = [outcome.decision_id for outcome in outcomes]
    attempt.policy_reasons = sorted({reason for outcome in outcomes for reason in outcome.enforced.reasons})
    allowed = [grant for grant, outcome in zip(decision.grants, outcomes, strict=True) if outcome.allowed]
    attempt.policy_left_out = [
        f"{code}: {outcome.explanation()}"
        for code, outcome in zip(decision.scopes, outcomes, strict=True)
        if not outcome.allowed
    ]
    if not allowed:
        denied = "; ".join(
            f"{code}: {outcome.explanation()}" for code, outcome in zip(decision.scopes, outcomes, strict=True)
        )
        raise ExchangeRefused(errors.ACCESS_DENIED, f"Runtime policy refused every scope asked for. {denied}")
    kept = {grant.pk for grant in allowed}
    return Decision(
        scopes=[code for code, grant in zip(decision.scopes, decision.grants, strict=True) if grant.pk in kept],
        grants=allowed,
        usable=decision.usable,
    )


# --- The token ---------------------------------------------------------------------------------


def _lifetime(integration: Integration, principal: Principal, grants: Sequence[Grant], issued_at: int) -> int:
    """Seconds from ``issued_at`` (whole seconds, as in the token) to the earliest end: so the
    new token's ``exp`` is never later than any presented token's ``exp`` or grant's expiry."""
    tier_cap = settings.RUNTIME_TOKEN_SECONDS_BY_TIER.get(integration.risk_tier) or settings.RUNTIME_TOKEN_MAX_SECONDS
    caps = [settings.RUNTIME_TOKEN_MAX_SECONDS, tier_cap]
    ends = [*principal.expiries, *(grant.expires_at for grant in grants if grant.expires_at is not None)]
    caps.extend(int(end.timestamp()) - issued_at for end in ends)
    lifetime = min(caps)
    if lifetime <= 0:
        raise ExchangeRefused(errors.INVALID_REQUEST, "A presented token expires now: present a fresh one.")
    return lifetime


def _claims(
    integration: Integration,
    system: ResourceSystem,
    principal: Principal,
    scopes: list[str],
    issued_at: int,
    lifetime: int,
    jti: str,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": settings.RUNTIME_ISSUER,
        "aud": system.token_audience,
        "sub": principal.subject,
        "act": principal.act,
        "client_id": integration_subject(integration.pk),
        "scope": " ".join(scopes),
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + lifetime,
        "jti": jti,
        "owner": integration.business_owner.username,
    }
    if principal.acting_for is not None:
        claims["preferred_username"] = principal.acting_for.username
    return claims


def _mint(claims: dict[str, Any], algorithm: str) -> str:
    try:
        return tokens.mint(claims, algorithm=algorithm)
    except keys.SigningKeyUnavailable as exc:
        # The caller learns that signing is down; which key and which setting is for the log.
        logger.error("Token exchange refused: %s", exc)
        raise ExchangeRefused(
            errors.TEMPORARILY_UNAVAILABLE,
            "The portal cannot sign tokens right now; try again later.",
            status=503,
            reason=f"The portal cannot sign tokens right now: {exc}",
        ) from None


def exchange_core(params: Mapping[str, str], attempt: TokenAttempt) -> dict[str, Any]:
    """Decide and mint, without recording: the response (RFC 8693 section 2.2.1) or an
    ``ExchangeRefused`` (or ``ElevationNeeded``). ``attempt`` is filled in as the request is
    understood, for the caller to record whatever the outcome."""
    _read_request(params, attempt)
    workload, principal = _principal(params, attempt)
    integration = workload.integration
    system = _system_for(attempt.audience)
    attempt.audience = system.token_audience
    now = timezone.now()
    jti = uuid.uuid4().hex
    decision = _policy_check(
        integration,
        principal,
        _decide(integration, system, attempt.scopes_requested, attempt.task, now),
        attempt,
        now,
        jti,
    )
    issued_at = int(now.timestamp())
    lifetime = _lifetime(integration, principal, decision.grants, issued_at)
    claims = _claims(integration, system, principal, decision.scopes, issued_at, lifetime, jti)
    token = _mint(claims, system.token_algorithm)
    attempt.scopes_granted = decision.scopes
    attempt.grant_ids = [grant.pk for grant in decision.grants]
    attempt.jti = claims["jti"]
    attempt.expires_at = datetime.fromtimestamp(claims["exp"], tz=UTC)
    return {
        "access_token": token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": claims["scope"],
    }


def _elevation_url(request_id: int) -> str:
    return f"{settings.SITE_URL}{reverse('approvals:request-detail', args=[request_id])}"


def _open_elevations(needed: ElevationNeeded, attempt: TokenAttempt) -> ExchangeRefused:
    """Open (or find open) the elevation of each scope and record the refusal naming them, in
    one transaction: an elevation is never opened without its trace, nor the other way round.
    An elevation the approvals refuse to open (say, the integration is orphaned) is a refusal
    of its own, recorded with the reason."""
    try:
        with transaction.atomic():
            opened = [
                elevation_open(integration=needed.integration, scope=scope, task=needed.task) for scope in needed.scopes
            ]
            named = "; ".join(
                f"{scope.code}: elevation request #{req.pk} ({_elevation_url(req.pk)})"
                for scope, req in zip(needed.scopes, opened, strict=True)
            )
            refusal = ExchangeRefused(
                errors.ACCESS_DENIED,
                f"Just-in-time elevation requested, awaiting approval: {named}. Ask again once it is approved.",
            )
            _record(attempt, outcome=TokenOutcome.REFUSED, error=refusal.error, reason=refusal.reason)
            return refusal
    except DomainError as exc:
        refusal = ExchangeRefused(errors.ACCESS_DENIED, f"Just-in-time elevation cannot be opened: {exc.detail}")
    except Exception as exc:
        # Fail closed, as for any unexpected error: nothing opened (rolled back), the refusal recorded.
        logger.exception("Opening a just-in-time elevation failed unexpectedly; refused")
        refusal = ExchangeRefused(
            errors.TEMPORARILY_UNAVAILABLE,
            "The portal could not open the elevation request and refused; try again later.",
            status=503,
            reason=f"Internal error ({type(exc).__name__}) while opening an elevation; refused.",
        )
    _record(attempt, outcome=TokenOutcome.REFUSED, error=refusal.error, reason=refusal.reason)
    return refusal


def token_exchange(params: Mapping[str, str]) -> dict[str, Any]:
    """The token endpoint's work: ``exchange_core`` and the log. Every issuance and every refusal
    is recorded (``runtime.log.record``) before the answer leaves; a token whose record could not
    be written is never returned. Raises ``ExchangeRefused`` for a refusal (already recorded)."""
    attempt = TokenAttempt()
    try:
        response = exchange_core(params, attempt)
    except ElevationNeeded as needed:
        raise _open_elevations(needed, attempt) from None
    except ExchangeRefused as refusal:
        _record(attempt, outcome=TokenOutcome.REFUSED, error=refusal.error, reason=refusal.reason)
        raise
    except Exception as exc:
        # Fail closed: whatever went wrong deciding, no token, and the refusal is on the record.
        logger.exception("Token exchange failed unexpectedly; refused")
        failed = ExchangeRefused(
            errors.TEMPORARILY_UNAVAILABLE,
            "The portal could not decide this request and refused it; try again later.",
            status=503,
        )
        _record(
            attempt,
            outcome=TokenOutcome.REFUSED,
            error=failed.error,
            reason=f"Internal error ({type(exc).__name__}) while deciding; refused.",
        )
        raise failed from None
    left_out = attempt_left_out(attempt)
    reasons = [f"Not granted: {', '.join(left_out)}."] if left_out else []
    if attempt.policy_left_out:
        reasons.append(f"Left out by runtime policy: {' '.join(attempt.policy_left_out)}")
    _record(attempt, outcome=TokenOutcome.ISSUED, reason=" ".join(reasons))
    return response


def _record(attempt: TokenAttempt, *, outcome: str, error: str = "", reason: str = "") -> None:
    """The attempt's record and the policy decisions it was given, written together: a token is
    never returned, nor a refusal answered, without both on the log. When they cannot be written,
    the attempt is refused (503, raised) and that refusal is recorded alone if it still can be."""
    try:
        with transaction.atomic():
            if attempt.policy_log is not None:
                decision_log.append(attempt.policy_log.rows, attempt.policy_log.snapshots)
            record(attempt, outcome=outcome, error=error, reason=reason)
    except Exception as exc:
        logger.exception("The token exchange could not be recorded; refused")
        failed = ExchangeRefused(
            errors.TEMPORARILY_UNAVAILABLE,
            "The portal could not record this request and refused it; try again later.",
            status=503,
        )
        # The decisions were not written: the refusal must not name them as if they were.
        attempt.policy_log, attempt.policy_decisions = None, []
        try:
            with transaction.atomic():
                record(
                    attempt,
                    outcome=TokenOutcome.REFUSED,
                    error=failed.error,
                    reason=f"Internal error ({type(exc).__name__}) while recording; refused, its policy decisions unlogged.",
                )
        except Exception:
            logger.exception("The refusal could not be recorded either")
        raise failed from None
    attempt.policy_log = None


def attempt_left_out(attempt: TokenAttempt) -> list[str]:
    """Requested scopes the issued token does not carry."""
    return [code for code in attempt.scopes_requested if code not in attempt.scopes_granted]
