"""Filters of the token log (django-filter), shared by the activity page, its CSV export and the
``/api/v1/token-events/`` endpoint: the same parameters mean the same thing everywhere."""

from __future__ import annotations

import django_filters

from governance.filters import DateTimeFilter, IdFilter
from runtime.models import TokenEvent, TokenOutcome


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
