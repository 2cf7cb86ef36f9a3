"""The portal's access tokens: minted as RFC 9068 JWTs with the current key, verified only
against published keys, with the key's algorithm (never the token's word)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from django.conf import settings

from runtime import keys, tokens
from runtime.models import KeyState, SigningKey


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": settings.RUNTIME_ISSUER,
        "aud": "urn:ai-governance:system:crm",
        "sub": "integration:1",
        "client_id": "integration:1",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "scope": "crm:read",
    }
    claims.update(overrides)
    return claims


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_first_mint_creates_a_current_and_a_next_key_and_signs_es256_with_at_jwt(db: Any) -> None:
    token = tokens.mint(_claims())
    header = _segment(token, 0)
    current = SigningKey.objects.get(algorithm="ES256", state=KeyState.CURRENT)
    assert header == {"alg": "ES256", "kid": current.kid, "typ": "at+jwt"}
    assert SigningKey.objects.filter(algorithm="ES256", state=KeyState.NEXT).count() == 1
    assert tokens.verify(token)["sub"] == "integration:1"


def test_rs256_is_available_per_call_with_its_own_keys(db: Any) -> None:
    token = tokens.mint(_claims(), algorithm="RS256")
    header = _segment(token, 0)
    assert header["alg"] == "RS256"
    row = SigningKey.objects.get(kid=header["kid"])
    assert row.algorithm == "RS256" and row.public_jwk["kty"] == "RSA"
    assert tokens.verify(token)["jti"]


def test_mint_refuses_claims_missing_a_required_one(db: Any) -> None:
    claims = _claims()
    del claims["client_id"]
    with pytest.raises(ValueError, match="client_id"):
        tokens.mint(claims)


def test_mint_uses_no_query_once_the_key_is_cached(db: Any, django_assert_num_queries: Any) -> None:
    tokens.mint(_claims())
    tokens.mint(_claims())  # the first mint created the key; this one caches it
    with django_assert_num_queries(0):
        tokens.mint(_claims())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # Times are offsets from the moment the test runs (not from collection, which can be
        # many minutes earlier in a long run).
        ({"exp": -10}, "expired"),
        ({"iss": "https://elsewhere.example"}, "issuer"),
        ({"nbf": 600}, "not yet valid"),
    ],
)
def test_verify_refuses_expired_foreign_or_premature_tokens(db: Any, overrides: dict[str, Any], message: str) -> None:
    now = int(time.time())
    claims = {name: now + value if name in ("exp", "nbf") else value for name, value in overrides.items()}
    token = tokens.mint(_claims(**claims))
    with pytest.raises(tokens.InvalidToken, match=message):
        tokens.verify(token)


def test_verify_refuses_a_token_without_at_jwt_type(db: Any) -> None:
    tokens.mint(_claims())
    key = keys.signing_key("ES256")
    token = jwt.encode(_claims(), key.private_key, algorithm="ES256", headers={"kid": key.kid})
    with pytest.raises(tokens.InvalidToken, match="typ"):
        tokens.verify(token)


def test_verify_refuses_a_key_the_portal_does_not_publish(db: Any) -> None:
    tokens.mint(_claims())
    from cryptography.hazmat.primitives.asymmetric import ec

    stranger = ec.generate_private_key(ec.SECP256R1())
    kid = keys.signing_key("ES256").kid
    forged = jwt.encode(_claims(), stranger, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})
    with pytest.raises(tokens.InvalidToken, match="Signature"):
        tokens.verify(forged)
    unknown = jwt.encode(_claims(), stranger, algorithm="ES256", headers={"kid": "nope", "typ": "at+jwt"})
    with pytest.raises(tokens.InvalidToken, match="publishes"):
        tokens.verify(unknown)


def test_verify_refuses_hmac_signed_with_the_public_key(db: Any) -> None:
    """Key confusion: the algorithm comes from the key, not from the token."""
    tokens.mint(_claims(), algorithm="RS256")
    row = SigningKey.objects.get(algorithm="RS256", state=KeyState.CURRENT)
    body = ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
        for part in ({"alg": "HS256", "kid": row.kid, "typ": "at+jwt"}, _claims())
    )
    import hashlib
    import hmac

    secret = json.dumps(row.public_jwk).encode()
    signature = base64.urlsafe_b64encode(hmac.new(secret, body.encode(), hashlib.sha256).digest()).rstrip(b"=")
    with pytest.raises(tokens.InvalidToken, match="algorithm"):
        tokens.verify(f"{body}.{signature.decode()}")


def test_verify_refuses_garbage(db: Any) -> None:
    with pytest.raises(tokens.InvalidToken, match="well-formed"):
        tokens.verify("not-a-jwt")
