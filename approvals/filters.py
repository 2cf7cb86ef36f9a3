from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from approvals.models import AccessRequest, RequestStatus, RequestType
from approvals.selectors import assigned_to
from governance.filters import IdFilter, StrictBooleanFilter


class AccessRequestFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RequestStatus.choices)
    type = django_filters.ChoiceFilter(choices=RequestType.choices)
    integration = IdFilter(field_name="integration__id", help_text="Integration id.")
    ticket_ref = django_filters.CharFilter(help_text="Exact ticket reference (e.g. CHG0012345).")
    assigned_to_me = StrictBooleanFilter(
        method="filter_assigned", help_text="true: only requests with a step waiting for the caller's decision."
    )

    class Meta:
        model = AccessRequest
        fields = ["status", "type", "integration", "ticket_ref", "assigned_to_me"]

    def filter_assigned(self, queryset: QuerySet[AccessRequest], name: str, value: bool) -> QuerySet[AccessRequest]:
        mine = assigned_to(self.request.user if self.request is not None else None)
        return queryset.filter(mine) if value else queryset.exclude(mine)
