"""Route of the dashboard."""

from django.urls import URLPattern, path

from governance.controls import views_dashboard

urlpatterns: list[URLPattern] = [
    path("dashboard/", views_dashboard.dashboard_view, name="dashboard"),
]
