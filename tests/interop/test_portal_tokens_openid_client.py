"""The portal's authorization-server endpoints used by Node's ``openid-client``, which shares none
of its code, as a resource server uses them: RFC 8414 discovery (the document must name exactly
the issuer it was asked for), RFC 7662 introspection with a resource-server account's API token,
RFC 7009 revocation by the integration itself and by its owner. After a revocation both
openid-client and the Python resource-server example (PyJWT) hear ``active: false``;
metadata naming another issuer than the one asked for is refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from governance.models import User
from governance.roles import Role
from inventory import issuer_keys
from runtime.oauth_endpoints import TOKEN_EXCHANGE_GRANT
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
    issuer_keys.forget()
    workload_issuer = TestIssuer("ES256")
    try:
        yield build_world(workload_issuer, make_user("olivia", Role.BUSINESS_USER))
    finally:
        workload_issuer.stop()
        issuer_keys.forget()


@pytest.fixture
def resource_server_key(make_user: Callable[..., User]) -> str:
    """The API token of an account with the role *Resource server*."""
    return api_key(make_user("crm-api", "resource_server"))


@pytest.fixture
def client() -> Iterator[NodeScript]:
    with NodeScript("openid_client_rs.mjs", modules=("openid-client",)) as script:
        yield script


def _discover(client: NodeScript, portal: str, name: str, credential: str) -> dict[str, Any]:
    answer = client.ask(op="discover", issuer=portal, clientId=name, credential=credential, **{"as": name})
    assert answer["ok"] is True, answer
    metadata: dict[str, Any] = answer["metadata"]
    return metadata


def _introspect(client: NodeScript, name: str, token: str) -> dict[str, Any]:
    answer = client.ask(op="introspect", token=token, **{"as": name})
    assert answer["ok"] is True, answer
    result: dict[str, Any] = answer["answer"]
    return result


def test_openid_client_discovers_introspects_and_revokes_as_a_resource_server(
    portal: str, world: World, resource_server_key: str, client: NodeScript
) -> None:
    metadata = _discover(client, portal, "crm-api", resource_server_key)
    assert metadata["issuer"] == portal
    assert metadata["introspection_endpoint"] == f"{portal}/oauth/introspect"
    assert metadata["revocation_endpoint"] == f"{portal}/oauth/revoke"
    assert metadata["jwks_uri"] == f"{portal}/.well-known/jwks.json"
    assert TOKEN_EXCHANGE_GRANT in metadata["grant_types_supported"]

    token = live.exchange(portal, world.params())
    active = _introspect(client, "crm-api", token)
    assert active["active"] is True
    assert active["client_id"] == f"integration:{world.integration.pk}"
    assert (active["iss"], active["aud"], active["owner"]) == (portal, CRM_AUDIENCE, "olivia")
    assert sorted(active["scope"].split()) == ["crm:read", "crm:write"]

    # Introspection is for resource-server accounts: a refused bearer credential gets RFC 6750's
    # challenge for the scheme it used, another person's valid key a 403.
    _discover(client, portal, "stranger", "gp_not-a-key")
    answer = client.ask(op="introspect", token=token, **{"as": "stranger"})
    assert answer["code"] == "OAUTH_WWW_AUTHENTICATE_CHALLENGE", answer
    assert (answer["status"], answer["scheme"], answer["error"]) == (401, "bearer", "invalid_token"), answer
    _discover(client, portal, "olivia", api_key(world.owner))
    answer = client.ask(op="introspect", token=token, **{"as": "olivia"})
    assert (answer["ok"], answer["status"], answer["error"]) == (False, 403, "insufficient_scope"), answer

    # A resource server may ask about a token, not revoke it.
    refused = client.ask(op="revoke", token=token, **{"as": "crm-api"})
    assert (refused["ok"], refused["status"], refused["error"]) == (False, 403, "unauthorized_client"), refused
    assert _introspect(client, "crm-api", token)["active"] is True

    # The integration itself revokes its token, authenticated by its workload token.
    _discover(client, portal, "agent", world.workload_token())
    assert client.ask(op="revoke", token=token, **{"as": "agent"}) == {"ok": True}
    assert _introspect(client, "crm-api", token) == {"active": False}


def test_openid_client_and_pyjwt_agree_after_an_owner_revokes(
    portal: str, world: World, resource_server_key: str, client: NodeScript, settings: Any
) -> None:
    example = live.load_example("resource_server")
    pyjwt_verifier = example.ResourceServer(
        portal=portal,
        audience=CRM_AUDIENCE,
        introspection_token=resource_server_key,
        read_scope="crm:read",
        write_scope="crm:write",
    )
    token = live.exchange(portal, world.params())
    _discover(client, portal, "crm-api", resource_server_key)
    assert _introspect(client, "crm-api", token)["active"] is True
    pyjwt_verifier.check(f"Bearer {token}", needs_scope="crm:write", high_risk=True)

    _discover(client, portal, "olivia", api_key(world.owner))
    assert client.ask(op="revoke", token=token, **{"as": "olivia"}) == {"ok": True}

    assert _introspect(client, "crm-api", token) == {"active": False}
    with pytest.raises(example.Rejected) as refused:
        pyjwt_verifier.check(f"Bearer {token}", needs_scope="crm:write", high_risk=True)
    assert (refused.value.status, refused.value.error) == (401, "invalid_token")
    # The local check alone still passes: the signature is sound until the token expires.
    pyjwt_verifier.check(f"Bearer {token}", needs_scope="crm:read", high_risk=False)

    # A portal whose metadata drifted from the address it is reached at is not trusted.
    settings.RUNTIME_ISSUER = "https://other-portal.example.com"
    answer = client.ask(
        op="discover", issuer=portal, clientId="crm-api", credential=resource_server_key, **{"as": "rs"}
    )
    assert (answer["ok"], answer["code"]) == (False, "OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED"), answer
    assert "issuer" in answer["message"]
