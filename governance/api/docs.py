"""The API's schema and its two documentation pages (Swagger UI, ReDoc), served from bundled
assets and under the portal's Content-Security-Policy (no inline script).

* Swagger UI is drf-spectacular's *split* view: the page loads its start-up script from the same
  URL with ``?script`` instead of inlining it (the inline variant would need ``'unsafe-inline'``).
  Its template (``templates/api/swagger_ui.html``) drops the inline ``<style>`` for a static file.
* ReDoc's template (``templates/api/redoc.html``) drops the Google Fonts link (blocked by the
  policy, and unreachable from an air-gapped deployment) and the inline ``<style>``.
* Swagger UI runs under the portal's policy unchanged. ReDoc needs two things more, granted to
  its page only (``REDOC_CSP``), never for scripts: inline styles (it injects ``<style>``
  elements) and a ``blob:`` worker (its search). Its "API docs by Redocly" logo comes from
  Redocly's CDN and stays blocked (the image hides itself): no third-party request.
* ``API_DOCS_PUBLIC`` (off by default in production) says whether anonymous visitors may read
  them; otherwise the schema answers 401 and the pages send the visitor to sign in.
"""

from __future__ import annotations

from typing import Any

from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseBase
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

# What ReDoc needs beyond the portal's policy (added to it, for its page only): it styles itself
# by injecting <style> elements (styled-components) and searches in a blob: web worker.
REDOC_CSP: dict[str, list[str]] = {
    "style-src": [UNSAFE_INLINE],
    "worker-src": [SELF, "blob:"],
}


class ApiDocsAccess(BasePermission):
    """Anyone when ``API_DOCS_PUBLIC``, else signed-in users (read at each request)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(settings.API_DOCS_PUBLIC or (request.user and request.user.is_authenticated))


class _SignInForDocs(APIView):
    """A docs page refused for want of a sign-in sends the browser to the login page."""

    # DRF finalises whatever response this returns (a redirect here); its stubs say a DRF Response.
    def handle_exception(self, exc: Exception) -> HttpResponseBase:  # type: ignore[override]
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)


class SchemaView(SpectacularAPIView):
    permission_classes = [ApiDocsAccess]


class SwaggerView(_SignInForDocs, SpectacularSwaggerSplitView):
    permission_classes = [ApiDocsAccess]
    template_name = "api/swagger_ui.html"


@method_decorator(csp_update(REDOC_CSP), name="dispatch")
class RedocView(_SignInForDocs, SpectacularRedocView):
    permission_classes = [ApiDocsAccess]
    template_name = "api/redoc.html"
