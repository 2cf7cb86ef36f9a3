"""Webhook signing secrets: stored encrypted, never in clear, and shown once, at creation.

The key is derived from SECRET_KEY, so rotating SECRET_KEY makes existing secrets unreadable:
their deliveries fail with a clear error and the subscription must be recreated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _random

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

SECRET_PREFIX = "whsec_"


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"governance.webhooks.secret:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def generate() -> str:
    return SECRET_PREFIX + _random.token_urlsafe(32)


def fingerprint(secret: str) -> str:
    """What pages and the API show for a secret: ``sha256:`` and the first 16 hex digits of the
    SHA-256 of the whole secret. It names the secret (a receiver can compute it from the secret it
    holds: ``printf %s "$SECRET" | sha256sum | cut -c1-16``) without showing any character of it,
    even for a secret the caller chose."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:16]


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


class SecretUnreadable(Exception):
    pass


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("The signing secret cannot be decrypted (was SECRET_KEY changed?).") from exc


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Signature`` header value: ``t=<unix ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"
