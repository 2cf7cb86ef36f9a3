"""Single sign-on end to end against an independent OpenID provider (panva's oidc-provider, a real
process), in a real browser (Debian's Chromium), with no HTTP mocked anywhere.

The person signs in on the provider's own login and consent pages; the portal uses the
authorization code flow with PKCE (S256), state and nonce, reads the ``groups`` claim (from
userinfo: the provider keeps scope claims out of the ID token, as the core spec's code flow does)
and maps it to roles. The tests also hold the portal to the refusals that matter: a deactivated
person, an ID token signed with a key the provider rotated away, and an issuer other than the
configured one.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.conf import settings
from django.test import override_settings
from social_core.backends.open_id_connect import OpenIdConnectAuth

from governance.models import AuditEvent, User
from governance.roles import Pool, Role, role_names, roles_sync
from governance.services import user_deactivate
from governance.sso import DEACTIVATED_MESSAGE, FOREIGN_ISSUER_MESSAGE
from tests.browser_support import BROWSER_MARKS, chromium
from tests.interop.conftest import IdentityProvider, IdpFactory, account, web_client

pytestmark = BROWSER_MARKS

CLIENT_ID = "ai-governance-portal"
CLIENT_SECRET = secrets.token_urlsafe(24)
SIGNATURE_REFUSED = "The authentication response signature could not be verified."
PORTAL_GROUPS = ["ai-portal-admins", "ai-portal-iam-reviewers", "not-a-portal-group"]


def _clear_backend_caches() -> None:
    # social-core keeps discovery and each JWKS per process: every test starts cold.
    OpenIdConnectAuth.get_openid_configuration.invalidate()
    OpenIdConnectAuth.get_jwks_keys_for_uri.invalidate()


@pytest.fixture
def portal(transactional_db: None, live_server: Any) -> str:
    roles_sync()
    return str(live_server.url)


@pytest.fixture
def idp(idp_factory: IdpFactory, portal: str) -> IdentityProvider:
    return idp_factory(
        clients=[web_client(CLIENT_ID, CLIENT_SECRET, f"{portal}/complete/oidc/")],
        accounts={"nadia": account("nadia", "nadia-password", groups=PORTAL_GROUPS)},
    )


def _portal_sso_settings(issuer: str) -> dict[str, Any]:
    """What OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET set, for a provider started by the
    test (the page's form-action allows the issuer's origin, as settings.py does for OIDC_ISSUER)."""
    parts = urlsplit(issuer)
    policy = {**settings.CONTENT_SECURITY_POLICY}
    directives = {**policy["DIRECTIVES"]}
    directives["form-action"] = [*directives["form-action"], f"{parts.scheme}://{parts.netloc}"]
    policy["DIRECTIVES"] = directives
    return {
        "OIDC_ENABLED": True,
        "SOCIAL_AUTH_OIDC_OIDC_ENDPOINT": issuer,
        "SOCIAL_AUTH_OIDC_KEY": CLIENT_ID,
        "SOCIAL_AUTH_OIDC_SECRET": CLIENT_SECRET,
        "CONTENT_SECURITY_POLICY": policy,
    }


@pytest.fixture
def sso(idp: IdentityProvider) -> Iterator[IdentityProvider]:
    """The portal configured for the provider, the production defaults otherwise (PKCE on)."""
    _clear_backend_caches()
    with override_settings(**_portal_sso_settings(idp.issuer)):
        yield idp
    _clear_backend_caches()


@pytest.fixture
def browser(sso: IdentityProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


class Session:
    """One browser context (its own cookies at the portal and at the provider), recording every
    request it sends, so a test can read the authorization request and the callback."""

    def __init__(self, browser: Any, portal: str, idp: IdentityProvider) -> None:
        self.portal, self.idp = portal, idp
        self.page = browser.new_context().new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))

    def start_sso(self) -> None:
        self.page.goto(f"{self.portal}/accounts/login/")
        # Returns once the redirects end on a page: the provider's, or the portal's.
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Sign in with single sign-on").click()

    def sign_in_at_provider(self, username: str, password: str) -> None:
        """The provider's own login page, then its consent page."""
        # A refusal (the provider's, e.g. PKCE missing, shown by the portal) fails here at once.
        assert "/interaction/" in self.page.url, f"not at the provider: {self.page.url}; alerts: {self.alerts()}"
        assert self.page.get_by_role("heading", level=1).inner_text() == "Sign in to the test identity provider"
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("heading", level=1, name="Allow access").wait_for()
        assert set(self.page.locator("#scopes").inner_text().split()) >= {"openid", "profile", "email", "groups"}
        self.page.get_by_role("button", name="Allow").click()

    def wait_for_portal(self, path: str) -> None:
        """Wait until the flow lands on a portal page (past the callback), then require ``path``:
        a login the portal should have refused fails here at once, not by a timeout."""
        self.page.wait_for_url(self._on_portal_page)
        landed = urlsplit(self.page.url).path
        assert landed == path, f"landed on {landed}, expected {path}; alerts: {self.alerts()}"

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        self.wait_for_portal("/accounts/login/")

    def _on_portal_page(self, url: str) -> bool:
        return url.startswith(self.portal) and not urlsplit(url).path.startswith(("/complete/", "/login/"))

    def alert(self) -> str:
        return str(self.page.get_by_role("alert").inner_text())

    def alerts(self) -> list[str]:
        return [str(text) for text in self.page.get_by_role("alert").all_inner_texts()]

    def last(self, prefix: str) -> dict[str, list[str]]:
        """The query of the last request whose URL starts with ``prefix``."""
        url = [url for url in self.requests if url.startswith(prefix)][-1]
        return parse_qs(urlsplit(url).query)


def test_sso_maps_groups_to_roles_and_a_dropped_group_removes_the_role(
    browser: Any, portal: str, sso: IdentityProvider
) -> None:
    session = Session(browser, portal, sso)
    session.start_sso()
    session.sign_in_at_provider("nadia", "nadia-password")
    session.wait_for_portal("/")

    # The authorization request: code flow with PKCE (S256), state, nonce and the groups scope.
    auth = session.last(f"{sso.issuer}/auth?")
    assert auth["response_type"] == ["code"] and auth["client_id"] == [CLIENT_ID]
    assert auth["code_challenge_method"] == ["S256"] and len(auth["code_challenge"][0]) == 43
    assert auth["state"][0] and auth["nonce"][0] and auth["state"] != auth["nonce"]
    assert {"openid", "groups"} <= set(auth["scope"][0].split())
    assert auth["redirect_uri"] == [f"{portal}/complete/oidc/"]
    callback = session.last(f"{portal}/complete/oidc/")
    assert callback["state"] == auth["state"] and callback["iss"] == [sso.issuer]

    nadia = User.objects.get(username="nadia")
    assert role_names(nadia) == {Role.IAM_ADMIN, Pool.IAM_REVIEWERS}
    assert nadia.email == "nadia@idp.example" and not nadia.has_usable_password()
    assert nadia.social_auth.get(provider="oidc").uid == "nadia"
    assert session.page.get_by_role("heading", level=1).inner_text() == "Portal administration"
    session.sign_out()

    # The provider drops a group; the next login (the provider's session still open: no pages
    # at the provider this time) removes the role it mapped to.
    sso.set_groups("nadia", ["ai-portal-iam-reviewers"])
    session.start_sso()
    session.wait_for_portal("/")
    assert role_names(User.objects.get(pk=nadia.pk)) == {Pool.IAM_REVIEWERS}
    changes = AuditEvent.objects.filter(action="user.roles_changed", target_id=str(nadia.pk)).order_by("id")
    assert [event.after for event in changes] == [
        {"roles": sorted([Role.IAM_ADMIN, Pool.IAM_REVIEWERS])},
        {"roles": [Pool.IAM_REVIEWERS]},
    ]
    assert User.objects.filter(username__startswith="nadia").count() == 1


def test_person_deactivated_in_the_portal_is_refused_while_the_provider_vouches(
    browser: Any, portal: str, sso: IdentityProvider, make_user: Any
) -> None:
    session = Session(browser, portal, sso)
    session.start_sso()
    session.sign_in_at_provider("nadia", "nadia-password")
    session.wait_for_portal("/")
    session.sign_out()
    nadia = User.objects.get(username="nadia")
    user_deactivate(actor=make_user("ivan", Role.IAM_ADMIN), user=nadia, reason="Left the company")

    session.start_sso()
    session.wait_for_portal("/accounts/login/")
    assert session.alert() == DEACTIVATED_MESSAGE
    assert session.page.get_by_role("button", name="Sign out").count() == 0
    assert not User.objects.get(pk=nadia.pk).is_active


def test_wrong_password_at_the_provider_never_reaches_the_portal(
    browser: Any, portal: str, sso: IdentityProvider
) -> None:
    session = Session(browser, portal, sso)
    session.start_sso()
    session.page.wait_for_url(f"{sso.issuer}/interaction/**")
    session.page.get_by_label("Username").fill("nadia")
    session.page.get_by_label("Password").fill("guess")
    session.page.get_by_role("button", name="Sign in").click()
    assert session.alert() == "Invalid username or password."
    assert not any(url.startswith(f"{portal}/complete/") for url in session.requests)
    assert not User.objects.filter(username="nadia").exists()


def test_provider_key_rotation_new_key_accepted_retired_key_refused(
    browser: Any, portal: str, sso: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1. A login with the first key; the portal caches the provider's JWKS. 2. The provider
    restarts with new keys: the next ID token's ``kid`` is unknown, the portal fetches the JWKS
    again and the login works. 3. An ID token with exactly the claims the provider issued, but
    signed with the key it rotated away (taken from its retired key file), is refused."""
    session = Session(browser, portal, sso)
    session.start_sso()
    session.sign_in_at_provider("nadia", "nadia-password")
    session.wait_for_portal("/")
    session.sign_out()
    retired = jwt.PyJWK(_private_keys(sso)[0])
    sso.restart(rotate_keys=True)
    assert retired.key_id not in {key["kid"] for key in sso.jwks()["keys"]}

    issued = _capture_id_tokens(monkeypatch)
    session.start_sso()
    session.sign_in_at_provider("nadia", "nadia-password")  # the restart ended the provider's session
    session.wait_for_portal("/")
    assert jwt.get_unverified_header(issued[-1])["kid"] == sso.signing_kids()[0]
    session.sign_out()

    _resign_id_tokens(monkeypatch, retired)
    session.start_sso()
    session.wait_for_portal("/accounts/login/")
    assert session.alert() == SIGNATURE_REFUSED
    assert session.page.get_by_role("button", name="Sign out").count() == 0


def test_id_token_signed_before_a_rotation_and_checked_after_it_is_refused(
    browser: Any, portal: str, sso: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider signs the ID token, then rotates that key away before the portal fetches its
    JWKS (the portal's first login: nothing cached): the key is nowhere to be found, refused."""
    owner = _token_exchange_owner()
    original = owner.request_access_token

    def exchange_then_rotate(self: OpenIdConnectAuth, *args: Any, **kwargs: Any) -> Any:
        response = original(self, *args, **kwargs)
        sso.restart(rotate_keys=True)
        return response

    monkeypatch.setattr(owner, "request_access_token", exchange_then_rotate)
    session = Session(browser, portal, sso)
    session.start_sso()
    session.sign_in_at_provider("nadia", "nadia-password")
    session.wait_for_portal("/accounts/login/")
    assert session.alert() == SIGNATURE_REFUSED
    assert not User.objects.filter(username="nadia").exists()


def test_provider_reached_under_another_name_than_the_configured_issuer_is_refused(
    browser: Any, portal: str, idp: IdentityProvider
) -> None:
    """The portal configured with ``http://localhost:<port>``: the same provider, whose discovery
    document and tokens name ``http://127.0.0.1:<port>``. An issuer is compared exactly."""
    configured = idp.issuer.replace("127.0.0.1", "localhost")
    _clear_backend_caches()
    try:
        with override_settings(**_portal_sso_settings(configured)):
            session = Session(browser, portal, idp)
            session.start_sso()
            session.sign_in_at_provider("nadia", "nadia-password")
            session.wait_for_portal("/accounts/login/")
            assert session.alert() == FOREIGN_ISSUER_MESSAGE
    finally:
        _clear_backend_caches()
    assert not User.objects.filter(username="nadia").exists()


def _private_keys(idp: IdentityProvider) -> list[dict[str, Any]]:
    return list(json.loads(idp.keys_file.read_text())["keys"])


def _token_exchange_owner() -> Any:
    """The class whose ``request_access_token`` only talks to the token endpoint: the OpenID
    Connect backend's own override validates the ID token after calling it. Wrapping this one
    changes what arrives from the provider, never how the portal checks it."""
    return next(cls for cls in OpenIdConnectAuth.__mro__[1:] if "request_access_token" in vars(cls))


def _capture_id_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the ID token of every token response the portal receives (nothing changed)."""
    owner = _token_exchange_owner()
    original = owner.request_access_token
    issued: list[str] = []

    def exchange(self: OpenIdConnectAuth, *args: Any, **kwargs: Any) -> Any:
        response = original(self, *args, **kwargs)
        issued.append(response["id_token"])
        return response

    monkeypatch.setattr(owner, "request_access_token", exchange)
    return issued


def _resign_id_tokens(monkeypatch: pytest.MonkeyPatch, retired: jwt.PyJWK) -> None:
    """The token response as the provider sent it, its ID token's claims untouched (nonce,
    at_hash, audience...), signed again with the retired key under its own ``kid``."""
    owner = _token_exchange_owner()
    original = owner.request_access_token

    def exchange(self: OpenIdConnectAuth, *args: Any, **kwargs: Any) -> Any:
        response = original(self, *args, **kwargs)
        claims = jwt.decode(response["id_token"], options={"verify_signature": False})
        header = {"kid": retired.key_id, "typ": "JWT"}
        return {**response, "id_token": jwt.encode(claims, retired.key, algorithm="RS256", headers=header)}

    monkeypatch.setattr(owner, "request_access_token", exchange)
