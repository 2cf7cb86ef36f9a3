from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from governance import views, views_notifications, views_tokens

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.PortalLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("audit/", views.audit_list, name="audit-list"),
    path("outbox/", views.outbox_list, name="outbox"),
    path("outbox/<int:pk>/retry/", views.outbox_retry, name="outbox-retry"),
    path("account/api-tokens/", views_tokens.api_token_create, name="api-token-create"),
    path("account/api-tokens/<int:pk>/revoke/", views_tokens.api_token_revoke_own, name="api-token-revoke"),
    path("account/notifications/", views_notifications.notification_settings, name="account-notifications"),
    path("inventory/", include("inventory.urls")),
    path("discovery/", include("inventory.discovery.urls")),
    path("approvals/", include("approvals.urls")),
    path("campaigns/", include("approvals.campaigns.urls")),
    path("webhooks/", include("governance.webhooks.urls")),
    path("", include("governance.controls.urls")),
    path("", include("governance.controls.urls_admin")),
    path("", include("governance.controls.urls_pack")),
    path("", include("governance.controls.urls_dashboard")),
    path("", include("governance.observability.urls")),
    path("runtime/", include("runtime.urls")),
    path("", include("runtime.oauth_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("governance.api.urls")),
    path("", include("social_django.urls", namespace="social")),
]

handler400 = "governance.views.bad_request"
handler403 = "governance.views.permission_denied"
handler404 = "governance.views.page_not_found"
handler500 = "governance.views.server_error"
