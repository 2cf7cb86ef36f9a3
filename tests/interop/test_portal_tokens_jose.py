"""The portal's access tokens checked by verifiers that share none of its code: Node's ``jose``
(``createRemoteJWKSet`` on the published JWKS, ``jwtVerify`` with the issuer, the audience,
``typ: at+jwt`` and the algorithms the published keys name) and the Python resource-server
example (PyJWT), both against a live portal. They accept what the exchange issues, before and
after a key rotation, and refuse the same drifted tokens: no or another ``typ``, another ``iss``
or ``aud``, a ``kid`` the JWKS does not hold, a signature by a key the portal never published."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from django.conf import settings

from governance.models import User
from governance.roles import Role
from inventory import issuer_keys
from runtime import keys
from tests.interop.verifiers import portal as live
from tests.interop.verifiers.node import NodeScript
from tests.runtime.access_token_support import api_key
from tests.runtime.exchange_support import CRM_AUDIENCE, World, build_world
from tests.runtime.issuer_support import TestIssuer


@pytest.fixture
def portal(transactional_db: None, live_server: Any, settings: Any) -> str:
    return live.configure(settings, str(live_server.url))


@pytest.fixture
def world(portal: str, make_user: Callable[..., User]) -> Iterator[World]:
    """An integration bound to a workload identity (keys the test made, pasted), holding
    ``crm:read`` and ``crm:write`` on the CRM."""
    issuer_keys.forget()
    workload_issuer = TestIssuer("ES256")
    try:
        yield build_world(workload_issuer, make_user("olivia", Role.BUSINESS_USER))
    finally:
        workload_issuer.stop()
        issuer_keys.forget()


def _jose(portal: str) -> NodeScript:
    """A long-running jose verifier. Its first line says it read the metadata and the keys, and
    which algorithms it allows: those the published keys name (each key names its ``alg`` and
    ``use: sig``, and the metadata names each algorithm) — the portal's two."""
    verifier = NodeScript("jose_verify.mjs", portal, modules=("jose",))
    started = verifier.read()
    assert (started["ready"], started.get("algorithms")) == (True, ["ES256", "RS256"]), started
    return verifier


def _verify(verifier: NodeScript, token: str, **expected: str) -> dict[str, Any]:
    request = {"token": token, "issuer": settings.RUNTIME_ISSUER, "audience": CRM_AUDIENCE, **expected}
    return verifier.ask(**request)


def _pyjwt_resource_server(portal: str, make_user: Callable[..., User]) -> Any:
    example = live.load_example("resource_server")
    return example, example.ResourceServer(
        portal=portal,
        audience=CRM_AUDIENCE,
        introspection_token=api_key(make_user("crm-api", "resource_server")),
        read_scope="crm:read",
        write_scope="crm:write",
    )


def test_jose_and_pyjwt_verify_exchanged_tokens_before_and_after_a_key_rotation(
    portal: str, world: World, make_user: Callable[..., User]
) -> None:
    make_user("ivy", Role.IAM_ADMIN)  # answers for the rotation
    before = live.exchange(portal, world.params())
    with _jose(portal) as verifier:
        first = _verify(verifier, before)
        assert first["ok"] is True, first
        assert first["header"]["typ"] == "at+jwt" and first["header"]["alg"] == "ES256"
        assert first["payload"]["client_id"] == f"integration:{world.integration.pk}"
        assert first["jwksFetches"] == 1

        live.rotate_signing_keys()
        after = live.exchange(portal, world.params())
        assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
        # The key that signs after the rotation was published before it: the verifier's copy of
        # the JWKS already holds it, and the superseded key still verifies its tokens.
        for token in (after, before):
            answer = _verify(verifier, token)
            assert (answer["ok"], answer["jwksFetches"]) == (True, 1), answer

    with _jose(portal) as fresh:
        assert [_verify(fresh, token)["ok"] for token in (before, after)] == [True, True]
    _example, pyjwt_verifier = _pyjwt_resource_server(portal, make_user)
    for token in (before, after):
        claims = pyjwt_verifier.check(f"Bearer {token}", needs_scope="crm:read", high_risk=False)
        assert claims["client_id"] == f"integration:{world.integration.pk}"


def _drifted_tokens() -> dict[str, tuple[str, str]]:
    """Tokens a portal that drifted from the standards would issue, each with the error jose
    names for it: signed with the portal's own key but wrong in one header member or claim, or
    signed with a key the portal does not publish."""
    claims = live.portal_claims(CRM_AUDIENCE)
    published_kid = keys.signing_key("ES256").kid
    return {
        "no typ": (live.signed_by_portal(claims, typ=None), "ERR_JWT_CLAIM_VALIDATION_FAILED"),
        "typ JWT": (live.signed_by_portal(claims, typ="JWT"), "ERR_JWT_CLAIM_VALIDATION_FAILED"),
        "another iss": (
            live.signed_by_portal({**claims, "iss": "https://other-portal.example.com"}),
            "ERR_JWT_CLAIM_VALIDATION_FAILED",
        ),
        "another aud": (
            live.signed_by_portal({**claims, "aud": "https://elsewhere.example.com/api"}),
            "ERR_JWT_CLAIM_VALIDATION_FAILED",
        ),
        "no client_id": (
            live.signed_by_portal({name: value for name, value in claims.items() if name != "client_id"}),
            "ERR_JWT_CLAIM_VALIDATION_FAILED",
        ),
        "expired": (
            live.signed_by_portal({**claims, "iat": claims["iat"] - 900, "exp": claims["iat"] - 120}),
            "ERR_JWT_EXPIRED",
        ),
        "kid not in the JWKS": (
            live.signed_by_stranger(claims, kid="not-a-published-kid"),
            "ERR_JWKS_NO_MATCHING_KEY",
        ),
        "published kid, foreign signature": (
            live.signed_by_stranger(claims, kid=published_kid),
            "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
        ),
        # HMAC keyed with anything: an algorithm no published key names is refused before any key.
        "HS256 over a published kid": (
            jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": published_kid, "typ": "at+jwt"}),
            "ERR_JOSE_ALG_NOT_ALLOWED",
        ),
    }


def test_jose_and_pyjwt_refuse_the_same_drifted_tokens(
    portal: str, world: World, make_user: Callable[..., User]
) -> None:
    """The checks are real: both verifiers refuse each drifted token (signed by the portal's key
    but wrong in one member, or not signed by a published key) while the same claims, sound,
    pass; and jose refuses the token the exchange issued as soon as it expects another issuer,
    audience or type."""
    example, pyjwt_verifier = _pyjwt_resource_server(portal, make_user)
    sound = live.signed_by_portal(live.portal_claims(CRM_AUDIENCE))
    issued = live.exchange(portal, world.params())
    with _jose(portal) as verifier:
        for token in (sound, issued):
            assert _verify(verifier, token)["ok"] is True
            pyjwt_verifier.check(f"Bearer {token}", needs_scope="crm:read", high_risk=False)
        for drift, (token, code) in _drifted_tokens().items():
            answer = _verify(verifier, token)
            assert (answer["ok"], answer["code"]) == (False, code), (drift, answer)
            with pytest.raises(example.Rejected) as refused:
                pyjwt_verifier.check(f"Bearer {token}", needs_scope="crm:read", high_risk=False)
            assert (refused.value.status, refused.value.error) == (401, "invalid_token"), drift
        for expectation in (
            {"issuer": "https://other-portal.example.com"},
            {"audience": "https://elsewhere.example.com/api"},
            {"typ": "JWT"},
        ):
            answer = _verify(verifier, issued, **expectation)
            assert (answer["ok"], answer["code"]) == (False, "ERR_JWT_CLAIM_VALIDATION_FAILED"), expectation
