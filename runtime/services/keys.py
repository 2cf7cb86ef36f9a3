"""The life of the portal's signing keys: next -> current -> previous -> retired.

Overlap rules, so that no resource server ever sees a token it cannot verify:
- a new key is published as ``next`` and may sign only from ``sign_after`` =
  created + ``RUNTIME_JWKS_CACHE_SECONDS`` (every resource server's cached JWKS has it by then);
- a superseded key stays published as ``previous`` until ``remove_after`` = now +
  ``RUNTIME_TOKEN_MAX_SECONDS`` + ``RUNTIME_JWKS_CACHE_SECONDS`` + the in-process current-key cache
  (another web process may still sign with it that long), after which every token it signed has
  expired; the next run retires it and wipes its private part.
The very first keys are the exception: the first ``current`` signs at once, since no resource
server can have cached a JWKS without it (there was none).

Races are settled by the database: at most one ``current`` and one ``next`` per algorithm
(partial unique constraints), and every state move is a conditional UPDATE that must touch one row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import accountable_human, audit_record
from governance.exceptions import Conflict, NotAllowed
from governance.models import User
from governance.services import lockout_owner
from runtime import keys
from runtime.models import KeyState, SigningKey
from runtime.permissions import can_manage_signing_keys

log = logging.getLogger(__name__)


def _create(algorithm: str, state: str, *, now: datetime, sign_after: datetime) -> SigningKey:
    generated = keys.generate(algorithm)
    return SigningKey.objects.create(
        kid=generated.kid,
        algorithm=algorithm,
        public_jwk=generated.public_jwk,
        private_key_encrypted=generated.private_key_encrypted,
        state=state,
        created_at=now,
        sign_after=sign_after,
        activated_at=now if state == KeyState.CURRENT else None,
    )


def _publish_delay() -> timedelta:
    return timedelta(seconds=settings.RUNTIME_JWKS_CACHE_SECONDS)


def _previous_lifetime() -> timedelta:
    return timedelta(
        seconds=settings.RUNTIME_TOKEN_MAX_SECONDS
        + settings.RUNTIME_JWKS_CACHE_SECONDS
        + keys.CURRENT_KEY_CACHE_SECONDS
    )


def portal_owner() -> User | None:
    """Who answers for what the portal does to its own keys when nobody asked: the
    longest-standing active IAM admin (else superuser)."""
    return lockout_owner()


def _create_first(algorithm: str, now: datetime) -> tuple[SigningKey, SigningKey]:
    current = _create(algorithm, KeyState.CURRENT, now=now, sign_after=now)
    following = _create(algorithm, KeyState.NEXT, now=now, sign_after=now + _publish_delay())
    return current, following


def signing_keys_bootstrap(*, algorithm: str) -> SigningKey:
    """The first keys for ``algorithm`` (current, signing at once, and next), created on first use
    by the portal itself; returns the current key. Two processes racing here: one insert breaks
    the one-current constraint, and that process reads the winner's key instead."""
    keys.check_algorithm(algorithm)
    now = timezone.now()
    owner = portal_owner()
    try:
        with transaction.atomic():
            current, following = _create_first(algorithm, now)
            if owner is None:
                log.warning("First %s signing keys created unaudited: the portal has no active IAM admin.", algorithm)
            else:
                audit_record(
                    actor=Actor.system(on_behalf_of=owner),
                    action="signing_key.created",
                    target=current,
                    owner=owner,
                    after={"algorithm": algorithm, "current": current.kid, "next": following.kid},
                    reason="First use: no signing key existed for this algorithm.",
                )
    except IntegrityError:
        existing = SigningKey.objects.filter(algorithm=algorithm, state=KeyState.CURRENT).first()
        if existing is None:
            raise
        return existing
    keys.forget_published()
    return current


@dataclass
class RotationResult:
    algorithm: str
    current: SigningKey | None = None
    next: SigningKey | None = None
    promoted: bool = False
    superseded: str = ""
    created: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    # Why a due (or forced) rotation could not promote yet; empty when it did or was not due.
    waiting: str = ""


def _algorithms_to_rotate(algorithm: str | None) -> list[str]:
    if algorithm:
        return [keys.check_algorithm(algorithm)]
    in_use = set(SigningKey.objects.exclude(state=KeyState.RETIRED).values_list("algorithm", flat=True))
    return sorted(in_use | {settings.RUNTIME_SIGNING_ALGORITHM})


def _move(row: SigningKey, from_state: str, **changes: object) -> None:
    """A state move that must find the row still in ``from_state`` (a concurrent rotation
    that got there first makes this one fail loudly)."""
    if SigningKey.objects.filter(pk=row.pk, state=from_state).update(**changes) != 1:
        raise Conflict(f"The signing key {row.kid} changed during the rotation; run it again.")
    for name, value in changes.items():
        setattr(row, name, value)


def _retire_expired(previous: list[SigningKey], now: datetime) -> list[str]:
    retired = []
    for row in previous:
        if row.remove_after is not None and row.remove_after <= now:
            # Retired keys verify nothing and sign nothing: their private part is wiped.
            _move(row, KeyState.PREVIOUS, state=KeyState.RETIRED, retired_at=now, private_key_encrypted="")
            retired.append(row.kid)
    return retired


def _promote(current: SigningKey, following: SigningKey, algorithm: str, now: datetime) -> SigningKey:
    _move(
        current, KeyState.CURRENT, state=KeyState.PREVIOUS, superseded_at=now, remove_after=now + _previous_lifetime()
    )
    _move(following, KeyState.NEXT, state=KeyState.CURRENT, activated_at=now)
    return _create(algorithm, KeyState.NEXT, now=now, sign_after=now + _publish_delay())


def _is_due(current: SigningKey, now: datetime) -> bool:
    started = current.activated_at or current.created_at
    return started <= now - timedelta(days=settings.RUNTIME_KEY_ROTATION_DAYS)


def _rotate_one(algorithm: str, *, force: bool, now: datetime) -> RotationResult:
    rows = list(SigningKey.objects.select_for_update().filter(algorithm=algorithm).exclude(state=KeyState.RETIRED))
    current = next((row for row in rows if row.state == KeyState.CURRENT), None)
    following = next((row for row in rows if row.state == KeyState.NEXT), None)
    result = RotationResult(algorithm=algorithm, current=current, next=following)
    result.retired = _retire_expired([row for row in rows if row.state == KeyState.PREVIOUS], now)
    if current is None:
        if following is not None:
            raise Conflict(f"The {algorithm} keys have a next key but no current one; nothing was changed.")
        result.current, result.next = _create_first(algorithm, now)
        result.created = [result.current.kid, result.next.kid]
        return result
    if following is None:
        result.next = _create(algorithm, KeyState.NEXT, now=now, sign_after=now + _publish_delay())
        result.created = [result.next.kid]
        if force or _is_due(current, now):
            result.waiting = (
                f"A new next key was published; it may sign from {result.next.sign_after:%Y-%m-%d %H:%M:%S %Z}."
            )
        return result
    if not (force or _is_due(current, now)):
        return result
    if following.sign_after > now:
        result.waiting = (
            f"The next key {following.kid} has not been published for a full JWKS cache lifetime yet; "
            f"it may sign from {following.sign_after:%Y-%m-%d %H:%M:%S %Z}."
        )
        return result
    result.next = _promote(current, following, algorithm, now)
    result.current, result.superseded, result.promoted = following, current.kid, True
    result.created = [result.next.kid]
    return result


def _audit_rotation(actor: Actor, owner: User, result: RotationResult, *, force: bool) -> None:
    if result.promoted or result.created:
        audit_record(
            actor=actor,
            action="signing_key.rotated" if result.promoted else "signing_key.created",
            target=result.current,
            owner=owner,
            before={"current": result.superseded or None},
            after={
                "algorithm": result.algorithm,
                "current": result.current.kid if result.current else None,
                "next": result.next.kid if result.next else None,
                "created": result.created,
            },
            reason=_rotation_reason(result, force=force),
        )
    for kid in result.retired:
        audit_record(
            actor=actor,
            action="signing_key.retired",
            target_type="runtime.signingkey",
            target_id=kid,
            target_repr=f"{result.algorithm} {kid[:12]}",
            owner=owner,
            reason="Every token it signed has expired.",
        )


def _rotation_reason(result: RotationResult, *, force: bool) -> str:
    if not result.promoted:
        return "No next key was published for this algorithm."
    if force:
        return "Forced rotation."
    return f"The current key reached {settings.RUNTIME_KEY_ROTATION_DAYS} days."


def _owner_for(actor: Actor) -> User:
    owner = accountable_human(actor) or portal_owner()
    if owner is None:
        raise Conflict("Nobody can answer for a key rotation: the portal has no active IAM admin.")
    return owner


def signing_keys_rotate(
    *, actor: Actor | User, algorithm: str | None = None, force: bool = False
) -> list[RotationResult]:
    """Retire previous keys past ``remove_after``, make sure a next key is published, and, when the
    current key is older than ``RUNTIME_KEY_ROTATION_DAYS`` (or ``force``), promote next to current
    and current to previous — only if next has been published a full JWKS cache lifetime. Each
    change is audited (``signing_key.rotated``, ``signing_key.retired``) with the acting admin, or
    for the system the longest-standing active IAM admin, as accountable owner. IAM admins and
    the system only. One result per algorithm (the given one, or every one in use)."""
    resolved = Actor.coerce(actor)
    if not can_manage_signing_keys(resolved):
        raise NotAllowed("Only IAM admins rotate the portal's signing keys.")
    owner = _owner_for(resolved)
    now = timezone.now()
    results = []
    with transaction.atomic():
        for name in _algorithms_to_rotate(algorithm):
            result = _rotate_one(name, force=force, now=now)
            _audit_rotation(resolved, owner, result, force=force)
            results.append(result)
        transaction.on_commit(keys.clear_caches)
    return results


def signing_keys_reencrypt(*, actor: Actor | User) -> int:
    """Encrypt every live key's private part again under the first configured encryption key
    (after ``SECRET_KEY`` or ``RUNTIME_KEY_ENCRYPTION_KEYS`` rotated, while the old key is still
    configured for decryption). All or nothing: a key no configured key decrypts stops it,
    named in the error. Audited as ``signing_key.reencrypted``. Returns how many keys it rewrote."""
    resolved = Actor.coerce(actor)
    if not can_manage_signing_keys(resolved):
        raise NotAllowed("Only IAM admins re-encrypt the portal's signing keys.")
    owner = _owner_for(resolved)
    with transaction.atomic():
        rows = list(SigningKey.objects.select_for_update().exclude(state=KeyState.RETIRED).order_by("id"))
        unreadable = [row.kid for row in rows if not keys.is_decryptable(row)]
        if unreadable:
            raise Conflict(
                f"These signing keys cannot be decrypted with any configured key: {', '.join(unreadable)}. "
                "Nothing was re-encrypted."
            )
        for row in rows:
            SigningKey.objects.filter(pk=row.pk).update(private_key_encrypted=keys.reencrypted(row))
        if rows:
            audit_record(
                actor=resolved,
                action="signing_key.reencrypted",
                target_type="runtime.signingkey",
                target_repr=f"{len(rows)} signing keys",
                owner=owner,
                after={"kids": [row.kid for row in rows]},
                reason="Private parts encrypted under the first configured key.",
            )
        transaction.on_commit(keys.clear_caches)
    return len(rows)
