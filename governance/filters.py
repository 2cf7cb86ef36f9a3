import datetime as dt
from typing import Any

import django_filters
from django import forms
from django.utils import timezone
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from governance.history import action_choice_label
from governance.models import ActorKind, AuditEvent
from governance.targets import kind_name
from governance.validators import INT64_MAX


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": INT64_MAX})
class IdFilter(django_filters.NumberFilter):
    """A filter on an object id: a whole number from 1 to 2**63-1, or the request gets a 400 naming
    the parameter (as the schema says). An unknown id is matched by nothing.

    NumberFilter alone accepts any decimal (``-1.76e+231``), which reaches the database as an
    integer too large for it. Point ``field_name`` at the id through the relation
    (``integration__id``, no join).
    """

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", INT64_MAX)
        super().__init__(*args, **kwargs)


class StrictBooleanWidget(django_filters.widgets.BooleanWidget):
    """``true`` or ``false`` (any case) become booleans, empty means not given; anything else is
    handed to the field as it is, to be refused (django-filter's widget turns it into "not given",
    so ``?active=maybe`` silently listed everything)."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        value = data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return value


class StrictBooleanField(forms.NullBooleanField):
    widget = StrictBooleanWidget

    # None is "not given", as in NullBooleanField, whose stub makes the same exception to
    # BooleanField's bool.
    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]
        if value is None or isinstance(value, bool):
            return value
        raise forms.ValidationError("Use true or false.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    """A true/false filter: any other value is a 400 naming the parameter (the schema says boolean)."""

    field_class = StrictBooleanField


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, handed to the database in UTC. PostgreSQL refuses a value that keeps
    an offset beyond 15:59 ("time zone displacement out of range"), while RFC 3339 - and so the
    schema - allows up to 23:59; a value that leaves the datetime range in UTC is invalid."""

    def to_python(self, value: Any) -> Any:
        result = super().to_python(value)
        if result is not None and timezone.is_aware(result):
            try:
                result = result.astimezone(dt.UTC)
            except OverflowError:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        return result


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    """A date-time filter (ISO 8601, compared in UTC)."""

    field_class = UtcDateTimeField


class AuditEventFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_username", help_text="Username of who acted.")
    owner = django_filters.CharFilter(field_name="owner_username", help_text="Username of the accountable owner.")
    action = django_filters.CharFilter(field_name="action", help_text="Exact action, e.g. integration.suspended.")
    action_prefix = django_filters.CharFilter(field_name="action", lookup_expr="startswith", label="Action starts with")
    actor_kind = django_filters.ChoiceFilter(choices=ActorKind.choices)
    target_type = django_filters.CharFilter(help_text="app_label.model, e.g. inventory.integration.")
    target_id = django_filters.CharFilter()
    since = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "owner", "action", "actor_kind", "target_type", "target_id", "since", "until"]


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight starting ``day`` in the portal's time zone, as the dates on the pages read."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class DateInput(forms.DateInput):
    """The browser's date picker (``<input type=date>``, which submits YYYY-MM-DD)."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


def _searchable(list_id: str) -> forms.TextInput:
    """A text box offering the matching names as one types (its ``<datalist>`` is in the page)."""
    return forms.TextInput(attrs={"list": list_id, "autocomplete": "off", "spellcheck": "false"})


class AuditTrailFilter(django_filters.FilterSet):
    """The audit trail page's filters as controls: event and object types as lists of what the
    viewer's trail holds, people with suggestions, and a date range (both days included). The
    API keeps ``AuditEventFilter`` and its ISO date-times."""

    since = django_filters.DateFilter(label="From", method="_from_day", widget=DateInput())
    until = django_filters.DateFilter(label="To", method="_to_day", widget=DateInput())
    action = django_filters.ChoiceFilter(label="Event type", empty_label="Any event")
    target_type = django_filters.ChoiceFilter(label="Object type", empty_label="Any object")
    actor = django_filters.CharFilter(
        field_name="actor_username", label="Who acted", widget=_searchable("audit-people")
    )
    actor_kind = django_filters.ChoiceFilter(choices=ActorKind.choices, label="Acting as", empty_label="Anyone")
    owner = django_filters.CharFilter(
        field_name="owner_username", label="Accountable owner", widget=_searchable("audit-people")
    )
    # Set by links to one object's events ("its audit trail"), not offered as a control.
    target_id = django_filters.CharFilter(widget=forms.HiddenInput())

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        seen = self.queryset.order_by()
        actions = seen.values_list("action", flat=True).distinct()
        self.filters["action"].extra["choices"] = sorted(
            ((action, action_choice_label(action)) for action in actions), key=lambda pair: pair[1]
        )
        kinds = seen.exclude(target_type="").values_list("target_type", flat=True).distinct()
        self.filters["target_type"].extra["choices"] = sorted(
            ((kind, kind_name(kind)) for kind in kinds), key=lambda pair: pair[1]
        )

    def _from_day(self, queryset: Any, name: str, value: dt.date) -> Any:
        return queryset.filter(created_at__gte=_day_start(value))

    def _to_day(self, queryset: Any, name: str, value: dt.date) -> Any:
        if value == dt.date.max:  # the last day there is: no day after it to stop before
            return queryset
        return queryset.filter(created_at__lt=_day_start(value + dt.timedelta(days=1)))
