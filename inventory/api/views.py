"""Inventory API: declarative reads over the selectors with filtersets; each change its own
endpoint: input serializer -> service (which checks who may) -> output serializer."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from governance.web import signed_in
from inventory import selectors, services
from inventory.api.serializers import (
    GrantRevokeInSerializer,
    GrantSerializer,
    HistoryEntrySerializer,
    IntegrationCreateSerializer,
    IntegrationSerializer,
    IntegrationWriteSerializer,
    OptionalReasonSerializer,
    OwnershipTransferSerializer,
    ReasonSerializer,
    ScopeSerializer,
    TransferProposeSerializer,
)
from inventory.filters import ORDERING_FIELDS, GrantFilter, IntegrationFilter, OwnershipTransferFilter, ScopeFilter
from inventory.models import Grant, Integration, OwnershipTransfer, Scope

_PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")
_ERRORS = {400: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 409: _PROBLEM}
_OWNERS_NOTE = (
    "Owners are usernames. Naming another person as business, technical or backup owner takes their "
    "consent: the role is proposed to them (an ownership transfer, with an email) and changes when they "
    "accept; until then a new integration's business owner is you. `pending_transfers` in the answer lists "
    "what waits. IAM admins name business users directly; reviewers and auditors are always asked."
)


class ScopeViewSet(viewsets.ReadOnlyModelViewSet[Scope]):
    """The scope catalog, kept by IAM admins in the portal; every signed-in caller reads it."""

    serializer_class = ScopeSerializer
    filterset_class = ScopeFilter
    lookup_field = "code"
    lookup_value_regex = "[^/]+"
    ordering_fields = ["code", "sensitivity", "access"]
    ordering = ["code"]

    def get_queryset(self) -> QuerySet[Scope]:
        return selectors.scopes_for(self.request.user)


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
    return values


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
        page_ids = self.paginate_queryset(ids)
        assert page_ids is not None
        listed = selectors.integrations_listed(request.user).prefetch_related(selectors.open_transfers_prefetch())
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
        summary="Every recorded change: who, when, what changed (newest first)",
        responses={200: HistoryEntrySerializer(many=True), 404: _PROBLEM},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def history(self, request: Request, pk: str | None = None) -> Response:
        integ = self.get_object()
        entries = selectors.integration_timeline(integ)
        return Response(HistoryEntrySerializer(entries, many=True).data)


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
