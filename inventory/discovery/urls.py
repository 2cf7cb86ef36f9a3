"""The discovery pages, under ``/discovery/``."""

from __future__ import annotations

from django.urls import path

from inventory.discovery import views

app_name = "discovery"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("findings/", views.finding_list, name="findings"),
    path("findings/<int:pk>/", views.finding_detail, name="finding"),
    path("findings/<int:pk>/claim/", views.finding_claim, name="finding-claim"),
    path("findings/<int:pk>/sanction/", views.finding_sanction, name="finding-sanction"),
    path("findings/<int:pk>/assign/", views.finding_assign, name="finding-assign"),
    path("findings/<int:pk>/dismiss/", views.finding_dismiss, name="finding-dismiss"),
    path("findings/<int:pk>/revoke/", views.finding_revoke, name="finding-revoke"),
    path("findings/<int:pk>/review/", views.finding_review, name="finding-review"),
    path("imports/", views.import_list, name="imports"),
    path("imports/<int:pk>/", views.import_detail, name="import"),
    path("scope-mappings/", views.scope_mapping_list, name="scope-mappings"),
    path("scope-mappings/<int:pk>/delete/", views.scope_mapping_delete, name="scope-mapping-delete"),
    path("mine/", views.mine, name="mine"),
    path("mine/<int:pk>/not-needed/", views.consent_not_needed, name="consent-not-needed"),
]
