from django.urls import path

from inventory import views, views_delegates

app_name = "inventory"

urlpatterns = [
    path("", views.integration_list, name="list"),
    path("new/", views.integration_create, name="create"),
    path("<int:pk>/", views.integration_detail, name="detail"),
    path("<int:pk>/edit/", views.integration_edit, name="edit"),
    path("<int:pk>/submit/", views.integration_submit, name="submit"),
    path("<int:pk>/suspend/", views.integration_suspend, name="suspend"),
    path("<int:pk>/reactivate/", views.integration_reactivate, name="reactivate"),
    path("<int:pk>/retire/", views.integration_retire, name="retire"),
    path("<int:pk>/transfer/", views.integration_transfer, name="transfer-propose"),
    path("<int:pk>/delegates/", views_delegates.delegate_add, name="delegate-add"),
    path("<int:pk>/delegates/<int:user_id>/remove/", views_delegates.delegate_remove, name="delegate-remove"),
    path("<int:pk>/workload-binding/", views.integration_binding, name="workload-binding"),
    path("<int:pk>/workload-binding/remove/", views.integration_binding_remove, name="workload-binding-remove"),
    path("transfers/<int:pk>/", views.transfer_detail, name="transfer"),
    path("orphaned/", views.orphans, name="orphans"),
    path("people/", views.people_search, name="people"),
    path("catalog/", views.catalog, name="catalog"),
    path("catalog/systems/new/", views.system_form, name="system-create"),
    path("catalog/systems/<int:pk>/", views.system_form, name="system-edit"),
    path("catalog/systems/<int:system_pk>/scopes/new/", views.scope_form, name="scope-create"),
    path("catalog/scopes/<int:pk>/", views.scope_form, name="scope-edit"),
    path("issuers/", views.issuer_list, name="issuers"),
    path("issuers/new/", views.issuer_form, name="issuer-create"),
    path("issuers/<int:pk>/", views.issuer_detail, name="issuer"),
    path("issuers/<int:pk>/edit/", views.issuer_form, name="issuer-edit"),
    path("issuers/<int:pk>/refresh-keys/", views.issuer_refresh, name="issuer-refresh"),
    path("issuers/<int:pk>/active/", views.issuer_set_active, name="issuer-active"),
]
