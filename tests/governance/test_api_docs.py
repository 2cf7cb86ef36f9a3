"""The API documentation the portal links to is the reference (ReDoc), a page with its language
set and a link to Swagger UI, where requests are tried."""

from __future__ import annotations

import pytest
from django.urls import reverse


def test_the_docs_link_names_the_reference_page():
    assert reverse("api-docs") == "/api/v1/redoc/"
    assert reverse("api-swagger") == "/api/v1/docs/"


@pytest.mark.django_db
def test_the_reference_page_has_a_language_and_leads_to_swagger(web_as, owner):
    html = web_as(owner).get("/api/v1/redoc/").content.decode()
    assert '<html lang="en">' in html
    assert 'href="/api/v1/docs/">Try it out (Swagger UI)</a>' in html
    assert "fonts.googleapis.com" not in html and "<style" not in html


@pytest.mark.django_db
def test_the_footer_links_to_the_reference(web_as, owner):
    assert '<a href="/api/v1/redoc/">API documentation</a>' in web_as(owner).get("/").content.decode()
