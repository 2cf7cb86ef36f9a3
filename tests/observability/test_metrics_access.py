"""Who may scrape /metrics: the deployment's token and networks decide, nothing else. Off unless
one is set; anything refused answers the same 404 as an endpoint that is off."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from governance.models import User
from tests.observability.conftest import METRICS_TOKEN, parse

pytestmark = pytest.mark.django_db

BEARER = f"Bearer {METRICS_TOKEN}"


def test_without_token_or_networks_the_endpoint_is_off(client: Any) -> None:
    with override_settings(METRICS_TOKEN="", METRICS_ALLOWED_NETWORKS=[]):
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_the_right_bearer_token_scrapes(client: Any, metrics_token: str) -> None:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    families, _samples = parse(response.content.decode())
    assert "governance_outbox_emails" in families


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", f"Bearer {METRICS_TOKEN}x", f"Bearer {METRICS_TOKEN[:-1]}", f"Token {METRICS_TOKEN}", METRICS_TOKEN],
    ids=["none", "empty", "longer", "shorter", "other-scheme", "no-scheme"],
)
def test_a_wrong_or_missing_token_is_a_404(client: Any, metrics_token: str, authorization: str) -> None:
    assert client.get("/metrics", HTTP_AUTHORIZATION=authorization).status_code == 404


def test_a_signed_in_session_is_no_way_in(web_as: Any, iam_admin: User, outsider: User, metrics_token: str) -> None:
    assert web_as(iam_admin).get("/metrics").status_code == 404
    assert web_as(outsider).get("/metrics").status_code == 404


def test_the_scheme_is_read_without_regard_to_case(client: Any, metrics_token: str) -> None:
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {metrics_token}").status_code == 200


@override_settings(METRICS_TOKEN="", METRICS_ALLOWED_NETWORKS=["10.0.0.0/8", "2001:db8::/32"])
@pytest.mark.parametrize(
    ("address", "status"),
    [("10.1.2.3", 200), ("2001:db8::7", 200), ("::ffff:10.9.9.9", 200), ("192.168.1.1", 404), ("127.0.0.1", 404)],
)
def test_an_allowed_network_scrapes_without_a_token(client: Any, address: str, status: int) -> None:
    assert client.get("/metrics", REMOTE_ADDR=address).status_code == status


@override_settings(METRICS_TOKEN=METRICS_TOKEN, METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"])
def test_with_both_set_a_scrape_needs_both(client: Any) -> None:
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.5", HTTP_AUTHORIZATION=BEARER).status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.5").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION=BEARER).status_code == 404


@override_settings(METRICS_TOKEN="", METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"])
def test_a_forwarded_for_header_does_not_make_an_address_allowed(client: Any) -> None:
    # The check reads the connection's own address: a header the client writes proves nothing.
    with override_settings(TRUST_X_FORWARDED_FOR=True):
        response = client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.0.0.1")
    assert response.status_code == 404


def test_only_get_and_head_read_the_metrics(client: Any, metrics_token: str) -> None:
    head = client.head("/metrics", HTTP_AUTHORIZATION=BEARER)
    assert head.status_code == 200 and head.content == b""
    assert client.post("/metrics", HTTP_AUTHORIZATION=BEARER).status_code == 405
    # Refused before the method is even looked at: a probe learns nothing.
    assert client.post("/metrics").status_code == 404


def test_openmetrics_and_gzip_are_served_when_asked(client: Any, metrics_token: str) -> None:
    import gzip

    response = client.get(
        "/metrics",
        HTTP_AUTHORIZATION=BEARER,
        HTTP_ACCEPT="application/openmetrics-text; version=1.0.0",
        HTTP_ACCEPT_ENCODING="gzip",
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.content).decode().rstrip().endswith("# EOF")


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_REDIRECT_EXEMPT=[r"^metrics$"])
def test_with_plain_http_allowed_the_https_redirect_spares_only_metrics(client: Any, metrics_token: str) -> None:
    # What METRICS_PLAIN_HTTP sets in production (tests/observability/test_observability_settings.py).
    assert client.get("/metrics", HTTP_AUTHORIZATION=BEARER).status_code == 200
    assert client.get("/accounts/login/").status_code == 301


def test_the_token_is_never_logged(client: Any, metrics_token: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG"):
        client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-guess")
        client.get("/metrics", HTTP_AUTHORIZATION=BEARER)
    assert "refused: no bearer token, or not the right one" in caplog.text
    assert metrics_token not in caplog.text and "wrong-guess" not in caplog.text
