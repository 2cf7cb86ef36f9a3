"""The portal's own signing keys: generation, encryption at rest, and the in-process caches that
keep minting and verifying off the database.

Private keys are stored encrypted with a ``MultiFernet``: the keys in
``settings.RUNTIME_KEY_ENCRYPTION_KEYS`` (the first encrypts, every one decrypts) or, when that
setting is empty, keys derived from ``SECRET_KEY`` and then each of ``SECRET_KEY_FALLBACKS``.
Rotating ``SECRET_KEY`` therefore keeps the signing keys readable as long as the old value stays in
``SECRET_KEY_FALLBACKS`` until ``manage.py rotate_signing_keys --reencrypt`` has run. A key that no
configured key decrypts is never replaced quietly (resource servers would start rejecting tokens
for no visible reason): signing refuses with ``SigningKeyUnavailable`` and the system check
``runtime.E001`` names the key.

Each key's ``kid`` is its RFC 7638 JWK thumbprint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from runtime.models import KeyState, SigningKey

SUPPORTED_ALGORITHMS = ("ES256", "RS256")
# 2048 bits is the RFC 7518 minimum for RS256 and what every resource server accepts; a 3072-bit
# key would sign about three times slower for no gain within a key's 30-day life.
RSA_KEY_BITS = 2048
# Cache ages below are measured on the monotonic clock: they are a process's freshness, not
# business time (key validity itself is always compared with timezone.now()).
# How long a process signs with the current key it loaded before looking again: after a rotation
# another process may sign with the superseded key this long, which the previous key's
# ``remove_after`` allows for.
CURRENT_KEY_CACHE_SECONDS = 30.0
# How long a process trusts its copy of the published keys before reading them again.
PUBLISHED_KEYS_CACHE_SECONDS = 30.0
# An unknown ``kid`` reloads the published keys at most this often (a key created a moment ago
# by another process is found; a stream of made-up kids costs one query per second at most).
UNKNOWN_KID_RELOAD_SECONDS = 1.0
PUBLISHED_STATES = (KeyState.NEXT, KeyState.CURRENT, KeyState.PREVIOUS)

_DERIVATION_LABEL = b"runtime.signing-key:"
# The members RFC 7638 hashes for each key type, in lexicographic order.
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}


class SigningKeyUnavailable(Exception):
    """No usable signing key: its private part cannot be decrypted with any configured key.
    The token endpoint answers 503 and nothing is signed until an operator fixes the keys."""


# --- Encryption at rest -----------------------------------------------------------------------------


def _derived_key(secret: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(_DERIVATION_LABEL + secret.encode()).digest())


def encryption_keys() -> list[bytes]:
    """The Fernet keys in use, the one that encrypts first."""
    explicit = [key for key in settings.RUNTIME_KEY_ENCRYPTION_KEYS if key]
    if explicit:
        return [key.encode() for key in explicit]
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [_derived_key(secret) for secret in secrets]


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in encryption_keys()])


def encrypt_private_key(pem: bytes) -> str:
    return _fernet().encrypt(pem).decode()


def _decrypted_pem(row: SigningKey) -> bytes:
    try:
        return _fernet().decrypt(row.private_key_encrypted.encode())
    except (InvalidToken, ValueError) as exc:
        raise SigningKeyUnavailable(
            f"The {row.algorithm} signing key {row.kid} cannot be decrypted with any configured key "
            "(RUNTIME_KEY_ENCRYPTION_KEYS, or SECRET_KEY and SECRET_KEY_FALLBACKS). Put the key it was "
            "encrypted with back into the settings; no new key is created in its place."
        ) from exc


def private_key(row: SigningKey) -> Any:
    """The row's private key object; ``SigningKeyUnavailable`` when it cannot be decrypted."""
    return serialization.load_pem_private_key(_decrypted_pem(row), password=None)


def reencrypted(row: SigningKey) -> str:
    """The row's private part encrypted under the first configured key (decrypted with any)."""
    try:
        return _fernet().rotate(row.private_key_encrypted.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise SigningKeyUnavailable(f"The signing key {row.kid} cannot be decrypted with any configured key.") from exc


def is_decryptable(row: SigningKey) -> bool:
    try:
        _decrypted_pem(row)
    except SigningKeyUnavailable:
        return False
    return True


# --- Generation and thumbprints ---------------------------------------------------------------------


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638: base64url (no padding) of the SHA-256 of the key's required members as JSON
    with sorted keys and no whitespace."""
    members = _THUMBPRINT_MEMBERS[str(jwk["kty"])]
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class GeneratedKey:
    kid: str
    algorithm: str
    public_jwk: dict[str, Any]
    private_key_encrypted: str


def generate(algorithm: str) -> GeneratedKey:
    """A new key pair for ``algorithm``; the private part leaves this function only encrypted."""
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if algorithm == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        public = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    elif algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
        public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        raise ValueError(f"Unsupported signing algorithm {algorithm!r}; use one of {', '.join(SUPPORTED_ALGORITHMS)}.")
    kid = thumbprint(public)
    public_jwk = {**public, "kid": kid, "alg": algorithm, "use": "sig"}
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return GeneratedKey(
        kid=kid, algorithm=algorithm, public_jwk=public_jwk, private_key_encrypted=encrypt_private_key(pem)
    )


def check_algorithm(algorithm: str) -> str:
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"Unsupported signing algorithm {algorithm!r}; use one of {', '.join(SUPPORTED_ALGORITHMS)}.")
    return algorithm


# --- The current key, cached per process ------------------------------------------------------------


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    algorithm: str
    private_key: Any
    loaded_at: float


_current: dict[str, LoadedKey] = {}


def signing_key(algorithm: str) -> LoadedKey:
    """The key to sign with now. Read from this process's cache (no query) unless the cached copy
    is older than ``CURRENT_KEY_CACHE_SECONDS``; creates the first keys when none exist."""
    cached = _current.get(algorithm)
    if cached is not None and time.monotonic() - cached.loaded_at < CURRENT_KEY_CACHE_SECONDS:
        return cached
    return _load_current(check_algorithm(algorithm), cached)


def _load_current(algorithm: str, cached: LoadedKey | None) -> LoadedKey:
    row = SigningKey.objects.filter(algorithm=algorithm, state=KeyState.CURRENT).first()
    created = row is None
    if row is None:
        # Imported here: the service module builds on this one.
        from runtime.services.keys import signing_keys_bootstrap

        row = signing_keys_bootstrap(algorithm=algorithm)
    if cached is not None and cached.kid == row.kid:
        key = cached.private_key
    else:
        key = private_key(row)
    loaded = LoadedKey(kid=row.kid, algorithm=algorithm, private_key=key, loaded_at=time.monotonic())
    if created:
        # A key created inside the caller's transaction is cached once that commits: a rollback
        # would otherwise leave this process signing with a key nobody publishes.
        transaction.on_commit(lambda: _current.__setitem__(algorithm, loaded))
    else:
        _current[algorithm] = loaded
    return loaded


# --- Published keys, cached per process -------------------------------------------------------------


@dataclass(frozen=True)
class PublishedKey:
    kid: str
    algorithm: str
    public_key: Any
    remove_after: datetime | None


class _PublishedCache:
    def __init__(self) -> None:
        self.keys: dict[str, PublishedKey] = {}
        self.loaded_at: float | None = None
        self.lock = threading.Lock()


_published = _PublishedCache()


def published_rows() -> list[SigningKey]:
    """The keys in the JWKS now: next, current, and previous ones not yet past ``remove_after``
    (a previous key past it is retired by the next rotation run, and already unpublished)."""
    now = timezone.now()
    rows = SigningKey.objects.filter(state__in=PUBLISHED_STATES).order_by("created_at", "id")
    return [row for row in rows if row.remove_after is None or row.remove_after > now]


def _reload_published() -> None:
    keys = {
        row.kid: PublishedKey(
            kid=row.kid,
            algorithm=row.algorithm,
            public_key=jwt.PyJWK(row.public_jwk, row.algorithm).key,
            remove_after=row.remove_after,
        )
        for row in SigningKey.objects.filter(state__in=PUBLISHED_STATES)
    }
    _published.keys = keys
    _published.loaded_at = time.monotonic()


def verification_key(kid: str) -> PublishedKey | None:
    """The published key named ``kid``, or None. Reads this process's copy of the published keys,
    reloaded when older than ``PUBLISHED_KEYS_CACHE_SECONDS`` or, at most once a second, when the
    kid is unknown. A previous key past its ``remove_after`` no longer verifies."""
    age = None if _published.loaded_at is None else time.monotonic() - _published.loaded_at
    found = _published.keys.get(kid)
    stale = age is None or age >= PUBLISHED_KEYS_CACHE_SECONDS
    if stale or (found is None and age is not None and age >= UNKNOWN_KID_RELOAD_SECONDS):
        with _published.lock:
            _reload_published()
        found = _published.keys.get(kid)
    if found is None:
        return None
    if found.remove_after is not None and found.remove_after <= timezone.now():
        return None
    return found


def forget_published() -> None:
    """Read the published keys again on the next verification (a key was just created here)."""
    _published.loaded_at = None


def clear_caches() -> None:
    """Forget this process's keys (after a rotation here, and between tests)."""
    _current.clear()
    _published.keys = {}
    _published.loaded_at = None
