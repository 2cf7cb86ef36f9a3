"""The control catalog over the API, read only: ``/api/v1/controls/`` (each control with its live
evidence and the framework items it answers) and ``/api/v1/frameworks/`` (each framework with its
coverage, and one framework item by item with the controls answering it).

Who may read is the pages' rule (``governance.controls.catalog.may_see``): IAM admins,
reviewers and auditors; anyone else gets a 404 problem, an anonymous call a 401. Each call
measures every control it shows once: a fixed number of queries however large the inventory."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from governance.controls import catalog, overview
from governance.controls.api.serializers import (
    APP_PATTERN,
    CONTROL_STATUSES,
    ITEM_STATUSES,
    ControlQuerySerializer,
    ControlSerializer,
    FrameworkDetailSerializer,
    FrameworkItemQuerySerializer,
    FrameworkSerializer,
)
from governance.exceptions import NotFound

PROBLEM = OpenApiResponse(description="Problem details (RFC 9457).")
# Control ids are lower-case words joined by hyphens; framework slugs may carry an edition's dot.
CONTROL_ID = OpenApiParameter(
    "id",
    {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "maxLength": 80},
    OpenApiParameter.PATH,
    description="The control's id, e.g. named-owners.",
    examples=[OpenApiExample("Named owners", value="named-owners")],
)
FRAMEWORK_SLUG = OpenApiParameter(
    "slug",
    {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$", "maxLength": 60},
    OpenApiParameter.PATH,
    description="The framework's slug, e.g. nist-csf-2.0.",
    examples=[
        OpenApiExample("NIST CSF 2.0", value="nist-csf-2.0"),
        OpenApiExample("OWASP Agentic Top 10 2026", value="owasp-agentic-2026"),
    ],
)
CONTROL_FILTERS = [
    OpenApiParameter(
        "status",
        {"type": "string", "enum": [overview.GAPS, *CONTROL_STATUSES]},
        description="Only controls with this status, or gaps (not met or partly met).",
    ),
    OpenApiParameter(
        "app",
        {"type": "string", "pattern": APP_PATTERN},
        description="Only the controls this app implements (e.g. inventory, approvals, runtime).",
    ),
]
ITEM_FILTER = OpenApiParameter(
    "status",
    {"type": "string", "enum": [overview.GAPS, *ITEM_STATUSES]},
    description="Only items with this status, or gaps (not met, partly met or no control).",
)


class _CatalogReader(viewsets.GenericViewSet[Any]):
    """Reads for those who may see the catalog; its rows are views of the registry, the data
    file and the organisation's additions, not a queryset."""

    filter_backends: list[Any] = []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication first: anonymous is a 401
        if not catalog.may_see(request.user):
            raise NotFound("Not found.")

    def _query(self, serializer_class: type[Any]) -> dict[str, str]:
        query = serializer_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)


@extend_schema_view(
    list=extend_schema(
        summary="The controls with their live evidence, gaps first (IAM admins, reviewers and auditors)",
        parameters=CONTROL_FILTERS,
        responses={200: ControlSerializer(many=True), 404: PROBLEM},
    ),
    retrieve=extend_schema(
        summary="One control with its live evidence and the framework items it answers",
        parameters=[CONTROL_ID],
        responses={200: ControlSerializer, 404: PROBLEM},
    ),
)
class ControlViewSet(_CatalogReader):
    """The portal's controls, each measured now: its figures (value, the threshold in force,
    status, the records behind it) and the framework items it answers. A control's status is
    its worst applicable figure's."""

    serializer_class = ControlSerializer
    lookup_field = "id"
    lookup_value_regex = "[^/]+"

    def list(self, request: Request) -> Response:
        query = self._query(ControlQuerySerializer)
        views = overview.filter_controls(
            overview.control_views(), status=query.get("status", ""), app=query.get("app", "")
        )
        page = self.paginate_queryset(views)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, **kwargs: str) -> Response:
        view = overview.control_view(kwargs["id"])
        if view is None:
            raise NotFound("No such control.")
        return Response(self.get_serializer(view).data)


@extend_schema_view(
    list=extend_schema(
        summary="Every framework, built in and the organisation's, with its coverage",
        responses={200: FrameworkSerializer(many=True), 404: PROBLEM},
    ),
    retrieve=extend_schema(
        summary="One framework's items, gaps first, each with the controls answering it and their evidence",
        parameters=[FRAMEWORK_SLUG, ITEM_FILTER],
        responses={200: FrameworkDetailSerializer, 404: PROBLEM},
    ),
)
class FrameworkViewSet(_CatalogReader):
    """The frameworks the controls are mapped to, built in and the organisation's. An item is
    met when every applicable control answering it is met, not met when none is even partly
    met, partly met in between; no_control when nothing answers it."""

    serializer_class = FrameworkSerializer
    lookup_field = "slug"
    lookup_value_regex = "[^/]+"

    def get_serializer_class(self) -> type[Any]:
        return FrameworkDetailSerializer if self.action == "retrieve" else FrameworkSerializer

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(overview.framework_views())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, **kwargs: str) -> Response:
        status = self._query(FrameworkItemQuerySerializer).get("status", "")
        view = overview.framework_view(kwargs["slug"])
        if view is None:
            raise NotFound("No such framework.")
        context = {**self.get_serializer_context(), "item_status": status}
        return Response(FrameworkDetailSerializer(view, context=context).data)
