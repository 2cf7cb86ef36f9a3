import django_filters
from django import forms

from governance.models import ActorKind, AuditEvent


class IdFilter(django_filters.NumberFilter):
    """A filter on an object id: a whole number, or the request gets a 400 naming the parameter.

    NumberFilter alone accepts any decimal (``-1.76e+231``), which reaches the database as an
    integer too large for it; an out-of-range whole number is simply matched by nothing.
    Point ``field_name`` at the id through the relation (``integration__id``, no join) so the
    schema declares an integer.
    """

    field_class = forms.IntegerField


class AuditEventFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_username", help_text="Username of who acted.")
    owner = django_filters.CharFilter(field_name="owner_username", help_text="Username of the accountable owner.")
    action = django_filters.CharFilter(field_name="action", help_text="Exact action, e.g. integration.suspended.")
    action_prefix = django_filters.CharFilter(field_name="action", lookup_expr="startswith", label="Action starts with")
    actor_kind = django_filters.ChoiceFilter(choices=ActorKind.choices)
    target_type = django_filters.CharFilter(help_text="app_label.model, e.g. inventory.integration.")
    target_id = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "owner", "action", "actor_kind", "target_type", "target_id", "since", "until"]
