"""Root of ``/api/v1/``: each app contributes its router in its own ``api/urls.py``."""

from django.urls import include, path, re_path
from rest_framework.routers import DefaultRouter

from governance.api.docs import RedocView, SchemaView, SwaggerView
from governance.api.views import AuditEventViewSet, api_not_found

router = DefaultRouter(trailing_slash=True)
router.register("audit-events", AuditEventViewSet, basename="audit-event")

urlpatterns = [
    # Signed-in users only unless API_DOCS_PUBLIC; no inline script (governance/api/docs.py).
    # "api-docs", where the portal's links point, is the reference (ReDoc): it passes the
    # accessibility check; Swagger UI, linked from it, is where requests are tried.
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", SwaggerView.as_view(url_name="api-schema"), name="api-swagger"),
    path("redoc/", RedocView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("inventory.api.urls")),
    path("", include("inventory.discovery.api.urls")),
    path("", include("approvals.api.urls")),
    path("", include("approvals.campaigns.api.urls")),
    path("", include("governance.webhooks.api.urls")),
    path("", include("runtime.api.urls")),
    path("", include("governance.controls.api.urls")),
    path("", include(router.urls)),
    # Anything else under /api/v1/ is a problem-details 404, also with DEBUG on.
    re_path(r"^.*$", api_not_found),
]
