"""Filters of the inventory's lists (django-filter): the integration list, shared by the page and
the API, and the API's lists of scopes, grants and ownership transfers."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db import connections
from django.db.models import Q, QuerySet, Subquery, Value
from django.db.models.functions import Concat

from governance.filters import DateTimeFilter, IdFilter, StrictBooleanFilter, StrictBooleanWidget
from governance.models import User
from governance.paging import planner_rows
from inventory.choices import (
    AccessLevel,
    DataClassification,
    GrantStatus,
    IdentityStatus,
    IntegrationKind,
    IntegrationStatus,
    IssuerKind,
    OwnerRole,
    RiskTier,
    Sensitivity,
    TransferStatus,
)
from inventory.controls import GRANT_SUBSETS, INTEGRATION_SUBSETS, subset_choices
from inventory.models import Grant, Integration, OwnershipTransfer, Scope, TrustedIssuer
from inventory.selectors import holds_unused_scopes, identity_status_q


class OrphanedWidget(StrictBooleanWidget):
    def __init__(self, attrs: Any = None) -> None:
        super().__init__(attrs)
        self.choices = [("", "Any"), ("true", "Orphaned only"), ("false", "Not orphaned")]


class UnusedScopesWidget(StrictBooleanWidget):
    def __init__(self, attrs: Any = None) -> None:
        super().__init__(attrs)
        self.choices = [("", "Any"), ("true", "Holds unused scopes"), ("false", "Uses all it holds")]


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
    identity = django_filters.ChoiceFilter(
        choices=IdentityStatus.choices,
        method="by_identity",
        label="Workload identity",
        empty_label="Any identity",
        help_text="proven: bound and proved by a token; bound: never proved yet; declared: free text only; "
        "none: nothing (it cannot obtain tokens).",
    )
    unused_scopes = StrictBooleanFilter(
        method="by_unused_scopes",
        label="Holds unused scopes",
        widget=UnusedScopesWidget,
        help_text="true: holds an active grant not used in the last 30 days (a grant never used counts once "
        "it is older than that); false: every active grant was used.",
    )
    evidence = django_filters.ChoiceFilter(
        choices=subset_choices(INTEGRATION_SUBSETS),
        method="by_evidence",
        label="Control evidence",
        empty_label="Any",
        help_text="Only the integrations behind one of the controls' evidence figures (those it counts).",
    )

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
            "identity",
            "unused_scopes",
            "evidence",
        ]

    def search(self, qs: QuerySet[Integration], name: str, value: str) -> QuerySet[Integration]:
        # One lower-cased column (see Integration.search_text), matched case-sensitively: no
        # UPPER() per row, and PostgreSQL's trigram index answers LIKE '%word%'.
        for word in value.lower().split()[:5]:
            qs = qs.filter(search_text__contains=word)
        return qs

    def by_owner(self, qs: QuerySet[Integration], name: str, value: str) -> QuerySet[Integration]:
        # A UNION of the three owner columns' index lookups, for the person's id (found once): an
        # OR over joined usernames read every integration (9 s at 500,000 on PostgreSQL).
        person = User.objects.filter(username=value).values("pk")
        mine = Integration.objects.order_by().values("pk")
        first, *others = (mine.filter(**{f"{role}__in": person}) for role in OwnerRole.values)
        return qs.filter(pk__in=first.union(*others))

    def by_scope(self, qs: QuerySet[Integration], name: str, value: str) -> QuerySet[Integration]:
        # A subquery, not a join: no duplicate rows, no DISTINCT over the whole list.
        return qs.filter(
            pk__in=Integration.requested_scopes.through.objects.filter(scope__code=value).values("integration_id")
        )

    def by_identity(self, qs: QuerySet[Integration], name: str, value: str) -> QuerySet[Integration]:
        return qs.filter(identity_status_q(value))

    def by_unused_scopes(self, qs: QuerySet[Integration], name: str, value: bool) -> QuerySet[Integration]:
        return qs.filter(holds_unused_scopes()) if value else qs.exclude(holds_unused_scopes())

    def by_classification(self, qs: QuerySet[Integration], name: str, value: Any) -> QuerySet[Integration]:
        return qs.filter(data_classifications__icontains=f'"{value}"')

    def by_evidence(self, qs: QuerySet[Integration], name: str, value: str) -> QuerySet[Integration]:
        return qs.filter(INTEGRATION_SUBSETS[value].condition())


# Sorting offered on the page and the API (?ordering=).
ORDERING_FIELDS = ["name", "status", "risk_score", "risk_tier", "kind", "created_at", "updated_at", "vendor"]

# A word search matching up to this many integrations is sorted by name after the trigram index
# found its matches, rather than found by walking the name index: when the matches cluster in
# name order (names starting with the word), that walk reads most of the index to fill one page.
# Beyond it, walking is the cheaper bet (a broad word fills a page within a few rows). No index
# carries the search text itself: it can be longer than a btree entry may be.
SEARCH_SORTED_UP_TO = 100_000


def ordered_for_search(qs: QuerySet[Any], words: str) -> QuerySet[Any]:
    """``qs`` (sorted by name, as the list's default) sorted so that PostgreSQL finds a word
    search's matches first and sorts them, when the planner expects at most
    ``SEARCH_SORTED_UP_TO``; anything else unchanged (SQLite has no index to find words with)."""
    if not words.strip() or connections[qs.db].vendor != "postgresql":
        return qs
    if tuple(qs.query.order_by) != ("name", "id") or planner_rows(qs) > SEARCH_SORTED_UP_TO:
        return qs
    # The same order as the name index's, written so that it cannot be read from that index.
    return qs.order_by(Concat("name", Value("")).asc(), "id")


class ScopeFilter(django_filters.FilterSet):
    system = django_filters.CharFilter(field_name="system__code", help_text="Resource system code, e.g. msgraph.")
    sensitivity = django_filters.ChoiceFilter(choices=Sensitivity.choices)
    access = django_filters.ChoiceFilter(choices=AccessLevel.choices)
    q = django_filters.CharFilter(method="search", help_text="Words in the code, name or description.")

    class Meta:
        model = Scope
        fields = ["system", "sensitivity", "access", "q"]

    def search(self, qs: QuerySet[Scope], name: str, value: str) -> QuerySet[Scope]:
        for word in value.split()[:5]:
            qs = qs.filter(Q(code__icontains=word) | Q(name__icontains=word) | Q(description__icontains=word))
        return qs


class GrantFilter(django_filters.FilterSet):
    integration = IdFilter(field_name="integration__id", help_text="Integration id.")
    scope = django_filters.CharFilter(method="by_scope", help_text="Scope code, system:name.")
    active = StrictBooleanFilter(method="filter_active", help_text="true: active grants; false: ended ones.")
    expires_before = DateTimeFilter(field_name="expires_at", lookup_expr="lt")
    evidence = django_filters.ChoiceFilter(
        choices=subset_choices(GRANT_SUBSETS),
        method="by_evidence",
        help_text="Only the grants behind one of the controls' evidence figures (those it counts).",
    )

    class Meta:
        model = Grant
        fields = ["integration", "scope", "active", "expires_before", "evidence"]

    def by_scope(self, queryset: QuerySet[Grant], name: str, value: str) -> QuerySet[Grant]:
        # The scope's id found first (one row): the grants then come in the list's order from
        # the (scope, granted) index, where a join on the code walked every grant by date.
        return queryset.filter(scope_id=Subquery(Scope.objects.filter(code=value).values("pk")[:1]))

    def filter_active(self, queryset: QuerySet[Grant], name: str, value: bool) -> QuerySet[Grant]:
        return queryset.filter(status=GrantStatus.ACTIVE) if value else queryset.exclude(status=GrantStatus.ACTIVE)

    def by_evidence(self, queryset: QuerySet[Grant], name: str, value: str) -> QuerySet[Grant]:
        return queryset.filter(GRANT_SUBSETS[value].condition())


class OwnershipTransferFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=TransferStatus.choices)
    # An unknown id lists nothing (a ModelChoiceFilter answered it with a 400).
    integration = IdFilter(field_name="integration__id", help_text="Integration id.")

    class Meta:
        model = OwnershipTransfer
        fields = ["status", "integration"]


class TrustedIssuerFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=IssuerKind.choices)
    is_active = StrictBooleanFilter(help_text="true: active issuers; false: deactivated ones.")

    class Meta:
        model = TrustedIssuer
        fields = ["kind", "is_active"]
