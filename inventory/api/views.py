"""Inventory API: declarative reads over the selectors with filtersets; each change its own
endpoint: input serializer -> service (which checks who may) -> output serializer."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.utils.urls import replace_query_param

from governance.api.pagination import Pagination
from governance.exceptions import Unprocessable
from governance.paging import EstimateFirstPaginator
from governance.roles import sees_everything
from governance.web import signed_in
from inventory import issuer_keys, selectors, services, timeline
from inventory.api.serializers import (
    GrantRevokeInSerializer,
    GrantSerializer,
    HistoryPageSerializer,
    IntegrationCreateSerializer,
    IntegrationSerializer,
    IntegrationWriteSerializer,
    OptionalReasonSerializer,
    OwnershipTransferSerializer,
    ReasonSerializer,
    ScopeSerializer,
    ScopeWriteSerializer,
    TransferProposeSerializer,
    TrustedIssuerChangeSerializer,
    TrustedIssuerCreateSerializer,
    TrustedIssuerSerializer,
    WorkloadBindingInSerializer,
    WorkloadBindingSerializer,
)
from inventory.filters import (
    ORDERING_FIELDS,
    GrantFilter,
    IntegrationFilter,
    OwnershipTransferFilter,
    ScopeFilter,
    TrustedIssuerFilter,
    ordered_for_search,
)
from inventory.models import Grant, Integration, OwnershipTransfer, Scope, TrustedIssuer

_PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")
_ERRORS = {400: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 409: _PROBLEM}
_HISTORY_NOTE = (
    "Cut on time, not counted: `next` and `previous` carry an opaque `cursor` and stay exact while "
    "changes are recorded. A page may hold fewer than `page_size` changes while older ones remain (a "
    "save that changed nothing shown takes a place): follow `next` until it is null."
)
# A cursor is URL-safe base64 without padding (``inventory.timeline.Cursor``).
_CURSOR_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
_CURSOR_MAX_LENGTH = 200
_HISTORY_PARAMETERS = [
    OpenApiParameter(
        "cursor",
        {"type": "string", "pattern": f"^{_CURSOR_PATTERN.pattern}$", "maxLength": _CURSOR_MAX_LENGTH},
        OpenApiParameter.QUERY,
        description="Where the page starts: the value from `next` or `previous`, opaque. One outside this "
        "pattern is a 400; one inside it that the portal did not write, a 422.",
    ),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": Pagination.max_page_size},
        OpenApiParameter.QUERY,
        description=f"Changes per page (default {Pagination.page_size}, at most {Pagination.max_page_size}).",
    ),
]
_OWNERS_NOTE = (
    "Owners are usernames. Naming another person as business, technical or backup owner takes their "
    "consent: the role is proposed to them (an ownership transfer, with an email) and changes when they "
    "accept; until then a new integration's business owner is you. `pending_transfers` in the answer lists "
    "what waits. IAM admins name business users directly; reviewers and auditors are always asked."
)


@extend_schema_view(
    partial_update=extend_schema(
        summary="Change a scope of the catalog (IAM admins): description, sensitivity, access, "
        "whether it can be requested, whether it is just-in-time eligible",
        request=ScopeWriteSerializer,
        responses={200: ScopeSerializer, 400: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM},
    )
)
class ScopeViewSet(mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet[Scope]):
    """The scope catalog, kept by IAM admins in the portal; every signed-in caller reads it."""

    serializer_class = ScopeSerializer
    filterset_class = ScopeFilter
    lookup_field = "code"
    lookup_value_regex = "[^/]+"
    ordering_fields = ["code", "sensitivity", "access"]
    ordering = ["code"]
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Scope]:
        return selectors.scopes_for(self.request.user)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        scope = self.get_object()
        data = ScopeWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        saved = services.scope_save(actor=signed_in(request), values=dict(data.validated_data), scope=scope)
        return Response(ScopeSerializer(self.get_queryset().get(pk=saved.pk)).data)


def _out(integration: Integration, request: Request, code: int = status.HTTP_200_OK) -> Response:
    fresh = selectors.integration_detail(request.user).filter(pk=integration.pk).first()
    if fresh is None:
        # The caller's own change took them out of the owners (e.g. a technical owner who removed
        # themselves): answer with the state they produced, which they saw a moment ago, rather
        # than a 500 that would roll their change back.
        fresh = selectors.with_detail(Integration.objects.filter(pk=integration.pk)).get()
    return Response(IntegrationSerializer(fresh, context={"request": request}).data, status=code)


def _values(data: dict[str, Any]) -> dict[str, Any]:
    """The validated input as a service takes it (the ``submit`` flag is not a field)."""
    values = {k: v for k, v in data.items() if k != "submit"}
    if "credentials" in values:
        values["credentials"] = [dict(c) for c in values["credentials"]]
    if "external_app_ids" in values:
        values["external_app_ids"] = [(pair["source"], pair["app_key"]) for pair in values["external_app_ids"]]
    return values


def _issuer_named(data: dict[str, Any]) -> TrustedIssuer:
    """The trusted issuer the input names (by iss or id, exactly one: a rule the schema cannot
    state, so a 422); an unknown one is a 422 on ``issuer``. Whether it is active is the
    service's rule."""
    if ("issuer" in data) == ("issuer_id" in data):
        raise Unprocessable.on("issuer", "Give the issuer (its iss) or issuer_id: one of the two.")
    found = selectors.issuers_named(issuer=data.get("issuer"), issuer_id=data.get("issuer_id"))
    if found is None:
        raise Unprocessable.on("issuer", "No trusted issuer has this iss or id.")
    return found


@extend_schema_view(
    list=extend_schema(summary="List the integrations you may see"),
    retrieve=extend_schema(summary="One integration", responses={200: IntegrationSerializer, 404: _PROBLEM}),
)
class IntegrationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Integration]):
    """Owners see theirs; reviewers, IAM admins and auditors see all; any other integration is
    a 404. Owners and IAM admins change it (others who can see it get a 403)."""

    serializer_class = IntegrationSerializer
    filterset_class = IntegrationFilter
    ordering_fields = ORDERING_FIELDS
    ordering = ["name", "id"]

    def get_queryset(self) -> QuerySet[Integration]:
        if self.action == "list":
            return selectors.integrations_listed(self.request.user)
        if self.action == "retrieve":
            return selectors.integration_detail(self.request.user)
        return selectors.integrations_for(self.request.user)

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        return IntegrationSerializer

    def list(self, request: Request) -> Response:
        # Paged over a narrow query of ids, then only the page's rows loaded in full.
        ids = self.filter_queryset(selectors.integrations_for(request.user)).values_list("pk", flat=True)
        if isinstance(self.paginator, Pagination) and sees_everything(request.user):
            self.paginator.django_paginator_class = EstimateFirstPaginator
        page_ids = self.paginate_queryset(ordered_for_search(ids, request.query_params.get("q", "")))
        assert page_ids is not None
        listed = selectors.integrations_listed(request.user).prefetch_related(
            selectors.open_transfers_prefetch(), "external_app_ids"
        )
        rows = selectors.rows_for_page(listed, list(page_ids))
        return self.get_paginated_response(IntegrationSerializer(rows, many=True, context={"request": request}).data)

    @extend_schema(
        summary="Register an integration (a draft, or submitted with submit=true)",
        description=_OWNERS_NOTE,
        request=IntegrationCreateSerializer,
        responses={201: IntegrationSerializer, 400: _PROBLEM, 403: _PROBLEM},
    )
    def create(self, request: Request) -> Response:
        # A repeated Idempotency-Key is answered by the API middleware before this runs.
        data = IntegrationCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        user = signed_in(request)
        values = _values(dict(data.validated_data))
        values.setdefault("business_owner", user)
        integ = services.integration_register(
            actor=user, values=values, submit=data.validated_data.get("submit", False)
        )
        return _out(integ, request, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change an integration (new scopes are requested, never granted)",
        description=_OWNERS_NOTE,
        request=IntegrationWriteSerializer,
        responses={200: IntegrationSerializer, **_ERRORS},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        integ = self.get_object()
        data = IntegrationWriteSerializer(data=request.data, partial=True, context={"request": request})
        data.is_valid(raise_exception=True)
        services.integration_update(
            actor=signed_in(request), integration=integ, values=_values(dict(data.validated_data))
        )
        return _out(integ, request)

    @extend_schema(
        summary="Kill switch: suspend and revoke every active grant at once",
        request=ReasonSerializer,
        responses={200: IntegrationSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str | None = None) -> Response:
        integ = self.get_object()
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.integration_suspend(actor=signed_in(request), integration=integ, reason=data.validated_data["reason"])
        return _out(integ, request)

    @extend_schema(
        summary="Submit a draft (or a rejected one) for approval",
        request=OptionalReasonSerializer,
        responses={200: IntegrationSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str | None = None) -> Response:
        integ = self.get_object()
        data = OptionalReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.integration_submit(actor=signed_in(request), integration=integ, reason=data.validated_data["reason"])
        return _out(integ, request)

    @extend_schema(
        summary="Ask for a suspended integration to be reactivated (a new request)",
        request=OptionalReasonSerializer,
        responses={200: IntegrationSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, pk: str | None = None) -> Response:
        integ = self.get_object()
        data = OptionalReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.integration_reactivate(
            actor=signed_in(request), integration=integ, reason=data.validated_data["reason"]
        )
        return _out(integ, request)

    @extend_schema(
        summary="Retire for good (every active grant revoked)",
        request=ReasonSerializer,
        responses={200: IntegrationSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def retire(self, request: Request, pk: str | None = None) -> Response:
        integ = self.get_object()
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.integration_retire(actor=signed_in(request), integration=integ, reason=data.validated_data["reason"])
        return _out(integ, request)

    @extend_schema(
        summary="Propose an ownership transfer (the new owner must accept)",
        request=TransferProposeSerializer,
        responses={201: OwnershipTransferSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def transfer(self, request: Request, pk: str | None = None) -> Response:
        integ = self.get_object()
        data = TransferProposeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transfer = services.ownership_transfer_propose(
            actor=signed_in(request),
            integration=integ,
            to_user=data.validated_data["to_user"],
            role=data.validated_data["role"],
            reason=data.validated_data["reason"],
        )
        return Response(OwnershipTransferSerializer(transfer).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["PUT"],
        summary="Bind the integration to its workload identity, or change it (owners and IAM admins)",
        description="The issuer must be an active trusted issuer; an identity binds one integration only. "
        "A changed identity is unproven until its next accepted token; on a high or critical integration "
        "that is active or pending, it is reviewed again.",
        request=WorkloadBindingInSerializer,
        responses={200: WorkloadBindingSerializer, **_ERRORS, 422: _PROBLEM},
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Remove the workload binding (it can no longer obtain tokens)",
        parameters=[OptionalReasonSerializer],
        request=None,
        responses={204: None, **_ERRORS},
    )
    @action(detail=True, methods=["put", "delete"], url_path="workload-binding", filter_backends=[])
    def workload_binding(self, request: Request, pk: str | None = None) -> Response:
        integ = self.get_object()
        if request.method == "DELETE":
            query = OptionalReasonSerializer(data=request.query_params)
            query.is_valid(raise_exception=True)
            services.workload_binding_remove(
                actor=signed_in(request), integration=integ, reason=query.validated_data["reason"]
            )
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = WorkloadBindingInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        binding = services.workload_binding_set(
            actor=signed_in(request),
            integration=integ,
            issuer=_issuer_named(data.validated_data),
            subject=data.validated_data["subject"],
            required_claims=data.validated_data["required_claims"],
        )
        return Response(WorkloadBindingSerializer(binding).data)

    @extend_schema(
        summary="Every recorded change: who, when, what changed (newest first), a page at a time",
        description=_HISTORY_NOTE,
        parameters=_HISTORY_PARAMETERS,
        responses={200: HistoryPageSerializer, 400: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def history(self, request: Request, pk: str | None = None) -> Response:
        integ = self.get_object()
        size = Pagination().get_page_size(request)
        page = timeline.timeline_page(integ, size=size, cursor=_history_cursor(request))
        url = request.build_absolute_uri()
        return Response(
            HistoryPageSerializer(
                {
                    "next": replace_query_param(url, "cursor", page.older.encode()) if page.older else None,
                    "previous": replace_query_param(url, "cursor", page.newer.encode()) if page.newer else None,
                    "results": page.entries,
                }
            ).data
        )


def _history_cursor(request: Request) -> timeline.Cursor | None:
    """The ``cursor`` parameter read, None when absent or empty. One outside the published
    pattern is a 400 naming it; one inside it that the portal did not write, a 422 (input the
    schema allows but that names nothing, as everywhere in this API)."""
    token = request.query_params.get("cursor", "")
    if token == "":
        return None
    if len(token) > _CURSOR_MAX_LENGTH or not _CURSOR_PATTERN.fullmatch(token):
        raise ValidationError({"cursor": ["Not a cursor: follow the next and previous links."]})
    try:
        return timeline.Cursor.decode(token)
    except timeline.MalformedCursor:
        raise ValidationError(
            {"cursor": ["Not a cursor of this list: follow the next and previous links."]}, code="unprocessable"
        ) from None


@extend_schema_view(
    list=extend_schema(summary="Ownership transfers addressed to you or about integrations you see"),
    retrieve=extend_schema(responses={200: OwnershipTransferSerializer, 404: _PROBLEM}),
)
class OwnershipTransferViewSet(viewsets.ReadOnlyModelViewSet[OwnershipTransfer]):
    serializer_class = OwnershipTransferSerializer
    filterset_class = OwnershipTransferFilter
    ordering = ["-created_at"]
    ordering_fields = ["created_at"]

    def get_queryset(self) -> QuerySet[OwnershipTransfer]:
        return selectors.transfers_for(self.request.user).select_related("from_user", "to_user", "proposed_by")

    @extend_schema(
        summary="The proposed owner accepts",
        request=OptionalReasonSerializer,
        responses={200: OwnershipTransferSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        transfer = self.get_object()
        data = OptionalReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.ownership_transfer_accept(
            actor=signed_in(request), transfer=transfer, reason=data.validated_data["reason"]
        )
        return Response(OwnershipTransferSerializer(transfer).data)

    @extend_schema(
        summary="The proposed owner declines",
        request=OptionalReasonSerializer,
        responses={200: OwnershipTransferSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def decline(self, request: Request, pk: str | None = None) -> Response:
        transfer = self.get_object()
        data = OptionalReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.ownership_transfer_decline(
            actor=signed_in(request), transfer=transfer, reason=data.validated_data["reason"]
        )
        return Response(OwnershipTransferSerializer(transfer).data)


@extend_schema_view(
    list=extend_schema(summary="Grants the caller may see"),
    retrieve=extend_schema(summary="One grant", responses={200: GrantSerializer, 404: _PROBLEM}),
)
# The grants of the integrations the caller sees (any other grant is a 404); IAM admins and the
# integration's owners revoke them (others who can see it get a 403). No docstring: it would become
# every grant operation's description in the schema.
class GrantViewSet(viewsets.ReadOnlyModelViewSet[Grant]):
    serializer_class = GrantSerializer
    filterset_class = GrantFilter
    ordering_fields = ["granted_at", "expires_at", "id"]
    ordering = ["-granted_at", "id"]

    def get_queryset(self) -> QuerySet[Grant]:
        return selectors.grants_listed(self.request.user)

    @extend_schema(
        summary="Revoke a grant at once (IAM admins and the integration's owners)",
        request=GrantRevokeInSerializer,
        responses={200: GrantSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="revoke")
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        grant = self.get_object()
        data = GrantRevokeInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.grant_revoke(actor=signed_in(request), grant=grant, reason=data.validated_data["reason"])
        return Response(GrantSerializer(self.get_queryset().get(pk=grant.pk)).data)


def _issuer_out(issuer: TrustedIssuer, request: Request, code: int = status.HTTP_200_OK) -> Response:
    fresh = selectors.issuers_listed(request.user).get(pk=issuer.pk)
    return Response(TrustedIssuerSerializer(fresh).data, status=code)


@extend_schema_view(
    list=extend_schema(summary="Trusted workload issuers (IAM admins, reviewers and auditors)"),
    retrieve=extend_schema(summary="One trusted issuer", responses={200: TrustedIssuerSerializer, 404: _PROBLEM}),
)
# IAM configuration: IAM admins change it, reviewers and auditors read it, anyone else sees none
# (an empty list, 404 on an id). No docstring: it would become every operation's description.
class TrustedIssuerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[TrustedIssuer]):
    serializer_class = TrustedIssuerSerializer
    filterset_class = TrustedIssuerFilter
    ordering_fields = ["name", "issuer", "id"]
    ordering = ["name", "id"]

    def get_queryset(self) -> QuerySet[TrustedIssuer]:
        return selectors.issuers_listed(self.request.user)

    @extend_schema(
        summary="Add a trusted issuer (IAM admins)",
        description="Fetched keys (OpenID Connect, SPIFFE bundle URL) are fetched on first use, or at once "
        "with `refresh-keys`. Input that fits this schema but breaks a kind's rules (https, spiffe://, "
        "algorithms, public keys only) is a 422 naming the field.",
        request=TrustedIssuerCreateSerializer,
        responses={201: TrustedIssuerSerializer, 400: _PROBLEM, 403: _PROBLEM, 422: _PROBLEM},
    )
    def create(self, request: Request) -> Response:
        # A repeated Idempotency-Key is answered by the API middleware before this runs.
        data = TrustedIssuerCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issuer = services.trusted_issuer_create(actor=signed_in(request), values=dict(data.validated_data))
        return _issuer_out(issuer, request, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a trusted issuer, or (de)activate it with is_active (IAM admins)",
        description="Deactivating is allowed while integrations are bound to it: every token it issues is "
        "then refused.",
        request=TrustedIssuerChangeSerializer,
        responses={200: TrustedIssuerSerializer, **_ERRORS, 422: _PROBLEM},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        issuer = self.get_object()
        data = TrustedIssuerChangeSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        active = values.pop("is_active", None)
        user = signed_in(request)
        if values or active is None:
            issuer = services.trusted_issuer_update(actor=user, issuer=issuer, values=values)
        if active is not None and active != issuer.is_active:
            issuer = services.trusted_issuer_set_active(actor=user, issuer=issuer, active=active)
        return _issuer_out(issuer, request)

    @extend_schema(
        summary="Fetch the issuer's keys now (IAM admins)",
        description="A failed fetch keeps the keys held and is reported in `keys_error`.",
        request=None,
        responses={200: TrustedIssuerSerializer, 403: _PROBLEM, 404: _PROBLEM},
    )
    @action(detail=True, methods=["post"], url_path="refresh-keys")
    def refresh_keys(self, request: Request, pk: str | None = None) -> Response:
        issuer = self.get_object()
        issuer_keys.refresh_asked(actor=signed_in(request), issuer=issuer)
        return _issuer_out(issuer, request)
