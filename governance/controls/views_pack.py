"""The evidence pack's page and download, and its API endpoint. Whoever reads the controls'
evidence (IAM admins, reviewers, auditors) may download it; anyone else gets a 404. The download
is a POST: it writes the audit event that records which pack was handed over
(``pack.evidence_pack_export``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from governance.api.input import StrictInputMixin
from governance.controls import catalog, pack, registry
from governance.exceptions import NotFound
from governance.models import User
from governance.selectors import audit_events_for
from governance.validators import validate_single_line
from governance.web import signed_in

RECENT_EXPORTS = 10


class PackForm(forms.Form):
    framework = forms.ChoiceField(
        required=False,
        label="Scope",
        help_text="The whole catalog, or only the controls mapped to one framework.",
    )

    def __init__(self, *args: Any, frameworks: list[catalog.FrameworkInfo], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "Every control and every framework")]
        choices += [(info.slug, f"{info.name} ({info.slug})") for info in frameworks]
        field = self.fields["framework"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices


def _download(exported: pack.ExportedPack) -> FileResponse:
    response = FileResponse(
        exported.file, as_attachment=True, filename=exported.filename, content_type="application/zip"
    )
    response["X-Evidence-Manifest-SHA256"] = exported.summary.manifest_sha256
    response["X-Evidence-Pack-SHA256"] = exported.sha256
    # The pack holds the organisation's evidence as of now: no cache keeps a copy.
    response["Cache-Control"] = "no-store"
    return response


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def evidence_pack(request: HttpRequest) -> HttpResponse | FileResponse:
    """GET: what the pack holds, the stamp it will carry, and the latest exports (``?framework=``
    preselects a scope). POST: the pack."""
    user = signed_in(request)
    if not pack.can_export(user):
        raise Http404("No evidence pack here.")
    frameworks = catalog.frameworks()
    if request.method == "POST":
        form = PackForm(request.POST, frameworks=frameworks)
    else:
        # A framework's page links here with its slug: the scope comes preselected.
        form = PackForm(initial={"framework": request.GET.get("framework", "")}, frameworks=frameworks)
    if request.method == "POST" and form.is_valid():
        exported = pack.evidence_pack_export(
            actor=user, framework=form.cleaned_data["framework"], base_url=_base_url(request)
        )
        return _download(exported)
    return render(
        request,
        "controls/pack/page.html",
        _page_context(user, form, frameworks),
        status=400 if form.is_bound else 200,
    )


def _page_context(user: User, form: PackForm, frameworks: list[catalog.FrameworkInfo]) -> dict[str, Any]:
    recent = audit_events_for(user).filter(action=pack.EXPORT_ACTION).order_by("-id")[:RECENT_EXPORTS]
    return {
        "form": form,
        "frameworks": frameworks,
        "controls": len(registry.controls()),
        "checkpoint": pack.current_checkpoint(),
        "chain_check": pack.last_chain_check(),
        "portal_version": pack.portal_version(),
        "catalog_version": catalog.CATALOG_VERSION,
        "recent": list(recent),
    }


# --- API ----------------------------------------------------------------------------------------


class EvidencePackInSerializer(StrictInputMixin, serializers.Serializer[dict[str, Any]]):
    framework = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=60,
        validators=[validate_single_line],
        help_text="A framework's slug (GET /api/v1/frameworks/): only the controls mapped to it. "
        "Empty or absent: every control and every framework.",
    )


class EvidencePackView(APIView):
    """``POST /api/v1/evidence-pack/``: the pack as a ZIP, its export audited."""

    # Auditors may call it although it writes: the event it writes records the export itself,
    # which is what an auditor asking for evidence should leave behind.
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Download the evidence pack (IAM admins, reviewers, auditors)",
        description="A ZIP: `report.html` (self-contained, printable), `figures.csv`/`.json` (every figure of "
        "every control), `frameworks.csv`/`.json` (every framework item with its controls and status), "
        "`records/<figure key>.csv`/`.json` (the records behind each figure) and `manifest.json` (the SHA-256 "
        "of every file, and the stamp: time, portal and catalog versions, the audit checkpoint). Each call "
        "builds a pack of the data as it is now and records a `controls.evidence_exported` audit event whose "
        "target id is the manifest's SHA-256 (also in the `X-Evidence-Manifest-SHA256` header). A framework "
        "that does not exist is a 422 naming `framework`; a caller who may not read the evidence gets a 404.",
        request=EvidencePackInSerializer,
        responses={
            (200, "application/zip"): OpenApiResponse(response=OpenApiTypes.BINARY, description="The pack."),
        },
    )
    def post(self, request: Request) -> FileResponse:
        user = signed_in(request)
        if not pack.can_export(user):
            raise NotFound("No evidence pack here.")
        data = EvidencePackInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        framework = data.validated_data.get("framework", "")
        return _download(pack.evidence_pack_export(actor=user, framework=framework, base_url=_base_url(request)))
