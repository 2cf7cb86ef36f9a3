"""Keys of trusted issuers, fetched from a live issuer over HTTP through the outbound client:
cache, the one refetch on an unknown kid, the cooldown, failed refreshes and stale keys."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import jwt
import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from governance.exceptions import NotAllowed
from governance.models import User
from inventory import issuer_keys, services
from inventory.models import TrustedIssuer
from tests.runtime.issuer_support import IssuerKey, TestIssuer

JWKS = "/jwks"
DISCOVERY = "/.well-known/openid-configuration"


def verifies(key: jwt.PyJWK, token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["ES256", "RS256"], audience=settings.RUNTIME_TOKEN_AUDIENCE
    )
    return claims


def test_keys_come_from_discovery_and_verify_the_issuers_tokens(test_issuer: TestIssuer, db: Any) -> None:
    row = test_issuer.trusted_issuer()
    token = test_issuer.token("system:serviceaccount:ai:notes")

    key = issuer_keys.verification_key(row, test_issuer.key.kid)

    assert verifies(key, token)["sub"] == "system:serviceaccount:ai:notes"
    assert test_issuer.requests == {DISCOVERY: 1, JWKS: 1}
    row.refresh_from_db()
    assert row.jwks_uri == test_issuer.jwks_uri
    assert row.keys_fetched_at is not None and row.keys_error == ""
    assert [k["kid"] for k in row.jwks["keys"]] == [test_issuer.key.kid]


def test_keys_are_cached_for_the_issuers_cache_lifespan(test_issuer: TestIssuer, db: Any) -> None:
    row = test_issuer.trusted_issuer(key_cache_seconds=300)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        issuer_keys.verification_key(row, test_issuer.key.kid)
        clock.shift(timedelta(seconds=299))
        issuer_keys.verification_key(row, test_issuer.key.kid)
        assert test_issuer.requests[JWKS] == 1
        clock.shift(timedelta(seconds=2))
        issuer_keys.verification_key(row, test_issuer.key.kid)
    assert test_issuer.requests[JWKS] == 2


def test_unknown_kid_is_refetched_once_then_refused_until_the_cooldown_passes(test_issuer: TestIssuer, db: Any) -> None:
    row = test_issuer.trusted_issuer()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        issuer_keys.verification_key(row, test_issuer.key.kid)
        clock.shift(timedelta(seconds=settings.RUNTIME_KEY_REFETCH_COOLDOWN_SECONDS))
        with pytest.raises(issuer_keys.KeyUnavailable, match="unknown key id"):
            issuer_keys.verification_key(row, "made-up")
        assert test_issuer.requests[JWKS] == 2  # the one refetch
        for _ in range(5):
            with pytest.raises(issuer_keys.KeyUnavailable):
                issuer_keys.verification_key(row, "made-up-too")
        assert test_issuer.requests[JWKS] == 2  # cooldown: no more
        clock.shift(timedelta(seconds=settings.RUNTIME_KEY_REFETCH_COOLDOWN_SECONDS))
        with pytest.raises(issuer_keys.KeyUnavailable):
            issuer_keys.verification_key(row, "made-up")
    assert test_issuer.requests[JWKS] == 3


def test_a_rotation_at_the_issuer_is_picked_up_by_the_refetch(test_issuer: TestIssuer, db: Any) -> None:
    row = test_issuer.trusted_issuer()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        old = test_issuer.key
        issuer_keys.verification_key(row, old.kid)
        clock.shift(timedelta(seconds=settings.RUNTIME_KEY_REFETCH_COOLDOWN_SECONDS))
        new = test_issuer.rotate()
        token = test_issuer.token()
        assert verifies(issuer_keys.verification_key(row, new.kid), token)
        clock.shift(timedelta(seconds=row.key_cache_seconds))
        with pytest.raises(issuer_keys.KeyUnavailable, match="unknown key id"):
            issuer_keys.verification_key(row, old.kid)  # removed at the issuer: gone here too


def test_concurrent_unknown_kids_make_one_fetch(
    test_issuer: TestIssuer, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = test_issuer.trusted_issuer()
    issuer_keys.verification_key(row, test_issuer.key.kid)
    # The threads' own database connections would not see this test's rows: the bookkeeping
    # writes are not what this test is about.
    monkeypatch.setattr(issuer_keys, "trusted_issuer_keys_fetched", lambda **_: None)
    monkeypatch.setattr(issuer_keys, "trusted_issuer_keys_failed", lambda **_: None)
    new = test_issuer.add_key()
    found: list[str] = []
    with time_machine.travel(timezone.now() + timedelta(seconds=60), tick=False):

        def ask() -> None:
            found.append(issuer_keys.verification_key(row, new.kid).key_id or "")

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert found == [new.kid] * 8
    assert test_issuer.requests[JWKS] == 2


def test_a_failed_refresh_keeps_the_keys_and_records_the_error(test_issuer: TestIssuer, db: Any) -> None:
    row = test_issuer.trusted_issuer()
    key = test_issuer.key
    with time_machine.travel(timezone.now(), tick=False) as clock:
        issuer_keys.verification_key(row, key.kid)
        test_issuer.failing = 503
        clock.shift(timedelta(seconds=row.key_cache_seconds + 1))
        assert issuer_keys.verification_key(row, key.kid).key_id == key.kid
    row.refresh_from_db()
    assert row.keys_error == "The discovery document answered HTTP 503."
    assert row.keys_error_at is not None
    assert [k["kid"] for k in row.jwks["keys"]] == [key.kid]


def test_keys_not_refreshed_past_the_stale_limit_are_not_trusted(
    test_issuer: TestIssuer, db: Any, settings: Any
) -> None:
    settings.RUNTIME_ISSUER_KEYS_MAX_STALE_SECONDS = 3600
    row = test_issuer.trusted_issuer()
    key = test_issuer.key
    with time_machine.travel(timezone.now(), tick=False) as clock:
        issuer_keys.verification_key(row, key.kid)
        test_issuer.failing = 500
        clock.shift(timedelta(seconds=3000))
        assert issuer_keys.verification_key(row, key.kid)
        clock.shift(timedelta(seconds=601))
        with pytest.raises(issuer_keys.KeyUnavailable, match="too long"):
            issuer_keys.verification_key(row, key.kid)
        test_issuer.failing = None
        clock.shift(timedelta(seconds=settings.RUNTIME_KEY_REFETCH_COOLDOWN_SECONDS))
        assert issuer_keys.verification_key(row, key.kid)  # the issuer is back


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("private", "private key material"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "shared"}]}, "symmetric key"),
        ({"keys": []}, "no usable public signing key"),
        ({"not": "a jwks"}, "Not a JWKS"),
    ],
)
def test_a_jwks_with_secret_material_or_no_usable_key_is_refused(
    test_issuer: TestIssuer, db: Any, document: Any, message: str
) -> None:
    row = test_issuer.trusted_issuer()
    test_issuer.serve_document({"keys": [test_issuer.key.private_jwk()]} if document == "private" else document)

    issuer_keys.refresh(row)

    row.refresh_from_db()
    assert message in row.keys_error
    assert row.jwks == {}
    with pytest.raises(issuer_keys.KeyUnavailable, match="no keys"):
        issuer_keys.verification_key(row, test_issuer.key.kid)


def test_a_discovery_document_naming_another_issuer_is_not_believed(test_issuer: TestIssuer, db: Any) -> None:
    row = test_issuer.trusted_issuer(issuer=test_issuer.issuer + "/other", discovery_url=test_issuer.discovery_url)

    with pytest.raises(issuer_keys.KeyUnavailable):
        issuer_keys.verification_key(row, test_issuer.key.kid)

    row.refresh_from_db()
    assert "names the issuer" in row.keys_error
    assert test_issuer.requests[JWKS] == 0


def test_a_host_not_allowed_by_the_outbound_policy_is_not_fetched(
    test_issuer: TestIssuer, db: Any, settings: Any
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    row = test_issuer.trusted_issuer()

    with pytest.raises(issuer_keys.KeyUnavailable):
        issuer_keys.verification_key(row, test_issuer.key.kid)

    row.refresh_from_db()
    assert row.keys_error == "The discovery document: refused by outbound policy."
    assert sum(test_issuer.requests.values()) == 0


def test_a_spiffe_bundle_url_is_read_as_a_jwks(make_test_issuer: Any, db: Any) -> None:
    issuer: TestIssuer = make_test_issuer("RS256")
    row = issuer.trusted_issuer("spiffe")
    token = issuer.token(issuer.spiffe_id())

    key = issuer_keys.verification_key(row, issuer.key.kid)

    assert verifies(key, token)["sub"] == "spiffe://example.org/ns/ai/sa/agent"
    assert issuer.requests == {"/bundle": 1}


def test_pasted_keys_are_used_without_any_fetch_and_never_go_stale(test_issuer: TestIssuer, db: Any) -> None:
    row = test_issuer.trusted_issuer("static_jwks")
    with time_machine.travel(timezone.now() + timedelta(days=400), tick=False):
        assert issuer_keys.verification_key(row, test_issuer.key.kid)
        assert issuer_keys.verification_key(row, None)  # one key: no kid needed
    assert sum(test_issuer.requests.values()) == 0


def test_an_edit_of_the_issuer_drops_the_cached_keys(test_issuer: TestIssuer, iam_admin: User) -> None:
    row = test_issuer.trusted_issuer()
    issuer_keys.verification_key(row, test_issuer.key.kid)
    other = IssuerKey.generate()

    row = services.trusted_issuer_update(
        actor=iam_admin, issuer=row, values={"discovery_url": test_issuer.base_url + "/elsewhere"}
    )

    assert row.jwks == {} and row.keys_fetched_at is None
    with pytest.raises(issuer_keys.KeyUnavailable):
        issuer_keys.verification_key(row, test_issuer.key.kid)  # the new source answers 404
    row = services.trusted_issuer_set_active(actor=iam_admin, issuer=row, active=False)
    with pytest.raises(issuer_keys.KeyUnavailable, match="not active"):
        issuer_keys.verification_key(row, other.kid)


def test_only_iam_admins_ask_for_a_refresh(test_issuer: TestIssuer, reviewer: User, iam_admin: User) -> None:
    row: TrustedIssuer = test_issuer.trusted_issuer()
    with pytest.raises(NotAllowed):
        issuer_keys.refresh_asked(actor=reviewer, issuer=row)
    assert sum(test_issuer.requests.values()) == 0
    issuer_keys.refresh_asked(actor=iam_admin, issuer=row)
    assert test_issuer.requests[JWKS] == 1


@pytest.mark.parametrize(
    ("path", "status", "body", "headers", "message"),
    [
        (JWKS, 200, b"<html>keys</html>", {"Content-Type": "text/html"}, "The jwks_uri did not answer JSON."),
        (JWKS, 200, b"\xff\xfe{", {}, "The jwks_uri did not answer JSON."),
        (JWKS, 200, b"[" * 200_000, {}, "The jwks_uri did not answer JSON."),
        (JWKS, 200, b'["keys"]', {}, "The jwks_uri did not answer a JSON object."),
        (JWKS, 200, b" " * (2 * 1024 * 1024), {}, "The jwks_uri: response too large."),
        (JWKS, 302, b"", {"Location": "http://169.254.169.254/keys"}, "answered a redirect (HTTP 302)"),
        (DISCOVERY, 301, b"", {"Location": "/elsewhere"}, "The discovery document answered a redirect"),
        (DISCOVERY, 200, b"{" * 100, {}, "The discovery document did not answer JSON."),
    ],
    ids=["html", "not-utf8", "nested-too-deep", "a-list", "too-large", "jwks-redirect", "discovery-redirect", "cut"],
)
def test_a_bad_answer_is_recorded_and_no_key_is_trusted(
    test_issuer: TestIssuer, db: Any, path: str, status: int, body: bytes, headers: dict[str, str], message: str
) -> None:
    row = test_issuer.trusted_issuer()
    test_issuer.serve_raw(path, status, body, headers)

    with pytest.raises(issuer_keys.KeyUnavailable, match="no keys"):
        issuer_keys.verification_key(row, test_issuer.key.kid)

    row.refresh_from_db()
    assert message in row.keys_error
    assert row.jwks == {} and row.keys_fetched_at is None
    assert "/elsewhere" not in test_issuer.requests and "/keys" not in test_issuer.requests


def test_a_key_with_a_malformed_member_is_left_out_not_fatal(test_issuer: TestIssuer, db: Any) -> None:
    row = test_issuer.trusted_issuer()
    odd = {**test_issuer.add_key().public_jwk(), "alg": ["ES256"], "kid": "odd"}
    test_issuer.serve_document({"keys": [odd, test_issuer.keys[0].public_jwk()]})

    key = issuer_keys.verification_key(row, test_issuer.keys[0].kid)

    assert key.key_id == test_issuer.keys[0].kid
    with pytest.raises(issuer_keys.KeyUnavailable, match="unknown key id"):
        issuer_keys.verification_key(row, "odd")


def test_a_fetch_for_a_configuration_changed_meanwhile_is_not_stored(test_issuer: TestIssuer, iam_admin: User) -> None:
    row = test_issuer.trusted_issuer()
    in_flight = TrustedIssuer.objects.get(pk=row.pk)  # what a fetch started before the edit holds
    changed = services.trusted_issuer_update(
        actor=iam_admin, issuer=row, values={"discovery_url": test_issuer.base_url + "/elsewhere"}
    )

    issuer_keys.refresh(in_flight)  # the old source answers with its keys

    changed.refresh_from_db()
    assert changed.jwks == {} and changed.keys_fetched_at is None and changed.jwks_uri == ""
    issuer_keys.forget()  # another process, reading the row
    with pytest.raises(issuer_keys.KeyUnavailable):
        issuer_keys.verification_key(changed, test_issuer.key.kid)  # the new source answers 404
