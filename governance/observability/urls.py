"""Routes of the operators' endpoints."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
