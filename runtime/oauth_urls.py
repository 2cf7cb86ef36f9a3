"""The authorization-server endpoints, at the site's root: ``/oauth/...`` and ``/.well-known/...``."""

from django.urls import path

from runtime import oauth_endpoints, views_oauth

urlpatterns = [
    path("oauth/token", views_oauth.token, name="oauth-token"),
    path("oauth/introspect", oauth_endpoints.introspect, name="oauth-introspect"),
    path("oauth/revoke", oauth_endpoints.revoke, name="oauth-revoke"),
    path(".well-known/jwks.json", oauth_endpoints.jwks, name="oauth-jwks"),
    path(
        ".well-known/oauth-authorization-server",
        oauth_endpoints.authorization_server_metadata,
        name="oauth-authorization-server",
    ),
]
