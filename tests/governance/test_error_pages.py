"""The portal's own error pages in every mode: with DEBUG on (``make run``), a page a role may not
open, or one that does not exist, answers the portal's "Not found" page — never Django's debug
page listing every URL pattern — and a refusal answers the portal's "Not allowed" page. A real
server error keeps Django's debug page in development."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

DEBUG_PAGE_MARKERS = ("URLconf", "Django tried these URL patterns", "technical_404")


def _is_portal_not_found(html: str) -> bool:
    return '<h1 id="error-title">Not found</h1>' in html and not any(m in html for m in DEBUG_PAGE_MARKERS)


@pytest.mark.django_db
def test_with_debug_a_page_a_role_cannot_open_is_the_portal_not_found_page(settings, web_as, reviewer):
    settings.DEBUG = True
    response = web_as(reviewer).get("/approvals/workflows/")
    assert response.status_code == 404
    html = response.content.decode()
    assert _is_portal_not_found(html), html[:400]
    assert 'aria-label="Main"' in html  # the portal's layout, with its navigation


@pytest.mark.django_db
def test_with_debug_an_unknown_path_is_the_portal_not_found_page(settings, web_as, reviewer):
    settings.DEBUG = True
    client = web_as(reviewer)
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and _is_portal_not_found(response.content.decode())
    # A path without its trailing slash is still sent to the one with it.
    redirect = client.get("/approvals/queue")
    assert redirect.status_code == 301 and redirect["Location"] == "/approvals/queue/"
    # The API keeps answering problem details.
    api = client.get("/api/v1/no-such-thing/")
    assert api.status_code == 404 and api["Content-Type"].startswith("application/problem+json")


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_a_refusal_is_the_portal_not_allowed_page(debug, settings, web_as, auditor):
    settings.DEBUG = debug
    response = web_as(auditor).post("/approvals/workflows/", {"risk_tier": "low", "days": 1})
    assert response.status_code == 403
    html = response.content.decode()
    assert '<h1 id="error-title">Not allowed</h1>' in html
    assert "Auditors have read-only access" in html and "ask an IAM admin" in html


@pytest.mark.django_db
def test_a_domain_refusal_under_a_page_is_the_not_allowed_page(rf, reviewer):
    from django.http import HttpResponse

    from governance.exceptions import NotAllowed
    from governance.middleware import DomainErrorMiddleware

    request = rf.get("/somewhere/")
    request.user = reviewer
    middleware = DomainErrorMiddleware(lambda req: HttpResponse())
    response = middleware.process_exception(request, NotAllowed("Only the owners can do this."))
    assert response is not None and response.status_code == 403
    assert "Only the owners can do this." in response.content.decode()
    assert "ask an IAM admin" in response.content.decode()


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.governance.urls_boom", DEBUG=True)
def test_with_debug_a_real_server_error_keeps_the_debug_page(reviewer):
    client = Client(raise_request_exception=False)
    client.force_login(reviewer)
    response = client.get("/test-boom/")
    assert response.status_code == 500
    assert "a bug in a page" in response.content.decode()  # Django's traceback page, for developers
