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
