"""Routes of the evidence pack: its page (GET) and download (POST), and the API endpoint. The API
path sits here, at the site root, so it is matched before ``api/v1/``'s catch-all 404 (this module
is included ahead of it in ``governance/urls.py``)."""

from django.urls import URLPattern, path

from governance.controls import views_pack

urlpatterns: list[URLPattern] = [
    path("evidence/pack/", views_pack.evidence_pack, name="evidence-pack"),
    path("api/v1/evidence-pack/", views_pack.EvidencePackView.as_view(), name="api-evidence-pack"),
]
