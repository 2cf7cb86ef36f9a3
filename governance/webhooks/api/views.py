"""Webhooks API: IAM admins list, create and delete subscriptions, read
deliveries with every attempt, and redeliver; auditors read. Others get 403 on the lists and 404
on any one subscription or delivery."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from governance.exceptions import NotAllowed, ValidationFailed
from governance.web import signed_in
from governance.webhooks import selectors, services
from governance.webhooks.api.serializers import (
    WebhookDeliverySerializer,
    WebhookSubscriptionCreatedSerializer,
    WebhookSubscriptionCreateSerializer,
    WebhookSubscriptionSerializer,
)
from governance.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from governance.webhooks.permissions import can_view_webhooks


def _require_viewer(request: Request) -> None:
    if not can_view_webhooks(request.user):
        raise NotAllowed("Webhooks are managed by IAM admins (auditors read them).")


@extend_schema_view(
    list=extend_schema(summary="Webhook subscriptions (IAM admins and auditors)"),
    retrieve=extend_schema(summary="One webhook subscription"),
    destroy=extend_schema(
        summary="Delete a subscription (what is still queued for it is given up)", responses={204: None}
    ),
)
class WebhookSubscriptionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[WebhookSubscription],
):
    serializer_class = WebhookSubscriptionSerializer
    ordering_fields = ["created_at", "id", "name"]
    ordering = ["-created_at", "-id"]
    filterset_fields = ["status"]

    def get_queryset(self) -> QuerySet[WebhookSubscription]:
        return selectors.subscriptions_for(self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _require_viewer(request)
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Subscribe a URL to events; the response shows the signing secret this once",
        request=WebhookSubscriptionCreateSerializer,
        responses={201: WebhookSubscriptionCreatedSerializer},
    )
    def create(self, request: Request) -> Response:
        data = WebhookSubscriptionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sub, secret = services.subscription_create(actor=signed_in(request), **data.validated_data)
        out = WebhookSubscriptionCreatedSerializer(sub, context={"secret": secret})
        return Response(out.data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.subscription_delete(actor=signed_in(request), subscription=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="The subscription's deliveries, newest first, with every attempt",
        parameters=[
            OpenApiParameter("status", str, enum=DeliveryStatus.values, description="Only deliveries in this state."),
            OpenApiParameter("event_type", str, description="Only this event type, e.g. grant.revoked."),
        ],
        responses={200: WebhookDeliverySerializer(many=True)},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        sub = self.get_object()
        qs = selectors.deliveries_for(signed_in(request)).filter(subscription=sub).order_by("-id")
        wanted = request.query_params.get("status", "")
        if wanted:
            if wanted not in DeliveryStatus.values:
                raise ValidationFailed.on("status", f"One of: {', '.join(DeliveryStatus.values)}.")
            qs = qs.filter(status=wanted)
        if request.query_params.get("event_type"):
            qs = qs.filter(event_type=request.query_params["event_type"])
        # The pagination of this viewset, over another model's rows.
        assert self.paginator is not None
        page = self.paginator.paginate_queryset(qs, request, view=self)
        assert page is not None
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    def get_serializer_class(self) -> Any:
        if self.action == "deliveries":
            return WebhookDeliverySerializer
        return WebhookSubscriptionSerializer


@extend_schema_view(retrieve=extend_schema(summary="One delivery with every attempt"))
class WebhookDeliveryViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet[WebhookDelivery]):
    serializer_class = WebhookDeliverySerializer

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        return selectors.deliveries_for(self.request.user)

    @extend_schema(
        summary="Send a delivery again now (same event id; IAM admins)",
        request=None,
        responses={202: WebhookDeliverySerializer},
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, pk: str | None = None) -> Response:
        delivery = services.delivery_redeliver(actor=signed_in(request), delivery=self.get_object())
        fresh = self.get_queryset().get(pk=delivery.pk)
        return Response(WebhookDeliverySerializer(fresh).data, status=status.HTTP_202_ACCEPTED)
