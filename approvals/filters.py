from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from approvals.models import AccessRequest, RequestStatus, RequestType, StepAssignment
from governance.filters import DateTimeFilter, IdFilter, StrictBooleanFilter
from inventory.models import Grant, GrantStatus


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
        user = self.request.user if self.request is not None else None
        mine = StepAssignment.objects.filter(user=user, is_open=True).values("step__request_id")
        return queryset.filter(pk__in=mine) if value else queryset.exclude(pk__in=mine)


class GrantFilter(django_filters.FilterSet):
    integration = IdFilter(field_name="integration__id", help_text="Integration id.")
    scope = django_filters.CharFilter(field_name="scope__code", help_text="Scope code, system:name.")
    active = StrictBooleanFilter(method="filter_active", help_text="true: active grants; false: ended ones.")
    expires_before = DateTimeFilter(field_name="expires_at", lookup_expr="lt")

    class Meta:
        model = Grant
        fields = ["integration", "scope", "active", "expires_before"]

    def filter_active(self, queryset: QuerySet[Grant], name: str, value: bool) -> QuerySet[Grant]:
        return queryset.filter(status=GrantStatus.ACTIVE) if value else queryset.exclude(status=GrantStatus.ACTIVE)
