"""Writes of API tokens: issued with a key shown once (only its hash is stored), and revoked."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, ValidationFailed
from governance.history import history_record_many
from governance.models import ApiToken, User
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters


def hash_token_key(key: str) -> str:
    # Keys are 256-bit random values, so a plain SHA-256 is enough (no need for a slow KDF).
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_token_issue(
    *, actor: Actor | User, user: User, name: str = "", expires_days: int | None = None
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` and return it with its key; the key is never stored."""
    days = settings.API_TOKEN_DEFAULT_DAYS if expires_days is None else expires_days
    if days < 0:
        raise ValidationFailed.on("expires_days", "Must be zero (never expires) or a positive number of days.")
    if not user.is_active:
        raise ValidationFailed.on("user", f"{user.username} is deactivated.")
    if has_control_characters(name):
        raise ValidationFailed.on("name", SINGLE_LINE_MESSAGE)
    key = "gp_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=key[:10],
            key_hash=hash_token_key(key),
            expires_at=timezone.now() + timedelta(days=days) if days else None,
        )
        audit_record(
            actor=actor,
            action="api_token.issued",
            target=token,
            owner=user,
            after={"user": user.username, "name": name, "expires_at": token.expires_at},
        )
    return token, key


def api_token_revoke(*, actor: Actor | User, token: ApiToken, reason: str = "") -> ApiToken:
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated != 1:
            raise Conflict("This token is already revoked.")
        token.refresh_from_db()
        history_record_many([token], user=Actor.coerce(actor).user, reason=reason)
        audit_record(actor=actor, action="api_token.revoked", target=token, owner=token.user, reason=reason)
    return token


# A person's own tokens, made on their home page: each named (to recognise and revoke it), none
# for longer than a year, and a handful usable at once.
PERSONAL_TOKEN_DAYS = (30, 90, 365)
PERSONAL_TOKENS_MAX = 5


def api_token_issue_personal(*, actor: User, name: str, expires_days: int) -> tuple[ApiToken, str]:
    """Create a token for the signed-in person themselves; its key is returned once and never
    stored. Refused without a name, for a lifetime not offered (``PERSONAL_TOKEN_DAYS``: a
    self-made token always expires), or when ``PERSONAL_TOKENS_MAX`` are already usable."""
    name = name.strip()
    if not name:
        raise ValidationFailed.on("name", "Give the token a name, e.g. the script or tool that will use it.")
    if len(name) > ApiToken._meta.get_field("name").max_length:  # type: ignore[operator]
        raise ValidationFailed.on("name", "Keep the name under 100 characters.")
    if expires_days not in PERSONAL_TOKEN_DAYS:
        raise ValidationFailed.on("expires_days", "Choose one of the offered lifetimes.")
    with transaction.atomic():
        # The person's row is locked so that two requests at once cannot both pass the limit.
        User.objects.select_for_update().filter(pk=actor.pk).first()
        now = timezone.now()
        usable = ApiToken.objects.filter(user=actor, revoked_at__isnull=True).exclude(expires_at__lte=now).count()
        if usable >= PERSONAL_TOKENS_MAX:
            raise Conflict(f"You already have {usable} usable tokens: revoke one you no longer need first.")
        return api_token_issue(actor=actor, user=actor, name=name, expires_days=expires_days)
