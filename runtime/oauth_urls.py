"""The authorization-server endpoints, at the site's root: ``/oauth/...`` and ``/.well-known/...``."""

from django.urls import path

urlpatterns: list = []
