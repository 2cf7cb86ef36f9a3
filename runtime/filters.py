"""Filters of the token log and the decision log (django-filter), shared by the pages, the CSV
export and the API endpoints: the same parameters mean the same thing everywhere."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from governance.filters import DateTimeFilter, IdFilter, StrictBooleanFilter
from runtime.models import PolicyDecision, PolicyDecisionPoint, TokenEvent, TokenOutcome
from runtime.policy.schema import ACTIONS

DECISION_CHOICES = [("allow", "Allow"), ("deny", "Deny")]


class TokenEventFilter(django_filters.FilterSet):
    integration = IdFilter(field_name="integration__id", label="Integration id", help_text="Integration id.")
    owner = django_filters.CharFilter(
        field_name="owner__username",
        label="Owner (username)",
        help_text="Username of the accountable owner recorded with the event.",
    )
    outcome = django_filters.ChoiceFilter(choices=TokenOutcome.choices, empty_label="Any outcome")
    error = django_filters.CharFilter(
        label="Error",
        help_text="OAuth error code of a refusal, e.g. invalid_grant, invalid_scope, access_denied.",
    )
    jti = django_filters.CharFilter(label="Token id (jti)", help_text="The issued token's jti.")
    since = DateTimeFilter(
        field_name="at", lookup_expr="gte", label="Since", help_text="From this time on (ISO 8601, inclusive)."
    )
    until = DateTimeFilter(
        field_name="at", lookup_expr="lt", label="Until", help_text="Before this time (ISO 8601, exclusive)."
    )

    class Meta:
        model = TokenEvent
        fields = ["integration", "owner", "outcome", "error", "jti", "since", "until"]


# A shadow result that differs from the enforced decision, found in the JSON's text: its keys are
# version numbers, which Django's key lookups take for array indexes on SQLite. SQLite keeps the
# text Django wrote and PostgreSQL prints jsonb the same way (", " and ": "); the quotes of a
# string inside (a policy id, an error) are escaped, so only a result's own "decision" matches.
_SHADOW_SAYS = {decision: f'"decision": "{decision}"' for decision in ("allow", "deny")}


class PolicyDecisionFilter(django_filters.FilterSet):
    """Filters of the decision log: the decisions page and any endpoint that lists decisions."""

    integration = IdFilter(field_name="integration__id", label="Integration id", help_text="Integration id.")
    decision = django_filters.ChoiceFilter(choices=DECISION_CHOICES, empty_label="Any decision")
    action = django_filters.ChoiceFilter(choices=[(action, action) for action in ACTIONS], empty_label="Any action")
    version = IdFilter(
        field_name="policy_version__number",
        label="Policy version",
        help_text="Number of the enforced policy version that decided.",
    )
    point = django_filters.ChoiceFilter(choices=PolicyDecisionPoint.choices, empty_label="Any point")
    shadow_disagrees = StrictBooleanFilter(
        method="filter_shadow_disagrees",
        label="Shadow disagrees",
        help_text="Only decisions where a shadow version decided otherwise than the enforced one (true), or none (false).",
    )
    since = DateTimeFilter(
        field_name="at", lookup_expr="gte", label="Since", help_text="From this time on (ISO 8601, inclusive)."
    )
    until = DateTimeFilter(
        field_name="at", lookup_expr="lt", label="Until", help_text="Before this time (ISO 8601, exclusive)."
    )

    class Meta:
        model = PolicyDecision
        fields = ["integration", "decision", "action", "version", "point", "shadow_disagrees", "since", "until"]

    def filter_shadow_disagrees(
        self, queryset: QuerySet[PolicyDecision], name: str, value: bool
    ) -> QuerySet[PolicyDecision]:
        disagrees = Q(decision="allow", shadow_text__contains=_SHADOW_SAYS["deny"]) | Q(
            decision="deny", shadow_text__contains=_SHADOW_SAYS["allow"]
        )
        with_text = queryset.alias(shadow_text=Cast("shadow", output_field=TextField()))
        return with_text.filter(disagrees) if value else with_text.exclude(disagrees)
