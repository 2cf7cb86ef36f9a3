"""Discovery over the API. Reads go through ``inventory.discovery.selectors`` (the one visibility
rule the pages use too: an unseen finding is a 404, an unseen list empty); each action is its own
endpoint: input serializer -> service (which decides who may act: 403) -> the finding as it is
now. A repeated ``Idempotency-Key`` is answered by the API's idempotency middleware before any
of this runs."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from governance.exceptions import Unprocessable
from governance.filters import IdFilter
from governance.validators import INT64_MAX
from governance.web import signed_in
from inventory.choices import RiskTier
from inventory.discovery import importer, scopes, selectors, services
from inventory.discovery.api.serializers import (
    ConsentSerializer,
    DiscoveryImportSerializer,
    FindingAssignInSerializer,
    FindingClaimInSerializer,
    FindingDetailSerializer,
    FindingReasonInSerializer,
    FindingRevokeInSerializer,
    FindingSanctionInSerializer,
    FindingSerializer,
    ImportUploadSerializer,
    ScopeMappingInSerializer,
    ScopeMappingSerializer,
)
from inventory.discovery.choices import FindingKind, FindingStatus, ImportMethod, ImportStatus, Source
from inventory.discovery.models import DiscoveryImport, Finding, ScopeMapping
from inventory.selectors import scopes_for

PROBLEM = OpenApiResponse(description="Problem details (RFC 9457).")
ERRORS = {400: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM}


# --- Filters ----------------------------------------------------------------------------------


@extend_schema_field({"type": "integer", "minimum": 0, "maximum": INT64_MAX})
class CountFilter(IdFilter):
    """A whole number from 0 (a decimal or a negative number is a 400 naming the parameter):
    the id filter's parsing, from 0."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 0)
        super().__init__(*args, **kwargs)


_STATUS_CHOICES = [
    (selectors.STATUS_ACTIVE, "Active: open, escalated or revocation requested"),
    (selectors.STATUS_CLOSED, "Closed: any other status"),
    *FindingStatus.choices,
]
_ORDERING_CHOICES = [(key, ", ".join(columns)) for key, columns in selectors.FINDING_ORDERINGS.items()]


class FindingFilter(django_filters.FilterSet):
    """The work list's filters (``selectors.finding_list`` applies them, for the page and here)."""

    source = django_filters.ChoiceFilter(choices=Source.choices, method="_none")
    type = django_filters.ChoiceFilter(choices=FindingKind.choices, method="_none", help_text="The finding's type.")
    status = django_filters.ChoiceFilter(
        choices=_STATUS_CHOICES,
        method="_none",
        help_text="A status, or active (open, escalated, revocation requested) or closed; default: any.",
    )
    risk_tier = django_filters.ChoiceFilter(choices=RiskTier.choices, method="_none")
    people_min = CountFilter(method="_none", help_text="At least this many people affected.")
    person = django_filters.CharFilter(
        method="_none",
        max_length=320,
        help_text="Someone who consented to the app: a username, an email or the provider's key for them.",
    )
    q = django_filters.CharFilter(
        method="_none", max_length=200, help_text="Part of the title, the app key or the publisher."
    )
    ordering = django_filters.ChoiceFilter(
        choices=_ORDERING_CHOICES,
        method="_none",
        help_text="people (people affected, then risk), risk, opened or title; prefix - to reverse. Default: -people.",
    )

    class Meta:
        model = Finding
        fields: list[str] = []

    def _none(self, queryset: QuerySet[Finding], name: str, value: Any) -> QuerySet[Finding]:
        return queryset  # applied together by filter_queryset below

    def filter_queryset(self, queryset: QuerySet[Finding]) -> QuerySet[Finding]:
        # ``queryset`` is findings_for(user); finding_list starts from the same rule and adds the
        # filters and the order the page uses.
        data = self.form.cleaned_data
        filters = selectors.FindingFilters(
            source=data.get("source") or "",
            kind=data.get("type") or "",
            status=data.get("status") or selectors.STATUS_ALL,
            risk_tier=data.get("risk_tier") or "",
            people_min=data.get("people_min"),
            person=(data.get("person") or "").strip(),
            text=(data.get("q") or "").strip(),
            ordering=data.get("ordering") or selectors.DEFAULT_ORDERING,
        )
        return selectors.finding_list(self.request.user if self.request else None, filters)


class ImportFilter(django_filters.FilterSet):
    source = django_filters.ChoiceFilter(choices=Source.choices)
    status = django_filters.ChoiceFilter(choices=ImportStatus.choices)
    method = django_filters.ChoiceFilter(choices=ImportMethod.choices, help_text="upload or pull.")

    class Meta:
        model = DiscoveryImport
        fields = ["source", "status", "method"]


class ScopeMappingFilter(django_filters.FilterSet):
    source = django_filters.ChoiceFilter(choices=Source.choices)
    scope = django_filters.CharFilter(field_name="scope__code", help_text="The catalog scope's code.")

    class Meta:
        model = ScopeMapping
        fields = ["source", "scope"]


# --- Imports ----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Past imports, newest first (IAM admins, reviewers and auditors)"),
    retrieve=extend_schema(summary="One import", responses={200: DiscoveryImportSerializer, 404: PROBLEM}),
)
class DiscoveryImportViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[DiscoveryImport]
):
    serializer_class = DiscoveryImportSerializer
    filterset_class = ImportFilter
    ordering_fields = ["created_at", "id"]
    ordering = ["-created_at", "-id"]
    # The upload is the only body this resource takes (reads parse none).
    parser_classes = [MultiPartParser]

    def get_queryset(self) -> QuerySet[DiscoveryImport]:
        return selectors.imports_for(self.request.user)

    @extend_schema(
        summary="Upload a provider's export (IAM admins): queued, imported in the background",
        description="The file is the provider's JSON as its API returns it: one page, several pages one "
        "after the other, or JSON lines. The answer is the queued import; read it again to see how it "
        "went (a malformed record fails the whole import, naming the record number and field).",
        request=ImportUploadSerializer,
        responses={202: DiscoveryImportSerializer, 400: PROBLEM, 403: PROBLEM},
    )
    def create(self, request: Request) -> Response:
        data = ImportUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        imp = importer.import_upload(
            actor=signed_in(request),
            source=data.validated_data["source"],
            tenant=data.validated_data["tenant"],
            uploaded=upload,
            file_name=upload.name or "",
            complete=data.validated_data["complete"] == "true",
        )
        fresh = selectors.imports_for(request.user).get(pk=imp.pk)
        return Response(DiscoveryImportSerializer(fresh).data, status=status.HTTP_202_ACCEPTED)


# --- Findings ---------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Findings the caller may see (IAM admins, reviewers and auditors: all; others: the apps "
        "they consented to or answer for)"
    ),
    retrieve=extend_schema(
        summary="One finding with its app, scopes and revocations",
        responses={200: FindingDetailSerializer, 404: PROBLEM},
    ),
)
class FindingViewSet(viewsets.ReadOnlyModelViewSet[Finding]):
    serializer_class = FindingSerializer
    filterset_class = FindingFilter
    # Sorting is the filter set's ``ordering`` (the work list's orders), not DRF's.
    filter_backends = [DjangoFilterBackend]

    def get_queryset(self) -> QuerySet[Finding]:
        return selectors.finding_detail(self.request.user)

    def filter_queryset(self, queryset: QuerySet[Any, Any]) -> QuerySet[Any, Any]:
        # The list's filters narrow the list only: an action names its finding by id alone.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def get_serializer_class(self) -> Any:
        return FindingSerializer if self.action == "list" else FindingDetailSerializer

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return _finding_out(self.get_object(), request)

    @extend_schema(
        summary="Who consented to the finding's app (others than IAM admins, reviewers and auditors: "
        "their own consent only)",
        responses={200: ConsentSerializer(many=True), 404: PROBLEM},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def consents(self, request: Request, pk: str | None = None) -> Response:
        finding = self.get_object()
        # Paginated like every list (the view's own paginate_queryset is typed for findings).
        paginator = self.paginator
        assert paginator is not None
        page = paginator.paginate_queryset(selectors.finding_consents(request.user, finding), request, view=self)
        return self.get_paginated_response(ConsentSerializer(page, many=True).data)

    @extend_schema(
        summary="Claim the app: register it as an integration (prefilled) that enters approval",
        description="IAM admins claim on someone's behalf (owner); a person who consented to the app claims "
        "it for themselves. The answer is the finding, now claimed, with the new integration's id.",
        request=FindingClaimInSerializer,
        responses={200: FindingDetailSerializer, **ERRORS, 422: PROBLEM},
    )
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, pk: str | None = None) -> Response:
        finding = self.get_object()
        data = FindingClaimInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = signed_in(request)
        values = {k: v for k, v in data.validated_data.items() if k not in ("owner", "submit")}
        services.finding_claim(
            actor=user,
            finding=finding,
            owner=data.validated_data.get("owner", user),
            values=values,
            submit=data.validated_data["submit"],
        )
        return _finding_out(finding, request)

    @extend_schema(
        summary="Dismiss the finding (IAM admins; reason required)",
        request=FindingReasonInSerializer,
        responses={200: FindingDetailSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, pk: str | None = None) -> Response:
        finding = self.get_object()
        data = FindingReasonInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.finding_dismiss(actor=signed_in(request), finding=finding, reason=data.validated_data["reason"])
        return _finding_out(finding, request)

    @extend_schema(
        summary="Ask for the app's grants to be revoked at the provider (IAM admins)",
        description="Records a revocation with the provider's revoke calls and sends the "
        "discovery.revoke_requested webhook event; where the connector has write credentials the portal "
        "makes the calls itself. The answer is the finding with its revocations.",
        request=FindingRevokeInSerializer,
        responses={200: FindingDetailSerializer, **ERRORS, 422: PROBLEM},
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        finding = self.get_object()
        data = FindingRevokeInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        consent = None
        if "consent" in data.validated_data:
            consent = (
                selectors.finding_consents(request.user, finding).filter(pk=data.validated_data["consent"]).first()
            )
            if consent is None:
                raise Unprocessable.on("consent", "No consent of this finding's app has this id.")
        services.finding_revoke(
            actor=signed_in(request), finding=finding, reason=data.validated_data["reason"], consent=consent
        )
        return _finding_out(finding, request)

    @extend_schema(
        summary="Assign the finding to the person who should decide (IAM admins; they get an email)",
        request=FindingAssignInSerializer,
        responses={200: FindingDetailSerializer, **ERRORS, 422: PROBLEM},
    )
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str | None = None) -> Response:
        finding = self.get_object()
        data = FindingAssignInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.finding_assign(actor=signed_in(request), finding=finding, owner=data.validated_data["owner"])
        return _finding_out(finding, request)

    @extend_schema(
        summary="Sanction the app for everyone: register it once with you as owner (IAM admins)",
        request=FindingSanctionInSerializer,
        responses={200: FindingDetailSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def sanction(self, request: Request, pk: str | None = None) -> Response:
        finding = self.get_object()
        data = FindingSanctionInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.finding_sanction(actor=signed_in(request), finding=finding, values=dict(data.validated_data))
        return _finding_out(finding, request)

    @extend_schema(
        summary="Drift: open a scope-expansion review of the extra scopes (IAM admins)",
        request=None,
        responses={200: FindingDetailSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def review(self, request: Request, pk: str | None = None) -> Response:
        finding = self.get_object()
        services.finding_open_review(actor=signed_in(request), finding=finding)
        return _finding_out(finding, request)


def _finding_out(finding: Finding, request: Request) -> Response:
    """The finding as it is now, with its scopes mapped to the catalog and its revocations."""
    fresh = selectors.finding_detail(request.user).filter(pk=finding.pk).first()
    if fresh is None:
        # The caller's own action took the finding out of their sight (a person who claimed it is
        # no longer among those asked): answer with the state they produced.
        fresh = Finding.objects.select_related("app", "integration", "assigned_owner").get(pk=finding.pk)
    rows = scopes.scope_rows(fresh.app) if fresh.app is not None else []
    context = {"scope_rows": rows, "remediations": list(selectors.finding_remediations(fresh))}
    return Response(FindingDetailSerializer(fresh, context=context).data)


# --- Scope mappings ---------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Provider scopes mapped to the catalog (IAM admins, reviewers and auditors)"),
    retrieve=extend_schema(summary="One scope mapping", responses={200: ScopeMappingSerializer, 404: PROBLEM}),
)
class ScopeMappingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ScopeMapping]):
    serializer_class = ScopeMappingSerializer
    filterset_class = ScopeMappingFilter
    ordering_fields = ["source", "provider_scope", "updated_at", "id"]
    ordering = ["source", "provider_scope"]

    def get_queryset(self) -> QuerySet[ScopeMapping]:
        return selectors.scope_mappings_for(self.request.user)

    @extend_schema(
        summary="Map a provider's scope to the catalog (IAM admins): new (201) or replaced (200)",
        description="Open findings of the source are scored again at once.",
        request=ScopeMappingInSerializer,
        responses={201: ScopeMappingSerializer, 200: ScopeMappingSerializer, 400: PROBLEM, 403: PROBLEM, 422: PROBLEM},
    )
    def create(self, request: Request) -> Response:
        data = ScopeMappingInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source, provider_scope = data.validated_data["source"], data.validated_data["provider_scope"]
        scope = scopes_for(request.user).filter(code=data.validated_data["scope"], is_active=True).first()
        if scope is None:
            raise Unprocessable.on("scope", "No active scope of the catalog has this code.")
        existed = ScopeMapping.objects.filter(source=source, provider_scope=provider_scope).exists()
        mapping = scopes.scope_mapping_save(
            actor=signed_in(request), source=source, provider_scope=provider_scope, scope=scope
        )
        fresh = self.get_queryset().filter(pk=mapping.pk).first() or mapping
        code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        return Response(ScopeMappingSerializer(fresh).data, status=code)

    @extend_schema(
        summary="Remove a scope mapping (IAM admins): the scope is shown raw again",
        responses={204: None, 403: PROBLEM, 404: PROBLEM},
    )
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        mapping = self.get_object()
        scopes.scope_mapping_delete(actor=signed_in(request), mapping=mapping)
        return Response(status=status.HTTP_204_NO_CONTENT)
