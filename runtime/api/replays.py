"""The policy replay API: "what would this version change?".

IAM admins start a replay of a version (``POST /policies/{id}/replays/``): it is queued and
answered at once (201), and the background task re-decides the newest logged decisions with the
version's text. IAM admins, reviewers and auditors read the replays (``/policy-replays/``): the
progress while it runs, then the report — what changes from allow to deny and from deny to allow,
by policy, integration and owner, with examples — or the error of a run that failed. Anyone else
sees none: an empty list, and 404 for a replay or a version.

The limit is published with its bounds, so a limit outside them breaks the schema (a 400 naming
``limit``); a version whose text no longer validates against today's schema cannot be replayed,
a rule no schema can state (a 422 naming ``cedar_text``).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from governance.api.input import StrictInputMixin
from governance.api.permissions import AuditorsReadOnly
from governance.exceptions import Unprocessable, ValidationFailed
from governance.filters import IdFilter
from governance.web import signed_in
from runtime import permissions, selectors
from runtime.api.policies import PolicyReplaySummarySerializer
from runtime.models import PolicyReplay, PolicyVersion, ReplayStatus
from runtime.policy import replay as engine
from runtime.services.policies import replay_is_fresh
from runtime.services.replays import replay_start

_PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")


# --- Output -------------------------------------------------------------------------------------

_INTEGER = {"type": "integer"}
_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}


def _changes_by(label: str, label_help: str, key_help: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": key_help,
        "additionalProperties": {
            "type": "object",
            "properties": {
                label: {"type": "string", "description": label_help},
                engine.ALLOW_TO_DENY: _INTEGER,
                engine.DENY_TO_ALLOW: _INTEGER,
            },
            "required": [label, engine.ALLOW_TO_DENY, engine.DENY_TO_ALLOW],
        },
    }


# ``runtime.policy.replay.Tally.report``: empty until the replay is done.
BREAKDOWN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "policy": _changes_by(
            "description",
            "The policy's @description (empty for the two attributions that are not policies).",
            f"By the policy id that decided the new answer: the forbids that matched, `{engine.NO_PERMIT}` "
            f"when an allow lost its permit, `{engine.EVALUATION_ERROR}` when a policy failed to evaluate.",
        ),
        "integration": _changes_by("name", "The integration's name.", "By integration id (`none`: no integration)."),
        "owner": _changes_by("username", "The business owner's username.", "By owner id (`none`: no owner)."),
    },
}
_NULLABLE_ID = {"type": "integer", "nullable": True}
EXAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "change": {
            "type": "string",
            "enum": [engine.ALLOW_TO_DENY, engine.DENY_TO_ALLOW, "error"],
            "description": "`error`: the decision could not be replayed (its entity data is gone or no longer parses).",
        },
        "decision_id": {"type": "string", "description": "The logged decision (`GET /api/v1/decisions/{id}/`)."},
        "at": {"type": "string", "format": "date-time", "description": "When it was decided."},
        "integration_id": _NULLABLE_ID,
        "owner_id": _NULLABLE_ID,
        "principal": {"type": "string"},
        "action": {"type": "string"},
        "resource": {"type": "string"},
        "old_decision": {"type": "string", "description": "allow or deny: what the portal enforced then."},
        "old_reasons": {**_STRINGS, "description": "Ids of the policies that decided then."},
        "new_decision": {"type": "string", "description": "allow or deny: what this version decides."},
        "new_reasons": {**_STRINGS, "description": "Ids of the policies that decide now."},
        "new_errors": {**_STRINGS, "description": "Evaluation errors now (any error makes the answer a deny)."},
    },
    "required": [
        "change",
        "decision_id",
        "at",
        "integration_id",
        "owner_id",
        "principal",
        "action",
        "resource",
        "old_decision",
        "old_reasons",
        "new_decision",
        "new_reasons",
        "new_errors",
    ],
}


class PolicyReplaySerializer(PolicyReplaySummarySerializer):
    """A replay among others: which version, where it stands and its counts."""

    candidate = serializers.IntegerField(source="candidate_id", read_only=True, help_text="The version (id).")
    candidate_number = serializers.IntegerField(
        source="candidate.number", read_only=True, help_text="The version's number."
    )

    class Meta(PolicyReplaySummarySerializer.Meta):
        fields = [
            "id",
            "candidate",
            "candidate_number",
            *(name for name in PolicyReplaySummarySerializer.Meta.fields if name != "id"),
        ]
        read_only_fields = fields

    def get_fresh(self, replay: PolicyReplay) -> bool:
        return replay_is_fresh(replay, replay.candidate)


class PolicyReplayDetailSerializer(PolicyReplaySerializer):
    """The whole report."""

    breakdown = serializers.SerializerMethodField(
        help_text="The changes by policy, integration and owner (empty until done)."
    )
    examples = serializers.SerializerMethodField(
        help_text=f"Up to {engine.EXAMPLES_MAX} changed decisions, both kinds when both happened, newest first "
        f"within a kind; then up to {engine.ERROR_EXAMPLES_MAX} decisions that could not be replayed."
    )

    class Meta(PolicyReplaySerializer.Meta):
        fields = [*PolicyReplaySerializer.Meta.fields, "breakdown", "examples", "error"]
        read_only_fields = fields
        extra_kwargs = {"error": {"help_text": "Why the run failed (empty unless failed)."}}

    @extend_schema_field(BREAKDOWN_SCHEMA)
    def get_breakdown(self, replay: PolicyReplay) -> dict[str, Any]:
        return dict(replay.breakdown or {})

    @extend_schema_field({"type": "array", "items": EXAMPLE_SCHEMA})
    def get_examples(self, replay: PolicyReplay) -> list[dict[str, Any]]:
        return list(replay.examples or [])


# --- Input ----------------------------------------------------------------------------------------


class PolicyReplayStartInSerializer(StrictInputMixin, serializers.Serializer[Any]):
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=settings.RUNTIME_REPLAY_MAX_LIMIT,
        help_text=f"How many of the newest logged decisions to replay (default "
        f"{settings.RUNTIME_REPLAY_DEFAULT_LIMIT:,}, at most {settings.RUNTIME_REPLAY_MAX_LIMIT:,}).",
    )


# --- Views ------------------------------------------------------------------------------------------


def replays_for(user: Any) -> QuerySet[PolicyReplay]:
    """The replays ``user`` may read: those of the versions they may read (every one for IAM
    admins, reviewers and auditors, none for anyone else), newest first, with who asked and the
    candidate's number and current hash joined in the one query (not its text)."""
    return (
        PolicyReplay.objects.filter(candidate__in=selectors.policy_versions_for(user))
        .select_related("candidate", "requested_by")
        .defer("candidate__cedar_text", "candidate__tests", "candidate__test_results")
        .order_by("-created_at", "-id")
    )


class PolicyReplayFilter(django_filters.FilterSet):
    candidate = IdFilter(field_name="candidate__id", label="Version id", help_text="Only replays of this version (id).")
    status = django_filters.ChoiceFilter(choices=ReplayStatus.choices, help_text="Only replays in this status.")

    class Meta:
        model = PolicyReplay
        fields = ["candidate", "status"]


@extend_schema_view(
    list=extend_schema(
        summary="Replays of policy versions, newest first (IAM admins, reviewers, auditors)",
        description="Where each replay stands (`processed` of `total` decisions) and its counts; the report is "
        "in `GET /api/v1/policy-replays/{id}/`. Anyone else gets an empty list.",
    ),
    retrieve=extend_schema(
        summary="One replay's report: what its version would change over the logged decisions",
        description="While `queued` or `running`, the progress; once `done`, the counts, the changes by policy, "
        "integration and owner, and examples; once `failed`, the `error`. `fresh`: it replayed the version's "
        "current text and finished after its last edit, as asking for enforcement needs.",
        responses={200: PolicyReplayDetailSerializer, 404: _PROBLEM},
    ),
)
class PolicyReplayViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[PolicyReplay]):
    serializer_class = PolicyReplaySerializer
    filterset_class = PolicyReplayFilter
    # Newest first, always.
    filter_backends = [DjangoFilterBackend]

    def get_queryset(self) -> QuerySet[PolicyReplay]:
        if self.action == "list":
            return replays_for(self.request.user).defer("breakdown", "examples", "error")
        return replays_for(self.request.user)

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        return PolicyReplayDetailSerializer if self.action == "retrieve" else PolicyReplaySerializer


class ManagesPolicies(BasePermission):
    """On a version the caller can see (any other is a 404 first): IAM admins only."""

    message = "Only IAM admins may replay policy versions."

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return permissions.can_manage_policies(request.user)


class PolicyReplayStartView(generics.GenericAPIView[PolicyVersion]):
    """``POST /api/v1/policies/{id}/replays/``, and ``…/replay/`` as the API contract first named it."""

    serializer_class = PolicyReplayStartInSerializer
    filter_backends: list[Any] = []
    permission_classes = [IsAuthenticated, AuditorsReadOnly, ManagesPolicies]

    def get_queryset(self) -> QuerySet[PolicyVersion]:
        return selectors.policy_versions_for(self.request.user)

    @extend_schema(
        summary="Replay a version over the newest logged decisions: what would it change? (IAM admins)",
        description="Queued and answered at once (201, `status` `queued`); read its progress and report at "
        "`GET /api/v1/policy-replays/{id}/`. Each decision is re-decided with the entity data of its own time. "
        "A version whose text no longer validates against today's schema is a 422 naming `cedar_text`. "
        "`…/replays/` and `…/replay/` are the same operation.",
        request=PolicyReplayStartInSerializer,
        responses={201: PolicyReplayDetailSerializer, 403: _PROBLEM, 404: _PROBLEM},
    )
    def post(self, request: Request, pk: int) -> Response:
        version = self.get_object()
        data = PolicyReplayStartInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            replay = replay_start(actor=signed_in(request), version=version, limit=data.validated_data.get("limit"))
        except Unprocessable:
            raise
        except ValidationFailed as refused:
            # The body already matched the schema: whatever the service refuses now breaks a rule
            # the schema cannot state.
            raise Unprocessable(refused.detail, errors=refused.errors) from refused
        return Response(PolicyReplayDetailSerializer(replay).data, status=status.HTTP_201_CREATED)
