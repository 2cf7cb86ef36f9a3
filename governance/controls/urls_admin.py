"""Routes of the catalog's admin pages (IAM admins only). They sit under ``/frameworks/manage/``
(a slug the services reserve, so no framework's page is hidden by them) and beside a control's
page (``/controls/<id>/thresholds/``)."""

from django.urls import URLPattern, path

from governance.controls import views_admin

urlpatterns: list[URLPattern] = [
    path("frameworks/manage/new/", views_admin.framework_create, name="framework-create"),
    path("frameworks/manage/<slug:slug>/items/new/", views_admin.framework_item_add, name="framework-item-add"),
    path("frameworks/manage/mappings/new/", views_admin.mapping_add, name="mapping-add"),
    path("frameworks/manage/mappings/<int:pk>/remove/", views_admin.mapping_remove, name="mapping-remove"),
    path("controls/<str:control_id>/thresholds/", views_admin.threshold_edit, name="threshold-edit"),
]
