"""Runtime API: the token log, read-only, through the same visibility gate and filters as the
activity page."""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import viewsets

from runtime import selectors
from runtime.api.serializers import TokenEventSerializer
from runtime.filters import TokenEventFilter
from runtime.models import TokenEvent

_PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")


@extend_schema_view(
    list=extend_schema(
        summary="Token issuances and refusals the caller may see, newest first",
        description=(
            "Every request to `/oauth/token`: the integration that proved its identity, its accountable owner, "
            "the user it acted for, the audience and scopes asked and given, the token's `jti` and expiry, or "
            "the error and reason of a refusal. Reviewers, IAM admins and auditors see every event; other "
            "callers the events of the integrations they own."
        ),
    ),
    retrieve=extend_schema(summary="One token event", responses={200: TokenEventSerializer, 404: _PROBLEM}),
)
class TokenEventViewSet(viewsets.ReadOnlyModelViewSet[TokenEvent]):
    serializer_class = TokenEventSerializer
    filterset_class = TokenEventFilter
    # Newest first, always: the log is read by time (filter with since/until), not re-sorted.
    filter_backends = [DjangoFilterBackend]

    def get_queryset(self) -> QuerySet[TokenEvent]:
        return selectors.token_events_listed(self.request.user)
