"""The token log as the API shows it: people by username, the integration by id (and name), every
field of the event read-only."""

from __future__ import annotations

from rest_framework import serializers

from runtime.models import TokenEvent


class TokenEventSerializer(serializers.ModelSerializer[TokenEvent]):
    integration = serializers.IntegerField(
        source="integration_id", read_only=True, allow_null=True, help_text="Integration id (null: none was proven)."
    )
    integration_name = serializers.CharField(
        source="integration.name", read_only=True, allow_null=True, default=None, help_text="Integration name."
    )
    owner = serializers.CharField(
        source="owner.username",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="Username of the accountable owner when the event was recorded.",
    )
    acting_for = serializers.CharField(
        source="acting_for.username",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="Username of the user the integration acted for (null: it acted as itself).",
    )
    chain = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="Integration ids of the calling chain, outermost caller first, this integration last.",
    )
    scopes_requested = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Scope codes asked for."
    )
    scopes_granted = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Scope codes in the issued token (none if refused)."
    )
    grant_ids = serializers.ListField(
        child=serializers.IntegerField(), read_only=True, help_text="Ids of the grants the issued scopes came from."
    )
    batch = serializers.IntegerField(
        source="batch_id",
        read_only=True,
        allow_null=True,
        help_text="The sealed batch holding this event in the audit chain (null until sealed).",
    )

    class Meta:
        model = TokenEvent
        fields = [
            "id",
            "at",
            "outcome",
            "error",
            "reason",
            "integration",
            "integration_name",
            "owner",
            "acting_for",
            "workload_issuer",
            "workload_subject",
            "chain",
            "audience",
            "scopes_requested",
            "scopes_granted",
            "grant_ids",
            "jti",
            "expires_at",
            "task",
            "policy_version",
            "policy_reasons",
            "policy_decisions",
            "digest",
            "batch",
        ]
        read_only_fields = fields
