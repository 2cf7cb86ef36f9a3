"""The portal's access tokens: RFC 9068 JWTs (``typ: at+jwt``) signed with the portal's current
key for the algorithm (ES256 by default, RS256 for resource servers that need it).

``mint`` signs claims it is given; deciding them is the token exchange's job. It reads the key
from the process cache (``runtime.keys.signing_key``), so the hot path runs no query.
``verify`` checks a token the portal itself issued: header type, a published key, the algorithm
of that key (never the token's word for it), the issuer and the time claims.
"""

from __future__ import annotations

from typing import Any

import jwt
from django.conf import settings

from runtime import keys

TOKEN_TYPE = "at+jwt"
# RFC 9068 section 4: resource servers accept the media-type form as well.
ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# Every access token carries these (RFC 9068 section 2.2).
REQUIRED_CLAIMS = frozenset({"iss", "exp", "aud", "sub", "client_id", "iat", "jti"})


class InvalidToken(Exception):
    """Not a valid, unexpired access token issued by this portal; the message says why."""


def mint(claims: dict[str, Any], *, algorithm: str | None = None) -> str:
    """Sign ``claims`` as an access token with the current key for ``algorithm`` (default
    ``settings.RUNTIME_SIGNING_ALGORITHM``). Creates the first keys when none exist yet; raises
    ``keys.SigningKeyUnavailable`` when the current key cannot be decrypted."""
    missing = REQUIRED_CLAIMS.difference(claims)
    if missing:
        raise ValueError(f"An access token needs the claims {', '.join(sorted(missing))}.")
    key = keys.signing_key(algorithm or settings.RUNTIME_SIGNING_ALGORITHM)
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": TOKEN_TYPE})


def verify(token: str) -> dict[str, Any]:
    """The claims of ``token`` if the portal issued it and it has not expired; ``InvalidToken``
    otherwise. Revocation and the live state of the integration are introspection's business."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken("The token is not a well-formed JWT.") from exc
    if str(header.get("typ", "")).lower() not in ACCEPTED_TYPES:
        raise InvalidToken("The token is not an access token (typ must be at+jwt).")
    kid = header.get("kid")
    published = keys.verification_key(kid) if isinstance(kid, str) else None
    if published is None:
        raise InvalidToken("The token is not signed by a key the portal publishes.")
    if header.get("alg") != published.algorithm:
        raise InvalidToken("The token's algorithm does not match its key.")
    try:
        return jwt.decode(
            token,
            published.public_key,
            algorithms=[published.algorithm],
            issuer=settings.RUNTIME_ISSUER,
            options={"require": ["iss", "exp", "iat", "sub", "jti"], "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"The token is not valid: {exc}.") from exc
