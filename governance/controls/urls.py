"""Routes of the control catalog's pages (the catalog's admin pages are in ``urls_admin``)."""

from django.urls import URLPattern, path

from governance.controls import views

urlpatterns: list[URLPattern] = [
    path("controls/", views.control_list, name="controls-list"),
    path("controls/<str:control_id>/", views.control_detail, name="control-detail"),
    path("frameworks/", views.framework_list, name="framework-list"),
    path("frameworks/<str:slug>/", views.framework_detail, name="framework-detail"),
]
