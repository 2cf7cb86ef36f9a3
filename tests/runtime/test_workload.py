"""Verifying workload tokens: what the portal believes about an integration's identity, and the
forged, stale or misdirected tokens it refuses — against a live issuer serving its keys."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from governance.models import User
from inventory.models import TrustedIssuer
from runtime.errors import ExchangeRefused
from runtime.workload import claim_at, verify_issuer_token, verify_workload_token
from tests.runtime.exchange_support import NAMESPACE_CLAIM, SUBJECT, World, bind, build_world, make_integration
from tests.runtime.exchange_support import _issuer_key_caches as _issuer_key_caches  # noqa: F401 (autouse)
from tests.runtime.issuer_support import IssuerKey, TestIssuer

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(test_issuer: TestIssuer, owner: User) -> World:
    return build_world(test_issuer, owner)


@pytest.fixture
def live_world(test_issuer: TestIssuer, owner: User) -> World:
    """The issuer as OpenID Connect: keys fetched over HTTP through discovery."""
    return build_world(test_issuer, owner, kind="oidc")


def refused(token: str) -> str:
    with pytest.raises(ExchangeRefused) as caught:
        verify_workload_token(token)
    assert caught.value.error == "invalid_request"
    return caught.value.description


def test_a_bound_identity_is_verified_to_its_integration(world: World) -> None:
    verified = verify_workload_token(world.workload_token())

    assert verified.integration == world.integration
    assert verified.binding.integration_id == world.integration.pk
    assert (verified.issuer, verified.subject) == (world.issuer, SUBJECT)
    assert verified.expires_at > timezone.now()


def test_keys_are_fetched_through_discovery_from_the_live_issuer(live_world: World) -> None:
    verified = verify_workload_token(live_world.workload_token())

    assert verified.integration == live_world.integration
    assert live_world.test_issuer.requests["/.well-known/openid-configuration"] == 1
    assert live_world.test_issuer.requests["/jwks"] == 1


def test_an_expired_token_is_refused(world: World) -> None:
    token = world.workload_token()
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert "expired" in refused(token)


def test_clock_skew_is_forgiven_up_to_the_issuers_leeway(world: World) -> None:
    token = world.workload_token()
    with time_machine.travel(timezone.now() + timedelta(seconds=300 + 20)):
        assert verify_workload_token(token).integration == world.integration


def test_a_token_not_valid_yet_is_refused(world: World) -> None:
    now = int(time.time())
    token = world.test_issuer.sign(world.test_issuer.claims(SUBJECT, nbf=now + 600, exp=now + 900, **NAMESPACE_CLAIM))
    assert "not valid yet" in refused(token)


def test_a_token_for_another_audience_is_refused(world: World) -> None:
    assert "not meant for the portal" in refused(world.workload_token(aud="https://elsewhere.example.com"))


def test_a_token_without_audience_is_refused(world: World) -> None:
    claims = world.test_issuer.claims(SUBJECT, **NAMESPACE_CLAIM)
    del claims["aud"]
    assert "aud" in refused(world.test_issuer.sign(claims))


def test_an_unknown_issuer_is_refused(world: World) -> None:
    assert "not a trusted issuer" in refused(world.workload_token(iss="https://evil.example.com"))


def test_a_deactivated_issuer_is_refused_at_once(world: World) -> None:
    world.issuer.is_active = False
    world.issuer.save(update_fields=["is_active"])
    assert "deactivated" in refused(world.workload_token())


def test_alg_none_is_refused(world: World) -> None:
    token = world.test_issuer.sign(world.test_issuer.claims(SUBJECT, **NAMESPACE_CLAIM), algorithm="none")
    assert "never accepted" in refused(token)


def test_hs256_signed_with_the_issuers_public_key_is_refused(world: World) -> None:
    """Key confusion: an HMAC over the token keyed with the public key's PEM."""
    token = world.test_issuer.sign(world.test_issuer.claims(SUBJECT, **NAMESPACE_CLAIM), algorithm="HS256")
    assert "HS256" in refused(token)


def test_an_algorithm_off_the_issuers_list_is_refused(make_test_issuer: Callable[..., TestIssuer], owner: User) -> None:
    issuer = make_test_issuer("ES512")
    world = build_world(issuer, owner)
    world.issuer.allowed_algorithms = ["ES256"]
    world.issuer.save(update_fields=["allowed_algorithms"])
    assert "not allowed to use" in refused(world.workload_token())


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk"])
def test_a_token_naming_its_own_key_is_refused_and_the_key_never_fetched(
    world: World, make_test_issuer: Callable[..., TestIssuer], header: str
) -> None:
    attacker = make_test_issuer()
    values: dict[str, Any] = {
        "jku": attacker.jwks_uri,
        "x5u": f"{attacker.base_url}/cert.pem",
        "jwk": attacker.key.public_jwk(),
    }
    token = attacker.sign(
        world.test_issuer.claims(SUBJECT, **NAMESPACE_CLAIM), headers={header: values[header]}, key=attacker.key
    )

    assert "names its own key source" in refused(token)
    assert sum(attacker.requests.values()) == 0


def test_an_unknown_kid_is_refetched_once_then_refused(live_world: World) -> None:
    live_world.test_issuer.requests.clear()
    assert verify_workload_token(live_world.workload_token()).integration == live_world.integration
    stranger = IssuerKey.generate("ES256")
    token = live_world.test_issuer.sign(live_world.test_issuer.claims(SUBJECT, **NAMESPACE_CLAIM), key=stranger)

    assert "unknown key id" in refused(token)
    assert live_world.test_issuer.requests["/jwks"] == 1  # fetched a moment ago: the cooldown holds
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        assert "unknown key id" in refused(token)
        assert live_world.test_issuer.requests["/jwks"] == 2  # one refetch
        assert "unknown key id" in refused(token)
        assert live_world.test_issuer.requests["/jwks"] == 2  # and no more within the cooldown


def test_a_rotated_key_is_found_by_the_refetch(live_world: World) -> None:
    assert verify_workload_token(live_world.workload_token()).integration == live_world.integration
    live_world.test_issuer.rotate()
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        assert verify_workload_token(live_world.workload_token()).integration == live_world.integration


def test_a_signature_by_another_key_with_the_right_kid_is_refused(world: World) -> None:
    forger = IssuerKey.generate("ES256")
    token = world.test_issuer.sign(
        world.test_issuer.claims(SUBJECT, **NAMESPACE_CLAIM), key=forger, headers={"kid": world.test_issuer.key.kid}
    )
    assert "signature" in refused(token)


def test_a_token_older_than_the_issuers_maximum_age_is_refused(world: World) -> None:
    now = int(time.time())
    token = world.test_issuer.sign(world.test_issuer.claims(SUBJECT, iat=now - 7200, exp=now + 300, **NAMESPACE_CLAIM))
    assert "accepted for 3600 seconds" in refused(token)


def test_a_token_without_iat_is_refused(world: World) -> None:
    claims = world.test_issuer.claims(SUBJECT, **NAMESPACE_CLAIM)
    del claims["iat"]
    assert "iat" in refused(world.test_issuer.sign(claims))


def test_a_claim_binding_mismatch_is_refused(world: World) -> None:
    elsewhere: dict[str, Any] = {"kubernetes.io": {"namespace": "default"}}
    token = world.workload_token(**elsewhere)
    assert "kubernetes.io.namespace" in refused(token)


def test_an_unbound_subject_is_refused(world: World) -> None:
    assert "is not bound to any integration" in refused(world.workload_token("system:serviceaccount:ai:other"))


def test_an_identity_matching_two_bindings_is_refused(world: World, owner: User) -> None:
    bind(make_integration(owner, "Twin"), world.issuer, SUBJECT, claims={})
    assert "matches 2 integrations" in refused(world.workload_token())


def test_claim_paths_find_names_that_hold_dots() -> None:
    claims = {"kubernetes.io": {"namespace": "ai", "pod": {"name": "p-1"}}, "repository_id": "42"}

    assert claim_at(claims, "kubernetes.io.namespace") == "ai"
    assert claim_at(claims, "kubernetes.io.pod.name") == "p-1"
    assert claim_at(claims, "repository_id") == "42"
    assert claim_at(claims, "kubernetes.io.missing") is not None  # the private "absent" sentinel
    assert claim_at(claims, "kubernetes.io.missing") != "ai"


def test_a_numeric_claim_matches_its_text_in_a_binding(world: World) -> None:
    binding = world.integration.workload_binding
    binding.required_claims = {"repository_id": "123456"}
    binding.save(update_fields=["required_claims"])

    assert verify_workload_token(world.workload_token(repository_id=123456)).integration == world.integration
    assert "repository_id" in refused(world.workload_token(repository_id=654321))


# --- SPIFFE JWT-SVIDs ---------------------------------------------------------------------------


@pytest.fixture
def spiffe_world(test_issuer: TestIssuer, owner: User) -> World:
    issuer = test_issuer.trusted_issuer(kind="spiffe")
    integration = make_integration(owner, "Mesh agent")
    bind(integration, issuer, test_issuer.spiffe_id(), claims={})
    return World(test_issuer, issuer, owner, None, {}, integration, {})  # type: ignore[arg-type]


def svid_claims(issuer: TestIssuer, **extra: Any) -> dict[str, Any]:
    claims = issuer.claims(issuer.spiffe_id(), **extra)
    claims.pop("iss")
    claims.pop("nbf")
    return claims


def test_a_jwt_svid_is_verified_with_its_trust_domains_bundle(spiffe_world: World) -> None:
    issuer = spiffe_world.test_issuer
    verified = verify_workload_token(issuer.sign(svid_claims(issuer)))

    assert verified.integration == spiffe_world.integration
    assert issuer.requests["/bundle"] == 1


def test_a_jwt_svid_with_its_trust_domain_as_issuer_is_verified(spiffe_world: World) -> None:
    issuer = spiffe_world.test_issuer
    token = issuer.sign(svid_claims(issuer, iss=issuer.spiffe_issuer))
    assert verify_workload_token(token).integration == spiffe_world.integration


def test_a_jwt_svid_without_audience_is_refused(spiffe_world: World) -> None:
    issuer = spiffe_world.test_issuer
    claims = svid_claims(issuer)
    del claims["aud"]
    assert "aud" in refused(issuer.sign(claims))


def test_a_jwt_svid_with_another_typ_is_refused(spiffe_world: World) -> None:
    issuer = spiffe_world.test_issuer
    assert "JWT or JOSE" in refused(issuer.sign(svid_claims(issuer), headers={"typ": "at+jwt"}))


def test_an_eddsa_jwt_svid_is_refused(make_test_issuer: Callable[..., TestIssuer], owner: User) -> None:
    issuer = make_test_issuer("EdDSA")
    row = issuer.trusted_issuer(kind="spiffe")
    assert "EdDSA" in row.allowed_algorithms  # even allowed by the row, SPIFFE forbids it
    bind(make_integration(owner, "Mesh agent"), row, issuer.spiffe_id(), claims={})

    assert "JWT-SVIDs use RS, ES or PS" in refused(issuer.sign(svid_claims(issuer)))


# --- Odd shapes and types: refused, never an error ---------------------------------------------------


def test_a_token_nested_deeper_than_the_json_parser_goes_is_refused(world: World) -> None:
    deep = base64.urlsafe_b64encode(b"[" * 9000).decode().rstrip("=")
    assert "not a well-formed JWT" in refused(f"{deep}.e30.c2ln")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("exp", "4102444800"),  # text, which PyJWT would take
        ("exp", 10**20),  # beyond any date
        ("exp", 1e300),
        ("iat", True),
        ("iat", "0"),
        ("nbf", "0"),
        ("nbf", False),
    ],
)
def test_a_time_claim_that_is_not_a_plausible_number_is_refused(world: World, name: str, value: Any) -> None:
    token = world.test_issuer.sign(world.test_issuer.claims(SUBJECT, **{**NAMESPACE_CLAIM, name: value}))
    assert f"{name} claim is not" in refused(token)


# --- The issuer's configuration is never believed stale ---------------------------------------------


def test_an_issuer_reconfigured_by_another_process_applies_to_the_next_token(world: World) -> None:
    assert verify_workload_token(world.workload_token()).integration == world.integration  # the copy is kept
    TrustedIssuer.objects.filter(pk=world.issuer.pk).update(
        allowed_algorithms=["RS256"], updated_at=timezone.now() + timedelta(seconds=1)
    )
    assert "not allowed to use" in refused(world.workload_token())


def test_a_user_tokens_issuer_reconfigured_by_another_process_applies_to_the_next_token(world: World) -> None:
    token = world.workload_token()
    assert verify_issuer_token(token, what="subject token").issuer == world.issuer
    TrustedIssuer.objects.filter(pk=world.issuer.pk).update(
        audience="https://portal.example.com/elsewhere", updated_at=timezone.now() + timedelta(seconds=1)
    )
    with pytest.raises(ExchangeRefused, match="not meant for the portal"):
        verify_issuer_token(token, what="subject token")


def test_a_fresh_copy_still_verifies_after_a_change_elsewhere(world: World) -> None:
    verify_workload_token(world.workload_token())
    TrustedIssuer.objects.filter(pk=world.issuer.pk).update(
        max_token_age_seconds=600, updated_at=timezone.now() + timedelta(seconds=1)
    )
    assert verify_workload_token(world.workload_token()).issuer.max_token_age_seconds == 600
