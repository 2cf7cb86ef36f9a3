"""Reading the JSON Web Key Set (RFC 7517) of a workload issuer: fetched from its JWKS URL or
pasted by an IAM admin. Pure functions, no I/O: the services validate pasted sets with them and
``inventory.issuer_keys`` parses what it fetched.

A set is refused as a whole when it holds private or symmetric key material: a published
private key (``d``, RSA primes ...) or a shared secret (``kty: oct``) means anyone who read the
document can sign tokens, so nothing signed "by" that issuer proves anything. Keys that cannot
sign JWTs for us (encryption keys, unknown curves, RSA under 2048 bits) are left out; a set with
no usable key left is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

# JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
# "sig" (RFC 7517) and "jwt-svid" (a SPIFFE bundle's JWT authorities); absent means any use.
SIGNING_USES = (None, "sig", "jwt-svid")
MAX_KEYS = 100
MIN_RSA_BITS = 2048


class JwksRefused(ValueError):
    """The document is not a set of public signing keys the portal may trust; ``str(exc)`` says
    why in words fit for the issuer's page."""


@dataclass(frozen=True)
class KeySet:
    """The usable public keys of a set, in its order."""

    keys: tuple[jwt.PyJWK, ...]

    def find(self, kid: str | None) -> jwt.PyJWK | None:
        """The key named ``kid``; without a ``kid``, the only key of a one-key set."""
        if kid is None:
            return self.keys[0] if len(self.keys) == 1 else None
        return next((key for key in self.keys if key.key_id == kid), None)

    def summary(self) -> list[dict[str, str]]:
        """Key ids and algorithms, for pages and the API."""
        return [{"kid": key.key_id or "", "algorithm": key.algorithm_name} for key in self.keys]


def parse(document: Any) -> KeySet:
    """The usable keys of ``document``; raises ``JwksRefused``."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JwksRefused('Not a JWKS: expected a JSON object with a "keys" list.')
    members = document["keys"]
    if len(members) > MAX_KEYS:
        raise JwksRefused(f"The JWKS holds {len(members)} keys; at most {MAX_KEYS} are read.")
    usable: list[dict[str, Any]] = []
    for member in members:
        if not isinstance(member, Mapping):
            raise JwksRefused("Every entry of a JWKS must be a JSON object (a JWK).")
        _refuse_secret_material(member)
        # An ``alg`` that is not a string names no algorithm: the key is left out (PyJWT would fail
        # on it, and take the whole set down with it).
        if (
            member.get("use") in SIGNING_USES
            and member.get("kty") in ("RSA", "EC", "OKP")
            and isinstance(member.get("alg", ""), str)
        ):
            usable.append(dict(member))
    try:
        keys = jwt.PyJWKSet(usable).keys if usable else []
    except jwt.PyJWKSetError:
        keys = []
    kept = tuple(key for key in keys if _strong_enough(key))
    if not kept:
        raise JwksRefused("The JWKS holds no usable public signing key (RSA ≥ 2048 bits, EC or Ed25519).")
    return KeySet(keys=kept)


def _refuse_secret_material(member: Mapping[str, Any]) -> None:
    named = f" (kid {member['kid']})" if isinstance(member.get("kid"), str) else ""
    found = [name for name in PRIVATE_MEMBERS if name in member]
    if member.get("kty") == "oct":
        raise JwksRefused(f"The JWKS holds a symmetric key{named}: a shared secret must never be published.")
    if found:
        raise JwksRefused(f"The JWKS holds private key material{named} ({', '.join(found)}): publish public keys only.")
    alg = member.get("alg")
    if isinstance(alg, str) and (alg.lower() == "none" or alg.upper().startswith("HS")):
        raise JwksRefused(f"The JWKS names the algorithm {alg}{named}, which is never accepted.")


def _strong_enough(key: jwt.PyJWK) -> bool:
    material = key.key
    return not isinstance(material, rsa.RSAPublicKey) or material.key_size >= MIN_RSA_BITS
