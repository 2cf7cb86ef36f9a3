import django_filters

from governance.models import ActorKind, AuditEvent


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
