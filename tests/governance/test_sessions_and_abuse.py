"""Sessions and abuse: login throttling, open redirects, rate limits for calls refused
for their credentials, and the headers a browser is given (Content-Security-Policy and friends).

Sign-in rules (governance/login_throttle.py): failures are counted per account name and per
client address; past a limit sign-in is locked (429 with Retry-After) for a while that doubles
with each further failure; unknown names are treated exactly like real ones; every lockout is an
audit event; single sign-on is never throttled.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
import time_machine
from django.conf import settings as django_settings
from django.test import override_settings
from rest_framework.test import APIClient

from governance.models import AuditEvent, User
from governance.roles import Role
from governance.services import api_token_issue

# The approvals cast (an integration with an open request), for the step-decision redirect.
from tests.approvals.conftest import catalog, make_integration, resource_owner, submit, workflows  # noqa: F401
from tests.governance.test_settings import PRODUCTION_ENV, _run
from tests.governance.test_sso import OIDC_SETTINGS, FakeIssuer, _clear_backend_caches

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def throttle(settings: Any) -> Any:
    """Small limits, so that a test reads like the rule."""
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 5
    settings.LOGIN_LOCKOUT_SECONDS = 60
    settings.LOGIN_LOCKOUT_MAX_SECONDS = 600
    settings.LOGIN_FAILURE_WINDOW_HOURS = 24
    return settings


def _sign_in(client: Any, username: str, password: str, address: str = "10.0.0.1", path: str = LOGIN) -> Any:
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def _signed_in_as(client: Any) -> str | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id).username if user_id else None


# --- Login throttling -------------------------------------------------------------------------


def test_an_account_is_locked_after_the_failure_limit_from_any_address(client, throttle, make_user) -> None:
    make_user("alice", Role.BUSINESS_USER)
    for n in (1, 2):
        assert _sign_in(client, "alice", "wrong", address=f"10.0.0.{n}").status_code == 200
    locked = _sign_in(client, "alice", "wrong", address="10.0.0.3")
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == 60
    assert "Too many failed sign-in attempts" in locked.content.decode()
    # While locked, the right password from a fresh address is refused too: no oracle.
    assert _sign_in(client, "alice", "pw", address="10.0.0.4").status_code == 429
    assert _signed_in_as(client) is None


def test_an_address_is_locked_after_failures_across_account_names(client, throttle, make_user) -> None:
    make_user("bob", Role.BUSINESS_USER)
    for n in range(4):
        assert _sign_in(client, f"name{n}", "guess", address="10.0.0.9").status_code == 200
    assert _sign_in(client, "name4", "guess", address="10.0.0.9").status_code == 429
    # The address is locked for every name, even with a right password...
    assert _sign_in(client, "bob", "pw", address="10.0.0.9").status_code == 429
    # ...and other addresses are not.
    assert _sign_in(client, "bob", "pw", address="10.0.0.10").status_code == 302
    assert _signed_in_as(client) == "bob"


def test_each_failure_after_a_lockout_doubles_it_and_it_ends_by_itself(client, throttle, make_user) -> None:
    make_user("carol", Role.BUSINESS_USER)
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(3):
            response = _sign_in(client, "carol", "wrong")
        assert response.status_code == 429 and response["Retry-After"] == "60"
        clock.shift(timedelta(seconds=61))
        again = _sign_in(client, "carol", "wrong")
        assert again.status_code == 429 and again["Retry-After"] == "120"
        clock.shift(timedelta(seconds=60))
        assert _sign_in(client, "carol", "pw").status_code == 429  # still within the 120 s
        clock.shift(timedelta(seconds=61))
        assert _sign_in(client, "carol", "pw").status_code == 302
        assert _signed_in_as(client) == "carol"


def test_signing_in_clears_the_accounts_failures_but_not_the_addresss(client, throttle, make_user) -> None:
    make_user("dave", Role.BUSINESS_USER)
    for _ in range(3):
        _sign_in(client, "ghost", "guess")  # three guesses from 10.0.0.1...
    _sign_in(client, "dave", "wrong")  # ...and one typo of dave's: four failures at this address
    assert _sign_in(client, "dave", "pw").status_code == 302
    client.post("/accounts/logout/")
    # dave's own typo is forgotten: two more failures leave him under his limit of three...
    assert _sign_in(client, "dave", "wrong", address="10.0.0.2").status_code == 200
    assert _sign_in(client, "dave", "wrong", address="10.0.0.2").status_code == 200
    # ...but the address still counts the three guesses: two more reach its limit of five.
    assert _sign_in(client, "ghost2", "guess").status_code == 200
    assert _sign_in(client, "ghost3", "guess").status_code == 429


def test_behind_a_trusted_proxy_the_address_is_the_one_the_proxy_added(client, throttle, settings, iam_admin) -> None:
    settings.TRUST_X_FORWARDED_FOR = True
    codes = [
        client.post(
            LOGIN,
            {"username": f"name{n}", "password": "guess"},
            REMOTE_ADDR="10.0.0.254",  # the proxy
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 203.0.113.7",  # what the client sent, then the proxy
        ).status_code
        for n in range(5)
    ]
    assert codes == [200, 200, 200, 200, 429]
    assert AuditEvent.objects.get(action="user.locked_out").client_ip == "203.0.113.7"


def _normalised(response: Any, username: str) -> tuple[int, str | None, str]:
    body = response.content.decode().replace(username, "NAME")
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)
    return response.status_code, response.get("Retry-After"), body


def test_unknown_and_real_accounts_get_identical_answers(client, throttle, make_user) -> None:
    make_user("erin", Role.BUSINESS_USER)
    real = [_normalised(_sign_in(client, "erin", "wrong", address="10.1.0.1"), "erin") for _ in range(4)]
    unknown = [_normalised(_sign_in(client, "nobody", "wrong", address="10.2.0.1"), "nobody") for _ in range(4)]
    assert real == unknown
    assert [status for status, _, _ in real] == [200, 200, 429, 429]


def test_a_lockout_is_audited_once_with_the_address_and_the_accountable_human(client, throttle, make_user) -> None:
    alice = make_user("alice", Role.BUSINESS_USER)
    for _ in range(5):  # three to lock, two more refused while locked
        _sign_in(client, "alice", "wrong", address="10.3.0.1")
    event = AuditEvent.objects.get(action="user.locked_out")
    assert (event.actor_kind, event.actor_username) == ("system", "system")
    assert event.owner == alice and event.target_id == str(alice.pk)
    assert event.client_ip == "10.3.0.1"
    assert event.after is not None and event.after["locked_by"] == ["account"]
    assert event.after["failures"]["account"] == {"failures": 3, "limit": 3}


def test_a_lockout_of_a_name_that_is_no_account_keeps_no_name_and_names_an_admin(
    client, throttle, make_user, iam_admin
) -> None:
    for _ in range(3):
        _sign_in(client, "MyS3cretPassw0rd", "wrong", address="10.4.0.1")
    event = AuditEvent.objects.get(action="user.locked_out")
    assert event.owner == iam_admin
    assert event.target_repr == "(no such account)" and event.target_id == ""
    assert "MyS3cretPassw0rd" not in json.dumps(
        [event.target_repr, event.before, event.after, event.reason, event.owner_username]
    )


def test_the_admin_login_is_throttled_with_the_same_counts(client, throttle, iam_admin) -> None:
    assert _sign_in(client, "admin", "wrong", path=LOGIN).status_code == 200
    assert _sign_in(client, "admin", "wrong", path=ADMIN_LOGIN).status_code == 200
    locked = _sign_in(client, "admin", "wrong", path=ADMIN_LOGIN)
    assert locked.status_code == 429 and "Retry-After" in locked
    assert _sign_in(client, "admin", "pw", path=ADMIN_LOGIN).status_code == 429


@pytest.fixture
def issuer(roles: None) -> Iterator[FakeIssuer]:
    _clear_backend_caches()
    with override_settings(**OIDC_SETTINGS), responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeIssuer(mock)
    _clear_backend_caches()


def test_single_sign_on_still_works_from_an_address_locked_for_passwords(client, throttle, issuer) -> None:
    for n in range(5):
        _sign_in(client, f"name{n}", "guess", address="127.0.0.1")
    assert _sign_in(client, "victor", "guess", address="127.0.0.1").status_code == 429
    final = issuer.login(client, sub="u-900", username="victor", groups=["ai-portal-users"])
    assert final.redirect_chain[-1][0] == "/"
    assert _signed_in_as(client) == "victor"


# --- Open redirects ----------------------------------------------------------------------------

OFFSITE = ["//evil.example/", "/\\evil.example/"]  # both start with "/", and browsers read both as a host


@pytest.mark.parametrize("target", OFFSITE)
def test_deciding_a_step_never_redirects_off_site(client, make_integration, submit, iam_admin, target) -> None:  # noqa: F811
    step = submit(make_integration("Mail bot")).steps.get()
    client.force_login(iam_admin)
    response = client.post(
        f"/approvals/steps/{step.pk}/decide/", {"decision": "approve", "comment": "ok", "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == "/approvals/queue/"


@pytest.mark.parametrize("target", OFFSITE)
def test_deciding_review_items_redirects_only_within_the_site(client, iam_admin, target) -> None:
    client.force_login(iam_admin)
    response = client.post("/campaigns/review/decide/", {"next": target})
    assert response.status_code == 302
    assert response["Location"] == "/campaigns/review/"
    # A page of this site is where the reviewer goes back to.
    kept = client.post("/campaigns/review/decide/", {"next": "/campaigns/review/?campaign=3"})
    assert kept["Location"] == "/campaigns/review/?campaign=3"


# --- Rate limits for calls refused for their credentials --------------------------------------


@pytest.fixture
def limits(settings: Any) -> dict[str, str]:
    settings.API_RATE_LIMITS = {"token": "", "user": "", "anon": "", "auth_failure": "3/min"}
    return settings.API_RATE_LIMITS


def _call(key: str | None, address: str, path: str = "/api/v1/audit-events/") -> Any:
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get(path, REMOTE_ADDR=address)


def test_invalid_tokens_are_throttled_per_address_with_retry_after(limits) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        assert [_call("gp_guess", "10.5.0.1").status_code for _ in range(3)] == [401, 401, 401]
        refused = _call("gp_guess", "10.5.0.1")
        assert refused.status_code == 429
        assert refused["Content-Type"] == "application/problem+json"
        assert refused.json()["status"] == 429
        assert 0 < int(refused["Retry-After"]) <= 60
        # Another address is not concerned.
        assert _call("gp_guess", "10.5.0.2").status_code == 401
        # The 429s are no failures of their own: once the minute is over the address is free.
        for _ in range(5):
            _call("gp_guess", "10.5.0.1")
        clock.shift(timedelta(seconds=61))
        assert _call("gp_guess", "10.5.0.1").status_code == 401


def test_a_forged_forwarded_for_header_does_not_buy_a_fresh_address(limits) -> None:
    client = APIClient()
    codes = [
        client.get(
            "/api/v1/audit-events/",
            REMOTE_ADDR="10.6.0.1",
            HTTP_AUTHORIZATION="Token gp_guess",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(4)
    ]
    assert codes == [401, 401, 401, 429]


def test_while_an_address_is_over_even_a_valid_token_is_not_looked_up(limits, auditor) -> None:
    _token, key = api_token_issue(actor=auditor, user=auditor)
    for _ in range(3):
        _call("gp_guess", "10.7.0.1")
    assert _call(key, "10.7.0.1").status_code == 429  # a right key and a guess answer alike
    assert _call(key, "10.7.0.2").status_code == 200


def test_anonymous_calls_to_protected_endpoints_are_throttled_per_address(limits) -> None:
    assert [_call(None, "10.8.0.1").status_code for _ in range(3)] == [401, 401, 401]
    refused = _call(None, "10.8.0.1")
    assert refused.status_code == 429 and "Retry-After" in refused
    assert _call(None, "10.8.0.2").status_code == 401


def test_a_call_refused_by_one_limit_does_not_count_against_another(settings, auditor) -> None:
    settings.API_RATE_LIMITS = {"token": "2/min", "user": "3/min", "anon": "", "auth_failure": ""}
    _first, first_key = api_token_issue(actor=auditor, user=auditor, name="first")
    _second, second_key = api_token_issue(actor=auditor, user=auditor, name="second")
    codes = [_call(first_key, "10.9.0.1").status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]
    # The two refused calls used none of the user's three: the second token still gets through.
    assert _call(second_key, "10.9.0.1").status_code == 200
    assert _call(second_key, "10.9.0.1").status_code == 429  # now the user's limit


# --- Content-Security-Policy, headers, API docs ------------------------------------------------


def _directives(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part}


def test_pages_send_a_policy_without_inline_script_and_the_isolation_headers(client) -> None:
    response = client.get(LOGIN)
    policy = _directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["style-src"]
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


TEMPLATES = Path(django_settings.BASE_DIR) / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"""\son[a-z]+\s*=|javascript:|\sstyle\s*=|<style""", re.I)


def test_no_page_template_carries_inline_script_or_style() -> None:
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        if path.parts[len(TEMPLATES.parts)] == "emails":
            continue  # emails are not web pages: no CSP there, and mail clients want inline styles
        if path.relative_to(TEMPLATES) == Path("controls/pack/report.html"):
            continue  # a file in the evidence pack, opened from disk: it must carry its own style
        text = re.sub(r"\{% comment %\}.*?\{% endcomment %\}", "", path.read_text(), flags=re.S)
        if INLINE_SCRIPT.search(text) or INLINE_HANDLER.search(text):
            offenders.append(str(path.relative_to(TEMPLATES)))
    assert offenders == []


@pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_the_api_docs_pages_load_no_inline_script(client, auditor, path) -> None:
    client.force_login(auditor)
    response = client.get(path)
    # ReDoc's page may widen styles and workers for itself, never scripts.
    assert _directives(response["Content-Security-Policy"])["script-src"] == ["'self'"]
    html = response.content.decode()
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all("src=" in tag for tag in scripts), scripts
    assert "fonts.googleapis.com" not in html


def test_the_swagger_start_up_script_is_served_as_javascript(client, auditor) -> None:
    client.force_login(auditor)
    page = client.get("/api/v1/docs/").content.decode()
    script_url = re.findall(r'<script src="([^"]*script=[^"]*)"', page)[0].replace("&amp;", "&")
    script = client.get(script_url)
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()


def test_api_docs_and_schema_are_for_signed_in_users_unless_public(client, settings, auditor) -> None:
    settings.API_DOCS_PUBLIC = False
    assert client.get("/api/v1/schema/").status_code == 401
    for path in ("/api/v1/docs/", "/api/v1/redoc/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={path}"
    client.force_login(auditor)
    assert client.get("/api/v1/schema/").status_code == 200
    assert client.get("/api/v1/docs/").status_code == 200


def _production(code: str) -> dict[str, Any]:
    """Run ``code`` (which prints one JSON line) in a fresh process with the production settings."""
    prelude = (
        "import json, django; django.setup(); from django.conf import settings; "
        "from django.test import Client; c = Client(HTTP_HOST='portal.example.com'); "
    )
    proc = _run([sys.executable, "-c", prelude + code], PRODUCTION_ENV)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_production_sends_the_policy_referrer_policy_and_opener_policy() -> None:
    # An API answer: pages need collected static files, which this bare process does not have.
    headers = _production("r = c.get('/api/v1/audit-events/', secure=True); print(json.dumps(dict(r.headers)))")
    policy = _directives(headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"] and policy["default-src"] == ["'self'"]
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_production_serves_the_api_docs_and_schema_to_signed_in_users_only() -> None:
    answers = _production(
        "print(json.dumps({'public': settings.API_DOCS_PUBLIC, "
        "'schema': c.get('/api/v1/schema/', secure=True).status_code, "
        "'docs': [c.get('/api/v1/docs/', secure=True).status_code, "
        "c.get('/api/v1/docs/', secure=True).get('Location')], "
        "'redoc': c.get('/api/v1/redoc/', secure=True).status_code}))"
    )
    assert answers == {
        "public": False,
        "schema": 401,
        "docs": [302, "/accounts/login/?next=/api/v1/docs/"],
        "redoc": 302,
    }


def test_production_login_throttling_is_on_by_default() -> None:
    answers = _production(
        "print(json.dumps({n: getattr(settings, n) for n in ('AXES_ENABLED', 'LOGIN_FAILURE_LIMIT', "
        "'LOGIN_FAILURE_LIMIT_PER_ADDRESS', 'AUTHENTICATION_BACKENDS')}))"
    )
    assert answers["AXES_ENABLED"] is True
    assert (answers["LOGIN_FAILURE_LIMIT"], answers["LOGIN_FAILURE_LIMIT_PER_ADDRESS"]) == (5, 20)
    assert answers["AUTHENTICATION_BACKENDS"][0] == "axes.backends.AxesStandaloneBackend"
