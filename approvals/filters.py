from __future__ import annotations

from datetime import datetime

import django_filters
from django.db.models import Q, QuerySet

from approvals.controls import decisions_checked, steps_decided_since, steps_overdue
from approvals.models import AccessRequest, RequestStatus, RequestType
from approvals.selectors import assigned_to
from governance.controls.kernel_controls import when
from governance.filters import DateTimeFilter, IdFilter, StrictBooleanFilter


class RequestEvidenceFilter(django_filters.FilterSet):
    """The filters the controls' evidence links to (``approvals.controls``): each selects exactly
    the requests behind a figure, with the same query the figure counts with."""

    closed_since = DateTimeFilter(
        field_name="closed_at", lookup_expr="gte", help_text="Closed (approved, rejected...) at or after this time."
    )
    step_decided_since = DateTimeFilter(
        method="filter_step_decided_since", help_text="With an approval step decided at or after this time."
    )
    overdue = StrictBooleanFilter(
        method="filter_overdue", help_text="true: with a step waiting past its due time now; false: none."
    )
    sod_conflict_since = DateTimeFilter(
        method="filter_sod_conflict_since",
        help_text="With a decision made at or after this time by someone separation of duties keeps out.",
    )

    class Meta:
        model = AccessRequest
        fields = ["closed_since", "step_decided_since", "overdue", "sod_conflict_since"]

    def describe(self) -> str:
        """The evidence filters in force, as a sentence for the list's heading (empty: none)."""
        if not self.is_valid():
            return ""
        chosen = self.form.cleaned_data
        parts = [
            f"{label} {when(chosen[name])}"
            for name, label in (
                ("closed_since", "closed since"),
                ("step_decided_since", "with a step decided since"),
                ("sod_conflict_since", "with a decision breaking separation of duties since"),
            )
            if chosen.get(name) is not None
        ]
        if chosen.get("overdue") is not None:
            parts.append("with a step overdue now" if chosen["overdue"] else "with no step overdue now")
        return f"Requests {', '.join(parts)}." if parts else ""

    def filter_step_decided_since(
        self, queryset: QuerySet[AccessRequest], name: str, value: datetime
    ) -> QuerySet[AccessRequest]:
        return queryset.filter(pk__in=steps_decided_since(value).values("request_id"))

    def filter_overdue(self, queryset: QuerySet[AccessRequest], name: str, value: bool) -> QuerySet[AccessRequest]:
        waiting = Q(pk__in=steps_overdue().values("request_id"))
        return queryset.filter(waiting) if value else queryset.exclude(waiting)

    def filter_sod_conflict_since(
        self, queryset: QuerySet[AccessRequest], name: str, value: datetime
    ) -> QuerySet[AccessRequest]:
        return queryset.filter(pk__in=decisions_checked(value).filter(Q(conflict=True)).values("request_id"))


class AccessRequestFilter(RequestEvidenceFilter):
    status = django_filters.ChoiceFilter(choices=RequestStatus.choices)
    type = django_filters.ChoiceFilter(choices=RequestType.choices)
    integration = IdFilter(field_name="integration__id", help_text="Integration id.")
    ticket_ref = django_filters.CharFilter(help_text="Exact ticket reference (e.g. CHG0012345).")
    assigned_to_me = StrictBooleanFilter(
        method="filter_assigned", help_text="true: only requests with a step waiting for the caller's decision."
    )

    class Meta:
        model = AccessRequest
        fields = [
            "status",
            "type",
            "integration",
            "ticket_ref",
            "assigned_to_me",
            "closed_since",
            "step_decided_since",
            "overdue",
            "sod_conflict_since",
        ]

    def filter_assigned(self, queryset: QuerySet[AccessRequest], name: str, value: bool) -> QuerySet[AccessRequest]:
        mine = assigned_to(self.request.user if self.request is not None else None)
        return queryset.filter(mine) if value else queryset.exclude(mine)
