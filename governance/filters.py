import datetime as dt
from typing import Any

import django_filters
from django import forms
from django.utils import timezone
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from governance.models import ActorKind, AuditEvent
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
