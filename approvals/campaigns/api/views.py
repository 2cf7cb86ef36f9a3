"""Campaigns, definitions and review items over the API. Reads are viewsets over the selectors;
each action its own endpoint: input serializer -> service -> output serializer. The services
decide who may act; ``Idempotency-Key`` is handled for every POST by the API's idempotency
middleware (a retried POST replays its first response)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from approvals.campaigns import selectors, services
from approvals.campaigns.api.serializers import (
    CampaignCreateSerializer,
    CampaignDefinitionSerializer,
    CampaignSerializer,
    DecisionInSerializer,
    ReviewItemSerializer,
)
from approvals.campaigns.models import Campaign, CampaignDefinition, CampaignStatus, ItemStatus, ReviewItem
from governance.exceptions import NotAllowed, NotFound
from governance.filters import IdFilter, StrictBooleanFilter
from governance.web import signed_in

PROBLEM = OpenApiResponse(description="Problem details (RFC 9457).")
ERRORS = {400: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM}


# Ids as whole numbers matched by nothing when unknown (a list filter, not a lookup that must
# succeed): a ModelChoiceFilter answered an unknown id with a 400 the schema could not foresee.
class CampaignFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=CampaignStatus.choices)
    definition = IdFilter(field_name="definition__id", help_text="Campaign definition id.")

    class Meta:
        model = Campaign
        fields = ["status", "definition"]


class ReviewItemFilter(django_filters.FilterSet):
    campaign = IdFilter(field_name="campaign__id", help_text="Campaign id.")
    status = django_filters.ChoiceFilter(choices=ItemStatus.choices)
    integration = IdFilter(field_name="integration__id", help_text="Integration id.")
    assigned_to_me = StrictBooleanFilter(
        method="filter_assigned", help_text="true: only items waiting for the caller's decision; false: the others."
    )

    class Meta:
        model = ReviewItem
        fields = ["campaign", "status", "integration", "assigned_to_me"]

    def filter_assigned(self, queryset: QuerySet[ReviewItem], name: str, value: bool) -> QuerySet[ReviewItem]:
        mine = selectors.my_open_items(self.request.user if self.request is not None else None).values("pk")
        return queryset.filter(pk__in=mine) if value else queryset.exclude(pk__in=mine)


@extend_schema_view(
    list=extend_schema(summary="Campaign definitions (IAM admins and auditors)"),
    retrieve=extend_schema(
        summary="One campaign definition", responses={200: CampaignDefinitionSerializer, 404: PROBLEM}
    ),
    create=extend_schema(
        summary="Define a campaign (IAM admins)", responses={201: CampaignDefinitionSerializer, **ERRORS}
    ),
    partial_update=extend_schema(
        summary="Change a definition (IAM admins)", responses={200: CampaignDefinitionSerializer, **ERRORS}
    ),
    update=extend_schema(
        summary="Replace a definition (IAM admins)", responses={200: CampaignDefinitionSerializer, **ERRORS}
    ),
)
class CampaignDefinitionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[CampaignDefinition],
):
    serializer_class = CampaignDefinitionSerializer
    ordering_fields = ["name", "id"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[CampaignDefinition]:
        return (
            selectors.definitions_for(self.request.user)
            .select_related("owner", "reviewer_group", "fallback_group", "fallback_user", "second_stage_group")
            .prefetch_related("business_owners", "resource_systems")
        )

    def _values(self, serializer: Any) -> dict[str, Any]:
        return dict(serializer.validated_data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        saved = services.definition_save(actor=signed_in(request), values=self._values(serializer))
        return Response(self.get_serializer(self.get_queryset().get(pk=saved.pk)).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        definition = self.get_object()
        serializer = self.get_serializer(definition, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        services.definition_save(actor=signed_in(request), values=self._values(serializer), definition=definition)
        return Response(self.get_serializer(self.get_queryset().get(pk=definition.pk)).data)


@extend_schema_view(
    list=extend_schema(summary="Campaigns the caller may see"),
    retrieve=extend_schema(
        summary="One campaign with its launch progress", responses={200: CampaignSerializer, 404: PROBLEM}
    ),
)
class CampaignViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Campaign]):
    serializer_class = CampaignSerializer
    filterset_class = CampaignFilter
    ordering_fields = ["created_at", "deadline", "id"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> QuerySet[Campaign]:
        return selectors.campaigns_listed(self.request.user)

    @extend_schema(
        summary="Start a campaign run from a definition (IAM admins)",
        request=CampaignCreateSerializer,
        responses={201: CampaignSerializer, **ERRORS},
    )
    def create(self, request: Request) -> Response:
        data = CampaignCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # A definition the caller cannot see is one they may not start (403, not 404: its id
        # came in the body, not the path).
        definition = selectors.definitions_for(request.user).filter(pk=data.validated_data["definition"].pk).first()
        if definition is None:
            raise NotAllowed("Only IAM admins start campaigns.")
        actor = signed_in(request)
        campaign = services.campaign_create(
            actor=actor, definition=definition, name=data.validated_data.get("name", "")
        )
        if data.validated_data.get("launch"):
            campaign = services.campaign_launch_request(actor=actor, campaign=campaign)
        return Response(
            CampaignSerializer(self.get_queryset().get(pk=campaign.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Launch now: returns at once, the items are made in the background",
        request=None,
        responses={202: CampaignSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="launch")
    def launch(self, request: Request, pk: str | None = None) -> Response:
        campaign = self.get_object()
        services.campaign_launch_request(actor=signed_in(request), campaign=campaign)
        return Response(
            CampaignSerializer(self.get_queryset().get(pk=campaign.pk)).data, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(
        summary="The campaign's review items the caller may see",
        parameters=[
            OpenApiParameter(
                "status", str, enum=ItemStatus.values, required=False, description="Only items in this state."
            )
        ],
        responses={200: ReviewItemSerializer(many=True), 404: PROBLEM},
    )
    @action(detail=True, methods=["get"], url_path="items", filter_backends=[])
    def items(self, request: Request, pk: str | None = None) -> Response:
        # Not get_object(): the campaign filters (?status=) are the items' filters here.
        campaign = self.get_queryset().filter(pk=int(pk)).first() if pk and pk.isdigit() else None
        if campaign is None:
            raise NotFound("No such campaign.")
        qs = _items_listed(request.user).filter(campaign=campaign).order_by("pk")
        wanted = request.query_params.get("status", "")
        if wanted:
            if wanted not in ItemStatus.values:
                raise ValidationError({"status": [f"One of: {', '.join(ItemStatus.values)}."]})
            qs = qs.filter(status=wanted)
        # The items, paginated like every list (the view's own paginate_queryset is typed for campaigns).
        paginator = self.paginator
        assert paginator is not None
        page = paginator.paginate_queryset(qs, request, view=self)
        return self.get_paginated_response(ReviewItemSerializer(page, many=True).data)


def _items_listed(user: Any) -> QuerySet[ReviewItem]:
    return selectors.review_items_for(user).select_related(
        "integration", "grant__scope", "reviewer", "reviewer_group", "decided_by"
    )


@extend_schema_view(
    list=extend_schema(summary="Review items the caller may see (assigned_to_me=true: waiting for me)"),
    retrieve=extend_schema(summary="One review item", responses={200: ReviewItemSerializer, 404: PROBLEM}),
)
class ReviewItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ReviewItem]):
    serializer_class = ReviewItemSerializer
    filterset_class = ReviewItemFilter
    ordering_fields = ["id", "decided_at"]
    ordering = ["id"]

    def get_queryset(self) -> QuerySet[ReviewItem]:
        return _items_listed(self.request.user)

    @extend_schema(
        summary="Certify or revoke the item (revoke needs a comment)",
        request=DecisionInSerializer,
        responses={200: ReviewItemSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="decision")
    def decision(self, request: Request, pk: str | None = None) -> Response:
        item = _items_listed(request.user).filter(pk=int(pk)).first() if pk and pk.isdigit() else None
        if item is None:
            raise NotFound("No such review item.")
        data = DecisionInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.review_item_decide(
            actor=signed_in(request),
            item=item,
            decision=data.validated_data["decision"],
            comment=data.validated_data["comment"],
        )
        return Response(ReviewItemSerializer(_items_listed(request.user).get(pk=item.pk)).data)
