from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.api.input import StrictInputMixin
from governance.api.schema import WEBHOOK_URL_SYNTAX
from governance.validators import validate_single_line
from governance.webhooks.events import ALIASES, ENTITIES, EVENT_TYPES
from governance.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

SUBSCRIBABLE_PATTERNS = ["*", *sorted(ALIASES), *sorted(f"{entity}.*" for entity in ENTITIES), *EVENT_TYPES]


class WebhookSubscriptionSerializer(serializers.ModelSerializer[WebhookSubscription]):
    created_by = serializers.CharField(source="created_by.username", read_only=True, default="")
    event_types = serializers.ListField(child=serializers.CharField(), read_only=True)
    secret_fingerprint = serializers.CharField(
        read_only=True,
        help_text='Names the signing secret without showing any of it: "sha256:" and the first 16 hex digits '
        "of the SHA-256 of the secret (empty if it can no longer be decrypted).",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["id", "name", "target_url", "event_types", "secret_fingerprint", "status", "created_by", "created_at"]
        read_only_fields = fields


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.SerializerMethodField(
        help_text="The signing secret, shown this once: store it in the receiver. It is never shown again."
    )

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, obj: Any) -> str:
        return str(self.context.get("secret", ""))


class _PatternList(serializers.ListField):
    """A list whose refused items are reported under the field itself (``event_types``), as the
    subscription page and the service do, rather than per index."""

    def run_child_validation(self, data: list[Any]) -> list[Any]:
        try:
            return super().run_child_validation(data)
        except serializers.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {}
            raise serializers.ValidationError([str(m) for messages in detail.values() for m in messages]) from None


class WebhookSubscriptionCreateSerializer(StrictInputMixin, serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100, validators=[validate_single_line])
    target_url = serializers.URLField(max_length=500, validators=[RegexValidator(WEBHOOK_URL_SYNTAX)])
    # Every pattern the catalog admits (governance.webhooks.events.pattern_problem), as an enum:
    # "*", each alias, each entity's "entity.*" and each event type.
    event_types = _PatternList(
        child=serializers.ChoiceField(
            choices=SUBSCRIBABLE_PATTERNS,
            error_messages={
                "invalid_choice": "'{input}' is not an event type pattern (examples: integration.*, grant.revoked, *)."
            },
        ),
        min_length=1,
        max_length=50,
        help_text="Patterns such as integration.*, access_request.decided, grant.revoked, or *.",
    )
    secret = serializers.CharField(
        required=False,
        allow_blank=True,
        min_length=24,
        max_length=200,
        write_only=True,
        help_text="Leave out to have one generated (returned once in the response).",
    )


class WebhookAttemptSerializer(serializers.ModelSerializer[WebhookAttempt]):
    class Meta:
        model = WebhookAttempt
        fields = ["attempted_at", "status_code", "error", "duration_ms"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True, help_text="Every attempt, newest first.")
    target = serializers.SerializerMethodField()

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "subscription",
            "event_id",
            "event_type",
            "occurred_at",
            "target",
            "status",
            "attempts",
            "next_attempt_at",
            "give_up_at",
            "delivered_at",
            "last_status_code",
            "last_error",
            "created_at",
            "attempt_log",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"type": {"type": "string"}, "id": {"type": "string"}},
            "required": ["type", "id"],
        }
    )
    def get_target(self, obj: WebhookDelivery) -> dict[str, str]:
        return {"type": obj.target_type, "id": obj.target_id}
