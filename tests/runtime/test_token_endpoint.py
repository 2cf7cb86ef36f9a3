"""``POST /oauth/token`` over HTTP: form in, RFC 6749 JSON out, never cached, every answer
recorded — end to end against a live issuer whose keys the portal fetches."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from approvals.models import AccessRequest, RequestType
from approvals.services import default_workflows_ensure
from governance.models import User
from runtime import exchange, keys, tokens
from runtime.models import TokenEvent
from tests.runtime.exchange_support import CRM_AUDIENCE, World, build_world
from tests.runtime.exchange_support import _issuer_key_caches as _issuer_key_caches  # noqa: F401 (autouse)
from tests.runtime.issuer_support import TestIssuer

pytestmark = pytest.mark.django_db

URL = "/oauth/token"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def world(test_issuer: TestIssuer, owner: User) -> World:
    """The live issuer as OpenID Connect: the portal fetches discovery and JWKS over HTTP."""
    return build_world(test_issuer, owner, kind="oidc")


def post(client: Client, params: dict[str, str] | str, **extra: Any) -> Any:
    body = params if isinstance(params, str) else urlencode(params)
    return client.post(URL, data=body, content_type=extra.pop("content_type", FORM), **extra)


def assert_no_store(response: Any) -> None:
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"


def test_an_exchange_end_to_end_answers_a_token_never_cached(world: World) -> None:
    response = post(Client(enforce_csrf_checks=True), world.params(scope="crm:read"))

    assert response.status_code == 200, response.content
    assert_no_store(response)
    body = response.json()
    assert set(body) == {"access_token", "issued_token_type", "token_type", "expires_in", "scope"}
    assert body["scope"] == "crm:read" and body["token_type"] == "Bearer"
    claims = tokens.verify(body["access_token"])
    assert claims["aud"] == CRM_AUDIENCE and claims["owner"] == world.owner.username
    assert world.test_issuer.requests["/jwks"] == 1
    assert TokenEvent.objects.get().jti == claims["jti"]


def test_a_refusal_is_a_json_error_and_its_record_is_kept(world: World) -> None:
    response = post(Client(), world.params(scope="crm:admin"))

    assert response.status_code == 400
    assert_no_store(response)
    body = response.json()
    assert body["error"] == "access_denied" and "task" in body["error_description"]
    event = TokenEvent.objects.get()  # the 400 did not roll the record back
    assert (event.outcome, event.error, event.owner) == ("refused", "access_denied", world.owner)


def test_a_jit_elevation_and_its_refusal_are_written_together(world: World, reviewer: User) -> None:
    default_workflows_ensure()
    response = post(Client(), world.params(scope="crm:admin", task="Close duplicate accounts"))

    assert response.status_code == 400 and response.json()["error"] == "access_denied"
    elevation = AccessRequest.objects.get(type=RequestType.JIT_ELEVATION)
    assert f"#{elevation.pk}" in response.json()["error_description"]
    assert f"#{elevation.pk}" in TokenEvent.objects.get().reason


def test_an_elevation_that_fails_unexpectedly_opens_nothing_and_is_a_recorded_refusal(
    world: World, reviewer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    default_workflows_ensure()

    def broken(**_values: Any) -> Any:
        raise RuntimeError("the approvals could not be reached")

    monkeypatch.setattr(exchange, "elevation_open", broken)
    response = post(Client(raise_request_exception=False), world.params(scope="crm:admin", task="Close duplicates"))

    assert response.status_code == 503 and response.json()["error"] == "temporarily_unavailable"
    assert not AccessRequest.objects.filter(type=RequestType.JIT_ELEVATION).exists()
    event = TokenEvent.objects.get()
    assert (event.outcome, event.error) == ("refused", "temporarily_unavailable") and "RuntimeError" in event.reason


def test_get_is_not_allowed(world: World) -> None:
    response = Client().get(URL)
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response.json()["error"] == "invalid_request"
    assert not TokenEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        ('{"grant_type": "x"}', "application/json", FORM),
        ("grant_type=a&grant_type=b", FORM, "more than once"),
    ],
)
def test_a_malformed_request_is_refused_and_recorded(world: World, body: str, content_type: str, text: str) -> None:
    response = post(Client(), body, content_type=content_type)

    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert text in response.json()["error_description"]
    assert TokenEvent.objects.get().error == "invalid_request"


def test_an_oversized_form_is_a_recorded_json_refusal(world: World, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    body = "&".join(f"extra{number}=x" for number in range(10))
    response = post(Client(), body)

    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert "too many parameters" in response.json()["error_description"]
    assert TokenEvent.objects.get().error == "invalid_request"


def test_parameters_in_the_url_are_refused(world: World) -> None:
    response = Client().post(f"{URL}?{urlencode(world.params())}", data="", content_type=FORM)
    assert response.status_code == 400 and "not in the URL" in response.json()["error_description"]


def test_an_unsupported_grant_type_is_refused(world: World) -> None:
    response = post(Client(), {"grant_type": "client_credentials"})
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


def test_unusable_signing_keys_answer_503(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(algorithm: str) -> Any:
        raise keys.SigningKeyUnavailable("the current ES256 key cannot be decrypted")

    monkeypatch.setattr(keys, "signing_key", broken)
    response = post(Client(), world.params())

    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert "decrypted" not in response.json()["error_description"]  # the portal's keys are its own business
    event = TokenEvent.objects.get()
    assert event.outcome == "refused" and "cannot be decrypted" in event.reason


def test_a_signed_in_session_grants_nothing(world: World, outsider: User, web_as: Callable[[User], Client]) -> None:
    """The endpoint is public: only a workload token proves anything, never a portal session."""
    client = web_as(outsider)
    response = post(client, {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "audience": "crm"})

    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert TokenEvent.objects.get().owner is None


def test_anonymous_without_a_workload_token_gets_nothing(world: World) -> None:
    forged = world.test_issuer.sign(world.test_issuer.claims("system:serviceaccount:ai:agent"), algorithm="none")
    response = post(Client(), world.params(forged))
    assert response.status_code == 400 and "never accepted" in response.json()["error_description"]


def test_too_many_requests_from_one_address_are_slowed_down(world: World, settings: Any) -> None:
    settings.RUNTIME_TOKEN_RATE_PER_MINUTE = 2
    client = Client()
    assert post(client, world.params()).status_code == 200
    assert post(client, world.params()).status_code == 200

    response = post(client, world.params())
    assert response.status_code == 429 and response["Retry-After"] == "60"
    assert response.json()["error"] == "slow_down"
    assert TokenEvent.objects.count() == 2


def test_a_token_the_json_parser_cannot_follow_is_a_recorded_refusal(world: World) -> None:
    deep = base64.urlsafe_b64encode(b"[" * 9000).decode().rstrip("=")
    response = post(Client(), world.params(f"{deep}.e30.c2ln"))

    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert TokenEvent.objects.get().error == "invalid_request"


def test_an_unexpected_failure_refuses_records_and_answers_json(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any) -> Any:
        raise TypeError("a claim of a type nobody expected")

    monkeypatch.setattr(exchange, "_decide", broken)
    response = post(Client(raise_request_exception=False), world.params())

    assert response.status_code == 503
    assert_no_store(response)
    assert response.json()["error"] == "temporarily_unavailable"
    assert "access_token" not in response.json()
    event = TokenEvent.objects.get()
    assert (event.outcome, event.error, event.integration) == ("refused", "temporarily_unavailable", world.integration)
    assert "TypeError" in event.reason and event.jti == ""
