"""Routes of the control catalog API."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
