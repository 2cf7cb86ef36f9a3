"""The runtime's pages (under ``/runtime/``)."""

from django.urls import path

from runtime import views

app_name = "runtime"

urlpatterns = [
    path("activity/", views.activity, name="activity"),
]
