"""The authorization-server endpoints, at the site's root: ``/oauth/...`` and ``/.well-known/...``."""

urlpatterns: list = []
