"""The runtime's pages (under ``/runtime/``)."""

from django.urls import path

app_name = "runtime"

urlpatterns: list = []
