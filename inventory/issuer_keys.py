"""The keys that verify workload tokens, per trusted issuer: fetched, cached, refreshed.

Where keys come from: an OpenID Connect issuer's discovery document names its ``jwks_uri``; a
SPIFFE trust domain's JWT bundle URL is a JWKS; a static JWKS (or a SPIFFE bundle) may be pasted.
Every fetch goes through ``governance.outbound`` (https unless the host is allow-listed, no
internal addresses, no redirects, size and time capped); a discovery document must name the
configured issuer exactly (OpenID Connect Discovery §4.3), or its keys are not taken.

Caching, per process (a gunicorn worker's threads share it):
- the cache is keyed by issuer id and the row's ``updated_at``: an edit of the issuer drops it;
- keys are refetched when older than the issuer's ``key_cache_seconds``, and once more when a
  token names a ``kid`` the set does not have (a rotation at the issuer); attempts are at most one
  per ``RUNTIME_KEY_REFETCH_COOLDOWN_SECONDS`` per issuer, so tokens with made-up ``kid`` values
  cannot turn the portal into a flood of requests to the issuer;
- a failed refresh keeps the keys held and records the error on the row (the issuer's page shows
  it); keys not refreshed for ``RUNTIME_ISSUER_KEYS_MAX_STALE_SECONDS`` are no longer trusted
  (nothing is allowed by default: a stale cache denies). Pasted keys never go stale.
- one thread fetches for an issuer at a time; a thread that finds a fetch under way uses the keys
  held when it has some, else waits for that fetch rather than starting another.

``verification_key`` answers a ``jwt.PyJWK``; verify with ``key.key`` and the *issuer's* allowed
algorithms, never the token's own ``alg``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
from django.conf import settings
from django.utils import timezone

from governance import outbound
from governance.actors import Actor
from governance.exceptions import NotAllowed
from governance.models import User
from inventory import jwks, permissions
from inventory.choices import IssuerKind
from inventory.models import TrustedIssuer
from inventory.services.issuers import (
    discovery_url_of,
    keys_are_pasted,
    trusted_issuer_keys_failed,
    trusted_issuer_keys_fetched,
)

log = logging.getLogger(__name__)


class KeyUnavailable(Exception):
    """No key the portal trusts verifies this token; ``reason`` says why (for the refusal log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _FetchFailed(Exception):
    """A fetch that produced no usable document; ``str(exc)`` is safe to store and show."""


@dataclass
class _Entry:
    """What one process holds for one issuer configuration (``version`` = its ``updated_at``)."""

    version: datetime
    keys: jwks.KeySet | None
    fetched_at: datetime | None  # when ``keys`` were fetched (None: pasted, or none yet)
    attempted_at: datetime | None  # the last fetch attempt, successful or not (cooldown)
    lock: threading.Lock = field(default_factory=threading.Lock)


_entries: dict[int, _Entry] = {}
_entries_lock = threading.Lock()


def verification_key(issuer: TrustedIssuer, kid: str | None) -> jwt.PyJWK:
    """The key of ``issuer`` named ``kid`` (without a ``kid``: the only key of a one-key set).
    Raises ``KeyUnavailable``: inactive issuer, no keys, unknown ``kid`` after the one refetch
    allowed, or keys too stale to trust."""
    if not issuer.is_active:
        raise KeyUnavailable("the issuer is not active")
    entry = _entry(issuer)
    fetched = not keys_are_pasted(issuer)
    if fetched and _due(issuer, entry):
        _try_fetch(issuer, entry, wait=entry.keys is None)
    if entry.keys is None:
        raise KeyUnavailable(f"no keys for the issuer ({issuer.keys_error or 'never fetched'})")
    if kid is None and len(entry.keys.keys) > 1:
        raise KeyUnavailable("the token names no kid and the issuer has several keys")
    key = entry.keys.find(kid)
    if key is None and fetched:
        _try_fetch(issuer, entry, wait=True)  # the issuer may have rotated: one refetch
        key = entry.keys.find(kid) if entry.keys else None
    if key is None:
        raise KeyUnavailable(f"unknown key id {kid!r}")
    if fetched and _stale(entry.fetched_at):
        raise KeyUnavailable("the issuer's keys could not be refreshed for too long")
    return key


def refresh(issuer: TrustedIssuer) -> None:
    """Fetch ``issuer``'s keys now, whatever the cache and cooldown say; a failure is recorded
    on the row (``keys_error``), never raised. Pasted keys are reloaded from the row."""
    _refresh(issuer)


def refresh_asked(*, actor: Actor | User, issuer: TrustedIssuer) -> str:
    """ "Refresh keys now" (page or API): IAM admins only. Returns why the fetch failed, or ""
    when it succeeded. Not audited: fetching what an issuer publishes decides nothing."""
    if not permissions.can_manage_issuers(Actor.coerce(actor)):
        raise NotAllowed("Only IAM admins refresh an issuer's keys.")
    return _refresh(issuer)


def _refresh(issuer: TrustedIssuer) -> str:
    if keys_are_pasted(issuer):
        with _entries_lock:
            _entries[issuer.pk] = _entry_from_row(issuer)
        return ""
    entry = _entry(issuer)
    with entry.lock:
        return _fetch(issuer, entry)


def forget() -> None:
    """Drop every cached key set (tests; a process that must re-read everything)."""
    with _entries_lock:
        _entries.clear()


# --- What a page shows ------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyStatus:
    """An issuer's keys as last stored: ids and algorithms, when fetched, the last error."""

    keys: list[dict[str, str]]
    pasted: bool
    fetched_at: datetime | None
    error: str
    error_at: datetime | None
    stale: bool


def status(issuer: TrustedIssuer) -> KeyStatus:
    try:
        summary = jwks.parse(issuer.jwks).summary() if issuer.jwks else []
    except jwks.JwksRefused:
        summary = []
    pasted = keys_are_pasted(issuer)
    return KeyStatus(
        keys=summary,
        pasted=pasted,
        fetched_at=issuer.keys_fetched_at,
        error=issuer.keys_error,
        error_at=issuer.keys_error_at,
        stale=not pasted and _stale(issuer.keys_fetched_at),
    )


# --- Cache ------------------------------------------------------------------------------------


def _entry(issuer: TrustedIssuer) -> _Entry:
    with _entries_lock:
        entry = _entries.get(issuer.pk)
        if entry is None or entry.version != issuer.updated_at:
            entry = _entries[issuer.pk] = _entry_from_row(issuer)
        return entry


def _entry_from_row(issuer: TrustedIssuer) -> _Entry:
    """Start from what the row holds: pasted keys, or the last set any process fetched."""
    try:
        keys = jwks.parse(issuer.jwks) if issuer.jwks else None
    except jwks.JwksRefused:
        keys = None
    if keys_are_pasted(issuer):
        return _Entry(version=issuer.updated_at, keys=keys, fetched_at=None, attempted_at=None)
    tried = [moment for moment in (issuer.keys_fetched_at, issuer.keys_error_at) if moment is not None]
    return _Entry(
        version=issuer.updated_at,
        keys=keys,
        fetched_at=issuer.keys_fetched_at if keys else None,
        attempted_at=max(tried) if tried else None,
    )


def _seconds_since(moment: datetime | None) -> float | None:
    return None if moment is None else (timezone.now() - moment).total_seconds()


def _due(issuer: TrustedIssuer, entry: _Entry) -> bool:
    age = _seconds_since(entry.fetched_at)
    return entry.keys is None or age is None or age >= issuer.key_cache_seconds


def _stale(fetched_at: datetime | None) -> bool:
    age = _seconds_since(fetched_at)
    return age is None or age > settings.RUNTIME_ISSUER_KEYS_MAX_STALE_SECONDS


def _try_fetch(issuer: TrustedIssuer, entry: _Entry, *, wait: bool) -> None:
    """Fetch unless one was attempted within the cooldown. Without ``wait``, a fetch already
    under way in another thread is left to finish and the keys held are used."""
    if not entry.lock.acquire(blocking=wait):
        return
    try:
        since = _seconds_since(entry.attempted_at)
        if since is not None and since < settings.RUNTIME_KEY_REFETCH_COOLDOWN_SECONDS:
            return
        _fetch(issuer, entry)
    finally:
        entry.lock.release()


# --- Fetching ---------------------------------------------------------------------------------


def _fetch(issuer: TrustedIssuer, entry: _Entry) -> str:
    """One fetch (the caller holds ``entry.lock``): store the new set and answer "", or record
    and answer why not."""
    at = timezone.now()
    entry.attempted_at = at
    try:
        document, jwks_uri = _download(issuer)
        keys = jwks.parse(document)
    except (_FetchFailed, jwks.JwksRefused) as exc:
        log.warning("Keys of trusted issuer %s (%s) not refreshed: %s", issuer.pk, issuer.issuer, exc)
        trusted_issuer_keys_failed(issuer=issuer, error=str(exc), at=at)
        return str(exc)
    entry.keys, entry.fetched_at = keys, at
    trusted_issuer_keys_fetched(issuer=issuer, document={"keys": document["keys"]}, at=at, jwks_uri=jwks_uri)
    return ""


def _download(issuer: TrustedIssuer) -> tuple[dict[str, Any], str | None]:
    """The JWKS document and, for OpenID Connect, the ``jwks_uri`` its discovery named."""
    if issuer.kind != IssuerKind.OIDC:
        return _get_json(issuer.jwks_uri, "The bundle URL"), None
    discovery = _get_json(discovery_url_of(issuer), "The discovery document")
    named = discovery.get("issuer")
    if named != issuer.issuer:
        raise _FetchFailed(f"The discovery document names the issuer {str(named)[:300]!r}, not {issuer.issuer!r}.")
    jwks_uri = discovery.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise _FetchFailed("The discovery document names no jwks_uri.")
    return _get_json(jwks_uri, "The jwks_uri"), jwks_uri


def _get_json(url: str, what: str) -> dict[str, Any]:
    try:
        response = outbound.get(url, headers={"Accept": "application/json"}, require_https=True)
    except outbound.OutboundError as exc:
        raise _FetchFailed(f"{what}: {exc}.") from None
    if response.is_redirect:
        raise _FetchFailed(f"{what} answered a redirect (HTTP {response.status}), which is not followed.")
    if not response.ok:
        raise _FetchFailed(f"{what} answered HTTP {response.status}.")
    try:
        document = response.json()
    except (ValueError, RecursionError):  # RecursionError: arrays or objects nested too deep
        raise _FetchFailed(f"{what} did not answer JSON.") from None
    if not isinstance(document, dict):
        raise _FetchFailed(f"{what} did not answer a JSON object.")
    return document
