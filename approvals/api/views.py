"""Access requests over the API. Reads are declarative viewsets over the selectors;
each workflow action is its own endpoint: input serializer -> service (which decides who may act)
-> output serializer."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from approvals import selectors, services
from approvals.api.serializers import (
    AccessRequestDecisionInSerializer,
    AccessRequestDecisionSerializer,
    AccessRequestDetailSerializer,
    AccessRequestSerializer,
    AccessRequestWithdrawInSerializer,
)
from approvals.filters import AccessRequestFilter
from approvals.models import AccessRequest
from governance.exceptions import Unprocessable
from governance.web import signed_in
from inventory.selectors import scopes_for

PROBLEM = OpenApiResponse(description="Problem details (RFC 9457).")
ERRORS = {400: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM}


@extend_schema_view(
    list=extend_schema(
        summary="Access requests the caller may see", responses={200: AccessRequestSerializer(many=True)}
    ),
    retrieve=extend_schema(
        summary="One access request with its steps and decisions",
        responses={200: AccessRequestDetailSerializer, 404: PROBLEM},
    ),
)
class AccessRequestViewSet(viewsets.ReadOnlyModelViewSet[AccessRequest]):
    filterset_class = AccessRequestFilter
    ordering_fields = ["created_at", "id", "updated_at"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> QuerySet[AccessRequest]:
        if self.action == "list":
            return selectors.access_requests_listed(self.request.user)
        return selectors.access_request_detail(self.request.user)

    def get_serializer_class(self) -> Any:
        return AccessRequestSerializer if self.action == "list" else AccessRequestDetailSerializer

    @extend_schema(
        summary="Decide the step assigned to the caller",
        request=AccessRequestDecisionInSerializer,
        responses={201: AccessRequestDecisionSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="decisions")
    def decisions(self, request: Request, pk: str | None = None) -> Response:
        # A repeated Idempotency-Key is answered by the API's idempotency layer, for every POST.
        req = self.get_object()
        data = AccessRequestDecisionInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        codes = data.validated_data.get("approved_scopes")
        scopes = None
        if codes is not None:
            scopes = list(scopes_for(request.user).filter(code__in=codes))
            missing = sorted(set(codes) - {s.code for s in scopes})
            if missing:
                raise Unprocessable.on("approved_scopes", f"Unknown scope(s): {', '.join(missing)}.")
        made = services.request_decide(
            actor=signed_in(request),
            request=req,
            decision=data.validated_data["decision"],
            comment=data.validated_data["comment"],
            approved_scopes=scopes,
            expires_at=data.validated_data.get("expires_at"),
            step_id=data.validated_data.get("step"),
        )
        return Response(AccessRequestDecisionSerializer(made).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The requester withdraws the request",
        request=AccessRequestWithdrawInSerializer,
        responses={200: AccessRequestDetailSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="withdraw")
    def withdraw(self, request: Request, pk: str | None = None) -> Response:
        req = self.get_object()
        data = AccessRequestWithdrawInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.request_withdraw(actor=signed_in(request), request=req, reason=data.validated_data["reason"])
        fresh = selectors.access_request_detail(request.user).get(pk=req.pk)
        return Response(AccessRequestDetailSerializer(fresh).data)
