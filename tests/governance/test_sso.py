"""OpenID Connect single sign-on, end to end and offline.

A test issuer with its own RSA signing key publishes a discovery document and a JWKS; its token
and userinfo endpoints answer through ``responses`` (the HTTP layer is mocked, the backend is the
real social-core ``OpenIdConnectAuth``). The browser side goes through the portal's own URLs:
POST /login/oidc/, then the IdP's redirect back to /complete/oidc/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import override_settings
from jwt.algorithms import RSAAlgorithm
from social_core.backends.open_id_connect import OpenIdConnectAuth

from governance.models import AuditEvent, User
from governance.roles import Pool, Role, role_names
from governance.services import user_deactivate

pytestmark = pytest.mark.django_db

ISSUER = "https://idp.example.test/realms/corp"
CLIENT_ID = "ai-portal"
CLIENT_SECRET = "s3cret-for-tests"
KID = "test-key-1"

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

OIDC_SETTINGS = {
    "OIDC_ENABLED": True,
    "SOCIAL_AUTH_OIDC_OIDC_ENDPOINT": ISSUER,
    "SOCIAL_AUTH_OIDC_KEY": CLIENT_ID,
    "SOCIAL_AUTH_OIDC_SECRET": CLIENT_SECRET,
}


def _clear_backend_caches() -> None:
    OpenIdConnectAuth.get_openid_configuration.invalidate()
    OpenIdConnectAuth.get_jwks_keys_for_uri.invalidate()


@pytest.fixture(autouse=True)
def _oidc(roles: None) -> Iterator[None]:
    _clear_backend_caches()
    with override_settings(**OIDC_SETTINGS):
        yield
    _clear_backend_caches()


class FakeIssuer:
    """A tiny OpenID provider: discovery, JWKS, token and userinfo endpoints over ``responses``."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock
        self.claims: dict[str, Any] = {}
        self.nonce_override: str | None = None
        self.signing_key = _KEY
        jwk = json.loads(RSAAlgorithm.to_jwk(_KEY.public_key()))
        jwk.update({"kid": KID, "alg": "RS256", "use": "sig"})
        mock.get(
            f"{ISSUER}/.well-known/openid-configuration",
            json={
                "issuer": ISSUER,
                "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token",
                "userinfo_endpoint": f"{ISSUER}/userinfo",
                "jwks_uri": f"{ISSUER}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            },
        )
        mock.get(f"{ISSUER}/jwks", json={"keys": [jwk]})
        mock.add_callback(responses.POST, f"{ISSUER}/token", callback=self._token)
        mock.add_callback(responses.GET, f"{ISSUER}/userinfo", callback=self._userinfo)
        self.nonce = ""

    def _token(self, request: Any) -> tuple[int, dict[str, str], str]:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "azp": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce_override if self.nonce_override is not None else self.nonce,
            **self.claims,
        }
        id_token = jwt.encode(payload, self.signing_key, algorithm="RS256", headers={"kid": KID})
        body = {
            "access_token": "at-" + self.claims["sub"],
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def _userinfo(self, request: Any) -> tuple[int, dict[str, str], str]:
        info = {
            k: v
            for k, v in self.claims.items()
            if k in ("sub", "preferred_username", "email", "given_name", "family_name", "name")
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(info)

    def login(self, client: Any, *, sub: str, username: str, groups: list[str] | None, email: str = "") -> Any:
        """Run the whole browser flow; returns the final response (redirects followed)."""
        self.claims = {
            "sub": sub,
            "preferred_username": username,
            "email": email or f"{username}@corp.example",
            "given_name": username.title(),
            "family_name": "Tester",
        }
        if groups is not None:
            self.claims["groups"] = groups
        begin = client.post("/login/oidc/")
        assert begin.status_code == 302, begin
        location = urlparse(begin["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/authorize"
        params = parse_qs(location.query)
        assert params["client_id"] == [CLIENT_ID]
        self.nonce = params["nonce"][0]
        return client.get("/complete/oidc/", {"code": "auth-code", "state": params["state"][0]}, follow=True)


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeIssuer(mock)


def test_login_page_offers_single_sign_on_as_a_post_form(client: Any) -> None:
    page = client.get("/accounts/login/")
    html = page.content.decode()
    assert 'action="/login/oidc/"' in html and 'method="post"' in html
    assert "Sign in with single sign-on" in html


def test_group_claim_lands_the_user_in_the_mapped_roles(client: Any, issuer: FakeIssuer) -> None:
    final = issuer.login(
        client, sub="u-100", username="nadia", groups=["ai-portal-iam-reviewers", "ai-portal-reviewers", "unrelated"]
    )
    assert final.status_code == 200
    assert final.redirect_chain[-1][0] == "/"
    user = User.objects.get(username="nadia")
    assert final.wsgi_request.user == user
    assert role_names(user) == {Role.REVIEWER, Pool.IAM_REVIEWERS}
    assert "Reviewer" in final.content.decode()
    event = AuditEvent.objects.get(action="user.roles_changed", target_id=str(user.pk))
    assert event.after == {"roles": [Pool.IAM_REVIEWERS, Role.REVIEWER]}
    assert "ai-portal-iam-reviewers" in event.reason


def test_roles_are_resynced_on_the_next_login(client: Any, issuer: FakeIssuer) -> None:
    issuer.login(client, sub="u-200", username="victor", groups=["ai-portal-admins"])
    user = User.objects.get(username="victor")
    assert role_names(user) == {Role.IAM_ADMIN}
    client.logout()
    final = issuer.login(client, sub="u-200", username="victor", groups=["ai-portal-auditors"])
    assert final.wsgi_request.user.pk == user.pk
    user = User.objects.get(pk=user.pk)
    assert role_names(user) == {Role.AUDITOR}
    assert User.objects.filter(username__startswith="victor").count() == 1


def test_unknown_user_is_created_with_the_default_role(client: Any, issuer: FakeIssuer) -> None:
    final = issuer.login(client, sub="u-300", username="newcomer", groups=[])
    user = User.objects.get(username="newcomer")
    assert final.wsgi_request.user == user
    assert user.email == "newcomer@corp.example" and user.first_name == "Newcomer"
    assert role_names(user) == {Role.BUSINESS_USER}
    assert not user.has_usable_password()


@override_settings(OIDC_DEFAULT_ROLE="")
def test_unmapped_user_without_default_role_gets_no_role_and_is_told(client: Any, issuer: FakeIssuer) -> None:
    final = issuer.login(client, sub="u-301", username="stranger", groups=["ai-portal-nothing"])
    assert role_names(User.objects.get(username="stranger")) == frozenset()
    assert "no role in the portal yet" in final.content.decode()


def test_unknown_user_is_refused_with_a_clear_message_when_accounts_are_not_created_at_login(
    client: Any, issuer: FakeIssuer
) -> None:
    issuer.login(client, sub="u-350", username="known", groups=["ai-portal-users"])
    client.logout()
    with override_settings(OIDC_CREATE_USERS=False):
        final = issuer.login(client, sub="u-351", username="unknown", groups=["ai-portal-admins"])
        assert final.redirect_chain[-1][0] == "/accounts/login/"
        assert not final.wsgi_request.user.is_authenticated
        assert 'role="alert">There is no portal account for you yet' in final.content.decode()
        assert not User.objects.filter(username="unknown").exists()
        # Someone who already has an account (linked by an earlier login) still gets in.
        again = issuer.login(client, sub="u-350", username="known", groups=["ai-portal-users"])
        assert again.wsgi_request.user.username == "known"


def test_deactivated_portal_user_is_refused_with_a_clear_message(
    client: Any, issuer: FakeIssuer, iam_admin: User
) -> None:
    issuer.login(client, sub="u-400", username="leaver", groups=["ai-portal-users"])
    client.logout()
    leaver = User.objects.get(username="leaver")
    user_deactivate(actor=iam_admin, user=leaver, reason="Left the company")
    roles_before = AuditEvent.objects.filter(action="user.roles_changed").count()

    final = issuer.login(client, sub="u-400", username="leaver", groups=["ai-portal-admins"])

    assert final.redirect_chain[-1][0] == "/accounts/login/"
    assert not final.wsgi_request.user.is_authenticated
    html = final.content.decode()
    assert 'role="alert">This account is deactivated in the portal' in html
    assert "Ask the IAM team to restore it" in html
    # Refused before anything about the account changed: no roles synced from the new claim.
    assert AuditEvent.objects.filter(action="user.roles_changed").count() == roles_before
    assert role_names(User.objects.get(pk=leaver.pk)) == {Role.BUSINESS_USER}


def test_deactivated_local_account_is_not_bypassed_by_a_first_sso_login(
    client: Any, issuer: FakeIssuer, make_user: Any, iam_admin: User
) -> None:
    """The IdP still lists a leaver who never used SSO: no fresh account, the same refusal."""
    leaver = make_user("olga", Role.BUSINESS_USER)
    user_deactivate(actor=iam_admin, user=leaver, reason="Left")
    final = issuer.login(client, sub="u-450", username="olga", groups=["ai-portal-admins"])
    assert not final.wsgi_request.user.is_authenticated
    assert 'role="alert">This account is deactivated in the portal' in final.content.decode()
    assert User.objects.filter(username__startswith="olga").count() == 1


def test_first_sso_login_reaches_the_existing_account_with_the_same_username(
    client: Any, issuer: FakeIssuer, make_user: Any
) -> None:
    carol = make_user("carol", Role.BUSINESS_USER)
    final = issuer.login(client, sub="u-460", username="carol", groups=["ai-portal-reviewers"])
    assert final.wsgi_request.user.pk == carol.pk
    assert User.objects.filter(username__startswith="carol").count() == 1
    assert role_names(User.objects.get(pk=carol.pk)) == {Role.REVIEWER}


def test_service_accounts_cannot_be_reached_through_sso(client: Any, issuer: FakeIssuer, make_user: Any) -> None:
    make_user("servicenow", is_service_account=True)
    final = issuer.login(client, sub="u-470", username="servicenow", groups=["ai-portal-admins"])
    assert not final.wsgi_request.user.is_authenticated
    assert User.objects.filter(username__startswith="servicenow").count() == 1


def test_wrong_nonce_is_refused(client: Any, issuer: FakeIssuer) -> None:
    issuer.nonce_override = "a-nonce-from-another-login"
    final = issuer.login(client, sub="u-500", username="mallory", groups=["ai-portal-admins"])
    assert final.redirect_chain[-1][0] == "/accounts/login/"
    assert not final.wsgi_request.user.is_authenticated
    assert not User.objects.filter(username="mallory").exists()
    assert "could not be matched to the request" in final.content.decode()


def test_id_token_signed_by_another_key_is_refused(client: Any, issuer: FakeIssuer) -> None:
    issuer.signing_key = _OTHER_KEY
    final = issuer.login(client, sub="u-600", username="forger", groups=["ai-portal-admins"])
    assert not final.wsgi_request.user.is_authenticated
    assert not User.objects.filter(username="forger").exists()
    assert "signature could not be verified" in final.content.decode()


def test_replayed_callback_is_refused(client: Any, issuer: FakeIssuer) -> None:
    """The same state and code used twice: the nonce was consumed by the first login."""
    issuer.claims = {"sub": "u-700", "preferred_username": "replay", "email": "r@corp.example", "groups": []}
    begin = client.post("/login/oidc/")
    params = parse_qs(urlparse(begin["Location"]).query)
    issuer.nonce = params["nonce"][0]
    first = client.get("/complete/oidc/", {"code": "c", "state": params["state"][0]}, follow=True)
    assert first.wsgi_request.user.is_authenticated
    other = type(client)()
    second = other.get("/complete/oidc/", {"code": "c", "state": params["state"][0]}, follow=True)
    assert not second.wsgi_request.user.is_authenticated
