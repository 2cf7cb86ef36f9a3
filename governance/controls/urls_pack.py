"""Routes of the control catalog (filled by its views)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
