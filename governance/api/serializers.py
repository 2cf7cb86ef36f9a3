from rest_framework import serializers

from governance.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.CharField(source="actor_username", read_only=True, help_text="Username of who acted.")
    owner = serializers.CharField(source="owner_username", read_only=True, help_text="Accountable owner's username.")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_kind",
            "owner",
            "action",
            "target_type",
            "target_id",
            "target_repr",
            "before",
            "after",
            "reason",
            "request_id",
            "client_ip",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields
