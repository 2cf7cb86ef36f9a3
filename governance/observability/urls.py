"""Routes of the operators' endpoints."""

from django.urls import URLPattern, path

from governance.observability import views

urlpatterns: list[URLPattern] = [
    # No trailing slash: the path Prometheus scrapes by default.
    path("metrics", views.metrics, name="metrics"),
]
