"""An integration's workload identity (the issuer, subject and claim equalities its tokens must
carry) and what the runtime tells the inventory back: which bindings were proven by a token and
how often each grant was used.

Binding, changing and removing an identity are audited changes by the integration's owners or
IAM admins; the two recorders at the end are system work driven by the runtime's log sealer."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, IntegerField, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, NotFound, Unprocessable, ValidationFailed
from governance.models import User
from inventory import permissions, signals
from inventory.choices import IntegrationStatus, IssuerKind, RiskTier
from inventory.models import Grant, GrantUsageDay, Integration, TrustedIssuer, WorkloadBinding
from inventory.selectors import integrations_for
from inventory.services.lifecycle import integration_locked_for

SUBJECT_MAX_LENGTH = 300
MAX_REQUIRED_CLAIMS = 10
CLAIM_PATH_MAX_LENGTH = 100
CLAIM_VALUE_MAX_LENGTH = 300
# Claims the token verification checks by itself (issuer, subject, audience, times, id): a
# binding's equalities are about the other claims, so naming one of these is a mistake.
RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})
# A dotted path of claim names: each name non-empty, without whitespace or dots of its own.
_CLAIM_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
# Integrations whose identity change is re-reviewed, and the states in which it matters.
_REVIEWED_TIERS = (RiskTier.HIGH, RiskTier.CRITICAL)
_REVIEWED_STATUSES = (IntegrationStatus.ACTIVE, IntegrationStatus.PENDING)
# Rows per UPDATE in the sealer's bulk writes (one CASE branch per row).
_BULK_CHUNK = 500
_REFUSAL = "Only the integration's owners and IAM admins may change its workload identity."


def claims_key_of(required_claims: Mapping[str, Any]) -> str:
    """SHA-256 of the claims' canonical JSON (sorted keys, no spaces): one binding per issuer,
    subject and claims, whatever order the claims were given in."""
    canonical = json.dumps(dict(required_claims), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def identity_label(issuer: str, subject: str, required_claims: Mapping[str, Any]) -> str:
    """A binding in one line, for reasons and justifications."""
    claims = ", ".join(f"{path}={value!r}" for path, value in sorted(required_claims.items()))
    return f"{subject} from {issuer}" + (f" with {claims}" if claims else "")


def _binding_snapshot(binding: WorkloadBinding | None) -> dict[str, Any] | None:
    if binding is None:
        return None
    return {
        "issuer": binding.issuer.issuer,
        "issuer_id": binding.issuer_id,
        "subject": binding.subject,
        "required_claims": dict(binding.required_claims),
    }


def _label_of(snapshot: Mapping[str, Any] | None) -> str:
    if snapshot is None:
        return "no workload binding"
    return identity_label(snapshot["issuer"], snapshot["subject"], snapshot["required_claims"])


def _subject_errors(issuer: TrustedIssuer, subject: str) -> list[str]:
    if not subject:
        return ["Give the subject (the sub claim) of the integration's workload tokens."]
    if len(subject) > SUBJECT_MAX_LENGTH:
        return [f"At most {SUBJECT_MAX_LENGTH} characters."]
    if any(char.isspace() for char in subject):
        return ["A subject has no spaces, tabs or line breaks."]
    if issuer.kind == IssuerKind.SPIFFE:
        return _spiffe_subject_errors(issuer, subject)
    return []


def _spiffe_subject_errors(issuer: TrustedIssuer, subject: str) -> list[str]:
    """A JWT-SVID's subject is a SPIFFE ID of the issuer's trust domain with a workload path
    (``spiffe://example.org/ns/ai/sa/agent``), without query or fragment."""
    trust_domain = issuer.issuer.removeprefix("spiffe://").rstrip("/").lower()
    parts = urlsplit(subject)
    path_ok = parts.path.startswith("/") and all(parts.path.split("/")[1:])
    if parts.scheme != "spiffe" or parts.query or parts.fragment or not path_ok or "?" in subject:
        return [f"Give a SPIFFE ID with a workload path, e.g. spiffe://{trust_domain}/ns/ai/sa/agent."]
    if parts.netloc != trust_domain:
        return [f"The SPIFFE ID must be in the issuer's trust domain {trust_domain}."]
    return []


def _claim_value_error(value: Any) -> str | None:
    if isinstance(value, (bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "A number must be finite."
    if isinstance(value, str):
        return None if len(value) <= CLAIM_VALUE_MAX_LENGTH else f"At most {CLAIM_VALUE_MAX_LENGTH} characters."
    return "A value is a string, a number or true/false (no list, object or null)."


def _claims_errors(required_claims: Any) -> list[str]:
    if not isinstance(required_claims, Mapping):
        return ["Give the required claims as claim path -> value."]
    if len(required_claims) > MAX_REQUIRED_CLAIMS:
        return [f"At most {MAX_REQUIRED_CLAIMS} required claims."]
    errors: list[str] = []
    for path, value in required_claims.items():
        if not isinstance(path, str) or len(path) > CLAIM_PATH_MAX_LENGTH or not _CLAIM_PATH.fullmatch(path):
            errors.append(
                f"{str(path)[:40]!r}: a claim path is claim names joined by dots, e.g. kubernetes.io.namespace."
            )
        elif path in RESERVED_CLAIMS:
            errors.append(f"{path}: checked by the token verification itself; name other claims here.")
        elif (problem := _claim_value_error(value)) is not None:
            errors.append(f"{path}: {problem}")
    return errors


def _inputs_validate(issuer: TrustedIssuer, subject: str, required_claims: Any) -> None:
    """The rules on the input alone, whoever sends it."""
    errors: dict[str, list[str]] = {}
    if subject_errors := _subject_errors(issuer, subject):
        errors["subject"] = subject_errors
    if claims_errors := _claims_errors(required_claims):
        errors["required_claims"] = claims_errors
    if errors:
        # Well-formed input breaking rules a schema cannot state (422 in the API).
        raise Unprocessable(next(iter(errors.values()))[0], errors=errors)


def _already_bound(actor: Actor, other: WorkloadBinding) -> ValidationFailed:
    """The refusal of an identity another integration holds: named only to someone who may see
    that integration (the name would otherwise leak what exists)."""
    if integrations_for(actor.user).filter(pk=other.integration_id).exists():
        name = Integration.objects.only("name").get(pk=other.integration_id).name
        return Unprocessable.on("subject", f"This identity is already bound to {name}.")
    return Unprocessable.on("subject", "This identity is already bound to another integration.")


def _fresh_issuer(issuer: TrustedIssuer) -> TrustedIssuer:
    current = TrustedIssuer.objects.filter(pk=issuer.pk).first()
    if current is None or not current.is_active:
        raise Unprocessable.on("issuer", "Choose an active trusted issuer.")
    return current


def _locked(actor: Actor, integration: Integration) -> tuple[Integration, WorkloadBinding | None]:
    locked = integration_locked_for(actor, integration, permissions.can_edit, _REFUSAL, related=("business_owner",))
    if locked.status == IntegrationStatus.RETIRED:
        raise Conflict(f"{locked.name} is retired; its workload identity cannot change.")
    binding = WorkloadBinding.objects.select_for_update().select_related("issuer").filter(integration=locked).first()
    return locked, binding


def workload_binding_set(
    *,
    actor: Actor | User,
    integration: Integration,
    issuer: TrustedIssuer,
    subject: str,
    required_claims: Mapping[str, Any],
) -> WorkloadBinding:
    """Bind ``integration`` to the workload identity (``issuer``, ``subject``, claim equalities)
    its tokens must prove, or change its binding: ``integration.identity_bound`` /
    ``integration.identity_changed`` with before and after. Rules: owners and IAM admins only; not
    on a retired integration; an active issuer; the subject and claims rules above (a SPIFFE
    issuer takes a SPIFFE ID of its trust domain); an identity binds one integration only. A
    changed identity is unproven again (verification times cleared), and on a high or critical
    integration that is active or pending it is re-reviewed (``integration_identity_changed``).
    Giving the same identity again changes nothing."""
    resolved = Actor.coerce(actor)
    subject = (subject or "").strip()
    claims = dict(required_claims) if isinstance(required_claims, Mapping) else required_claims
    with transaction.atomic():
        locked, binding = _locked(resolved, integration)
        current_issuer = _fresh_issuer(issuer)
        _inputs_validate(current_issuer, subject, claims)
        key = claims_key_of(claims)
        other = (
            WorkloadBinding.objects.filter(issuer=current_issuer, subject=subject, claims_key=key)
            .exclude(integration=locked)
            .first()
        )
        if other is not None:
            raise _already_bound(resolved, other)
        before = _binding_snapshot(binding)
        if binding is not None and (binding.issuer_id, binding.subject, binding.claims_key) == (
            current_issuer.pk,
            subject,
            key,
        ):
            return binding
        binding = _binding_write(resolved, locked, binding, current_issuer, subject, claims, key)
        after = _binding_snapshot(binding)
        audit_record(
            actor=resolved,
            action="integration.identity_bound" if before is None else "integration.identity_changed",
            target=locked,
            owner=locked.business_owner,
            before=before,
            after=after,
        )
        _review_if_needed(resolved, locked, before, after)
    return binding


def _binding_write(
    actor: Actor,
    integration: Integration,
    binding: WorkloadBinding | None,
    issuer: TrustedIssuer,
    subject: str,
    claims: dict[str, Any],
    key: str,
) -> WorkloadBinding:
    """Save the new identity, unproven: a token of the old identity proves nothing about it."""
    target = binding or WorkloadBinding(integration=integration)
    target.issuer, target.subject, target.required_claims, target.claims_key = issuer, subject, claims, key
    target.first_verified_at = target.last_verified_at = None
    target.updated_at = timezone.now()
    target._history_user = actor.user
    try:
        # A savepoint: a binding made meanwhile by another transaction (the unique constraint)
        # is refused like one found above, and the caller's transaction stays usable.
        with transaction.atomic():
            target.save()
    except IntegrityError:
        raise Unprocessable.on("subject", "This identity is already bound to another integration.") from None
    return target


def workload_binding_remove(*, actor: Actor | User, integration: Integration, reason: str = "") -> None:
    """Remove the integration's workload binding (``integration.identity_unbound``): it can no
    longer obtain tokens until bound again. Rules: owners and IAM admins only; not on a retired
    integration; a binding must exist (NotFound otherwise). On a high or critical integration
    that is active or pending it is re-reviewed (``integration_identity_changed``)."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked, binding = _locked(resolved, integration)
        if binding is None:
            raise NotFound(f"{locked.name} has no workload binding.")
        before = _binding_snapshot(binding)
        binding._history_user = resolved.user
        binding.delete()
        audit_record(
            actor=resolved,
            action="integration.identity_unbound",
            target=locked,
            owner=locked.business_owner,
            before=before,
            after=None,
            reason=reason,
        )
        _review_if_needed(resolved, locked, before, None)


def _review_if_needed(
    actor: Actor, integration: Integration, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> None:
    """A high or critical integration that runs, or is being decided, proves a different identity
    now: what was approved for the old one is reviewed again (approvals reacts to the signal in
    this transaction)."""
    if integration.risk_tier not in _REVIEWED_TIERS or integration.status not in _REVIEWED_STATUSES:
        return
    signals.integration_identity_changed.send(
        sender=Integration,
        integration=integration,
        actor=actor,
        old_identity=_label_of(before),
        new_identity=_label_of(after),
    )


# --- What the runtime's log sealer records back -----------------------------------------------
#
# System work, not audited: the token events these counts come from are themselves sealed into
# the audit chain (one audit event per sealed batch), so an audit event per binding or grant
# would repeat them and put the chain's global lock back on every seal. The sealer counts each
# event once; these writes only have to keep concurrent increments, which they do by computing
# every new value in the database (UPDATE ... SET x = f(x)), never read-modify-write in Python.


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[start : start + _BULK_CHUNK] for start in range(0, len(ids), _BULK_CHUNK)]


def _per_row(column: str, values: Mapping[int, Any], output: Any) -> Case:
    """A CASE choosing each row's own value by ``column`` (one UPDATE for many rows)."""
    return Case(*(When(**{column: pk}, then=Value(value)) for pk, value in values.items()), output_field=output)


def workload_bindings_verified(times: Mapping[int, tuple[datetime, datetime]]) -> int:
    """Record that tokens proving these integrations' bindings were accepted: integration id ->
    (first, last) acceptance in a sealed batch. ``first_verified_at`` is set once, ``last_verified_at``
    only moves forward. A binding changed after the last of those tokens is left alone: they
    proved the identity it had before. Returns how many bindings were updated."""
    updated = 0
    with transaction.atomic():
        for chunk in _chunks(sorted(times)):
            first = _per_row("integration_id", {pk: times[pk][0] for pk in chunk}, DateTimeField())
            last = _per_row("integration_id", {pk: times[pk][1] for pk in chunk}, DateTimeField())
            # Bindings changed after the batch's last token are left alone.
            still_same = WorkloadBinding.objects.filter(integration_id__in=chunk, updated_at__lte=last)
            updated += still_same.update(
                # Tokens before the binding's last change proved the old identity: the first
                # proof of this one is no earlier than that change.
                first_verified_at=Coalesce(F("first_verified_at"), Greatest(first, F("updated_at"))),
                # Greatest of a NULL is NULL on SQLite (ignored on PostgreSQL): compare with a value.
                last_verified_at=Greatest(Coalesce(F("last_verified_at"), last), last),
            )
    return updated


def usage_day_of(moment: datetime) -> date:
    """The day (UTC) a use is counted on."""
    return moment.astimezone(UTC).date()


def grant_usage_record(usage: Mapping[int, tuple[int, datetime]]) -> int:
    """Add uses to grants: grant id -> (tokens issued carrying its scope, when the last was).
    The uses are added to the grant's row of the last use's day (UTC), made when missing;
    ``Grant.last_used_at`` only moves forward. Unknown grant ids are skipped. Returns how many
    grants were recorded."""
    with transaction.atomic():
        known = set(Grant.objects.filter(pk__in=list(usage)).values_list("pk", flat=True))
        by_day: dict[date, dict[int, int]] = {}
        for grant_id in sorted(known):
            uses, last = usage[grant_id]
            if uses > 0:
                by_day.setdefault(usage_day_of(last), {})[grant_id] = uses
        for day, counts in by_day.items():
            _usage_add(day, counts)
        for chunk in _chunks(sorted(known)):
            latest = _per_row("pk", {pk: usage[pk][1] for pk in chunk}, DateTimeField())
            Grant.objects.filter(pk__in=chunk).update(
                last_used_at=Greatest(Coalesce(F("last_used_at"), latest), latest)
            )
    return len(known)


def _usage_add(day: date, counts: Mapping[int, int]) -> None:
    """Make the missing rows of ``day`` (a row made meanwhile by another sealer is kept), then
    add each count in one UPDATE: ``uses = uses + n`` is computed by the database under the row's
    lock, so two sealers adding to the same row both count."""
    for chunk in _chunks(sorted(counts)):
        GrantUsageDay.objects.bulk_create(
            [GrantUsageDay(grant_id=pk, day=day, uses=0) for pk in chunk], ignore_conflicts=True
        )
        added = _per_row("grant_id", {pk: counts[pk] for pk in chunk}, IntegerField())
        GrantUsageDay.objects.filter(day=day, grant_id__in=chunk).update(uses=F("uses") + added)
