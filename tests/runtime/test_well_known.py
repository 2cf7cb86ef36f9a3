"""Discovery: the published key set (previous + current + next, cacheable for one JWKS cache
lifetime) and the RFC 8414 metadata naming every endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine
from django.conf import settings

from governance.models import User
from runtime import keys
from runtime.models import KeyState, SigningKey
from runtime.services.keys import signing_keys_rotate

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_jwks_publishes_current_and_next_keys_of_every_algorithm_without_private_parts(client: Any, db: Any) -> None:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response["Cache-Control"] == f"public, max-age={settings.RUNTIME_JWKS_CACHE_SECONDS}"
    published = response.json()["keys"]
    rows = {row.kid: row for row in SigningKey.objects.all()}
    assert {key["kid"] for key in published} == set(rows)
    assert {(rows[key["kid"]].algorithm, rows[key["kid"]].state) for key in published} == {
        (algorithm, state) for algorithm in keys.SUPPORTED_ALGORITHMS for state in (KeyState.CURRENT, KeyState.NEXT)
    }
    for key in published:
        assert key["kid"] == keys.thumbprint(key) and key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_jwks_keeps_the_previous_key_until_its_removal_time(client: Any, db: Any, iam_admin: User) -> None:
    with time_machine.travel(T0, tick=False):
        client.get("/.well-known/jwks.json")
    old = SigningKey.objects.get(algorithm="ES256", state=KeyState.CURRENT)
    rotated_at = T0 + timedelta(days=settings.RUNTIME_KEY_ROTATION_DAYS)
    with time_machine.travel(rotated_at, tick=False):
        signing_keys_rotate(actor=iam_admin, algorithm="ES256")
        assert old.kid in {key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]}
    old.refresh_from_db()
    assert old.remove_after is not None
    with time_machine.travel(old.remove_after, tick=False):
        assert old.kid not in {key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]}


def test_metadata_names_the_endpoints_and_the_token_exchange_grant(client: Any, db: Any) -> None:
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    metadata = response.json()
    site = settings.SITE_URL
    assert metadata["issuer"] == settings.RUNTIME_ISSUER
    assert metadata["token_endpoint"] == f"{site}/oauth/token"
    assert metadata["jwks_uri"] == f"{site}/.well-known/jwks.json"
    assert metadata["introspection_endpoint"] == f"{site}/oauth/introspect"
    assert metadata["revocation_endpoint"] == f"{site}/oauth/revoke"
    assert metadata["grant_types_supported"] == ["urn:ietf:params:oauth:grant-type:token-exchange"]
    assert "ES256" in metadata["access_token_signing_alg_values_supported"]
    assert metadata["introspection_endpoint_auth_methods_supported"]


def test_discovery_is_public_and_read_only(client: Any, db: Any) -> None:
    assert client.post("/.well-known/jwks.json").status_code == 405
    assert client.post("/.well-known/oauth-authorization-server").status_code == 405
    assert client.get("/.well-known/jwks.json").status_code == 200
