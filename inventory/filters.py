"""Filters of the integration list, shared by the page and the API (django-filter)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet

from governance.filters import StrictBooleanFilter, StrictBooleanWidget
from inventory.models import (
    DataClassification,
    Integration,
    IntegrationKind,
    IntegrationStatus,
    RiskTier,
)


class OrphanedWidget(StrictBooleanWidget):
    def __init__(self, attrs: Any = None) -> None:
        super().__init__(attrs)
        self.choices = [("", "Any"), ("true", "Orphaned only"), ("false", "Not orphaned")]


class IntegrationFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search", label="Search", help_text="Words in the name, purpose, vendor, ticket or tags."
    )
    status = django_filters.ChoiceFilter(choices=IntegrationStatus.choices, empty_label="Any status")
    risk_tier = django_filters.ChoiceFilter(choices=RiskTier.choices, label="Risk tier", empty_label="Any tier")
    kind = django_filters.ChoiceFilter(choices=IntegrationKind.choices, empty_label="Any kind")
    owner = django_filters.CharFilter(
        method="by_owner", label="Owner (username)", help_text="Username of any of its owners."
    )
    vendor = django_filters.CharFilter(
        field_name="vendor", lookup_expr="icontains", label="Vendor", help_text="Vendor name (part of it)."
    )
    scope = django_filters.CharFilter(
        method="by_scope", label="Scope code", help_text="Scope code it requests, e.g. msgraph:Mail.Read."
    )
    data_classification = django_filters.ChoiceFilter(
        choices=DataClassification.choices,
        method="by_classification",
        label="Data classification",
        empty_label="Any data",
    )
    orphaned = StrictBooleanFilter(
        widget=OrphanedWidget, help_text="Only integrations whose owner left (true) or not (false)."
    )
    ticket_ref = django_filters.CharFilter(label="Ticket", help_text="Exact ticket reference.")

    class Meta:
        model = Integration
        fields = [
            "q",
            "status",
            "risk_tier",
            "kind",
            "owner",
            "vendor",
            "scope",
            "data_classification",
            "orphaned",
            "ticket_ref",
        ]

    def search(self, qs: QuerySet[Integration], name: str, value: str) -> QuerySet[Integration]:
        # One lower-cased column (see Integration.search_text), matched case-sensitively: no
        # UPPER() per row, and PostgreSQL's trigram index answers LIKE '%word%'.
        for word in value.lower().split()[:5]:
            qs = qs.filter(search_text__contains=word)
        return qs

    def by_owner(self, qs: QuerySet[Integration], name: str, value: str) -> QuerySet[Integration]:
        return qs.filter(
            Q(business_owner__username=value) | Q(technical_owner__username=value) | Q(backup_owner__username=value)
        )

    def by_scope(self, qs: QuerySet[Integration], name: str, value: str) -> QuerySet[Integration]:
        # A subquery, not a join: no duplicate rows, no DISTINCT over the whole list.
        return qs.filter(
            pk__in=Integration.requested_scopes.through.objects.filter(scope__code=value).values("integration_id")
        )

    def by_classification(self, qs: QuerySet[Integration], name: str, value: Any) -> QuerySet[Integration]:
        return qs.filter(data_classifications__icontains=f'"{value}"')


# Sorting offered on the page and the API (?ordering=).
ORDERING_FIELDS = ["name", "status", "risk_score", "risk_tier", "kind", "created_at", "updated_at", "vendor"]
