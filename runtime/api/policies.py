"""The policy versions API: read every version (IAM admins, reviewers, auditors), write drafts
(IAM admins; ``PUT /policies/{id}/draft`` is the entry point for policy kept as code in a
repository, pushed by its CI), and move them: shadow, retire, ask for enforcement or a rollback
(which an IAM admin other than the authors approves in approvals), run the tests.

Each change is input serializer -> service (which checks who may, and every rule) -> the version
as it now stands. Cedar text that does not validate answers 422 with ``errors`` on
``cedar_text`` and each error's line, column and policy id in ``policy_errors``; malformed tests
answer 422 naming the test field (``tests[2].scope.acess``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from approvals.models import RequestStatus
from governance.api.input import StrictInputMixin
from governance.api.problems import PROBLEM_CONTENT_TYPE, problem_body
from governance.validators import validate_single_line
from governance.web import signed_in
from runtime import selectors
from runtime.models import PolicyReplay, PolicyStatus, PolicyVersion
from runtime.policy.source import errors_of
from runtime.policy.testing import MAX_TESTS
from runtime.services import policies as services

_PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")
_ERRORS = {403: _PROBLEM, 404: _PROBLEM, 409: _PROBLEM}
_SOURCE = "api"

_TESTS_HELP = (
    "Policy tests: named requests with the decision expected, each described by what differs from a "
    "typical request — `name`, `action` (`exchange_token` or `use_scope`), optional `integration`, `scope` "
    "and `context` overrides, and `expect` (`allow` or `deny`). A malformed test is a 422 naming its field."
)


# --- Output -------------------------------------------------------------------------------------


_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
# A stored test result (``runtime.policy.testing.TestResult.as_dict``).
TEST_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "expected": {"type": "string", "description": "allow or deny."},
        "actual": {"type": "string", "description": "allow or deny."},
        "passed": {"type": "boolean"},
        "reasons": {**_STRINGS, "description": "Ids of the policies that decided."},
        "errors": _STRINGS,
    },
    "required": ["name", "expected", "actual", "passed", "reasons", "errors"],
}
_POLICY_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "line": {"type": "integer", "description": "1-based line in the Cedar text."},
        "column": {"type": "integer", "description": "1-based column in the Cedar text."},
        "policy_id": {"type": "string", "description": "The policy's @id (empty when unknown)."},
        "message": {"type": "string"},
    },
    "required": ["line", "column", "policy_id", "message"],
}
# The problem details of refused Cedar text: the usual ones, and each error in place.
TEXT_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; for Cedar text that does not validate, each error's place.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": _STRINGS,
            "description": "Errors by field: `cedar_text`, or the test at fault such as `tests[2].scope.acess`.",
        },
        "policy_errors": {"type": "array", "items": _POLICY_ERROR_SCHEMA},
    },
    "required": ["type", "title", "status", "detail"],
}


class PolicyReplaySummarySerializer(serializers.ModelSerializer[PolicyReplay]):
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    fresh = serializers.SerializerMethodField(
        help_text="Whether it replayed the version's current text and finished after its last edit."
    )
    counts = serializers.DictField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="unchanged, allow_to_deny, deny_to_allow, errors.",
    )

    class Meta:
        model = PolicyReplay
        fields = [
            "id",
            "status",
            "candidate_sha256",
            "fresh",
            "limit",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "total",
            "processed",
            "counts",
        ]
        read_only_fields = fields

    def get_fresh(self, replay: PolicyReplay) -> bool:
        version: PolicyVersion = self.context["version"]
        return services.replay_is_fresh(replay, version)


def _username(field: str, help_text: str) -> serializers.CharField:
    return serializers.CharField(
        source=f"{field}.username", read_only=True, allow_null=True, default=None, help_text=help_text
    )


class PolicyVersionSerializer(serializers.ModelSerializer[PolicyVersion]):
    created_by = _username("created_by", "Who wrote it (null: shipped with the portal).")
    edited_by = _username("edited_by", "Who changed it last.")
    approved_by = _username("approved_by", "The IAM admin whose approval enforced it.")
    enforced_by = _username("enforced_by", "Who put it in force (the approving IAM admin).")
    retired_by = _username("retired_by", "Who retired it, or whose approval of another version did.")
    based_on = serializers.IntegerField(
        source="based_on_id", read_only=True, allow_null=True, help_text="The version it started from (id)."
    )
    change_request = serializers.IntegerField(
        source="change_request_id",
        read_only=True,
        allow_null=True,
        help_text="The access request (type policy_change) that asked for it to be enforced.",
    )
    change_request_status = serializers.ChoiceField(
        choices=RequestStatus.choices, read_only=True, allow_null=True, help_text="That request's status."
    )

    class Meta:
        model = PolicyVersion
        fields = [
            "id",
            "number",
            "title",
            "status",
            "sha256",
            "tests_passed",
            "tests_run_at",
            "source",
            "source_ref",
            "based_on",
            "created_by",
            "created_at",
            "edited_by",
            "edited_at",
            "shadow_at",
            "change_request",
            "change_request_status",
            "approved_by",
            "approved_at",
            "enforced_by",
            "enforced_at",
            "retired_by",
            "retired_at",
        ]
        read_only_fields = fields


class PolicyVersionDetailSerializer(PolicyVersionSerializer):
    tests = serializers.ListField(child=serializers.DictField(), read_only=True, help_text=_TESTS_HELP)
    test_results = serializers.SerializerMethodField(help_text="The last run of the tests.")
    validation_errors = serializers.SerializerMethodField(
        help_text="The text's errors against the schema as it is now (empty: it validates)."
    )
    promotion_blockers = serializers.SerializerMethodField(
        help_text="Why it may not be asked for enforcement yet (empty: it may)."
    )
    replays = serializers.SerializerMethodField(help_text="Its latest replays, newest first.")

    class Meta(PolicyVersionSerializer.Meta):
        fields = [
            *PolicyVersionSerializer.Meta.fields,
            "cedar_text",
            "tests",
            "test_results",
            "validation_errors",
            "promotion_blockers",
            "replays",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "array", "items": TEST_RESULT_SCHEMA})
    def get_test_results(self, version: PolicyVersion) -> list[dict[str, Any]]:
        return list(version.test_results)

    @extend_schema_field({"type": "array", "items": _POLICY_ERROR_SCHEMA})
    def get_validation_errors(self, version: PolicyVersion) -> list[dict[str, Any]]:
        return [error.as_dict() for error in errors_of(version.cedar_text)]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_promotion_blockers(self, version: PolicyVersion) -> list[str]:
        return services.promotion_blockers(version)

    @extend_schema_field(PolicyReplaySummarySerializer(many=True))
    def get_replays(self, version: PolicyVersion) -> Any:
        recent = getattr(version, "recent_replays", None)
        replays = (
            recent
            if recent is not None
            else list(version.replays.order_by("-created_at", "-id")[: selectors.RECENT_REPLAYS])
        )
        return PolicyReplaySummarySerializer(replays, many=True, context={"version": version}).data


# --- Input ----------------------------------------------------------------------------------------


class PolicyDraftInSerializer(StrictInputMixin, serializers.Serializer[Any]):
    title = serializers.CharField(
        max_length=services.TITLE_MAX, validators=[validate_single_line], help_text="What it changes, in one line."
    )
    # Not trimmed: the text is stored (and hashed) as sent, so a repository's file and the stored
    # version have the same SHA-256 (line ends aside: CRLF is stored as LF).
    cedar_text = serializers.CharField(
        trim_whitespace=False,
        help_text='The whole policy set in Cedar; every policy carries @id("…") and @description("…"). '
        "Validated strictly against the schema generated from the portal's model.",
    )
    tests = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        max_length=MAX_TESTS,
        help_text=_TESTS_HELP + " Left out when replacing a draft: its tests are kept.",
    )
    source_ref = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=services.SOURCE_REF_MAX,
        validators=[validate_single_line],
        help_text="Where the text comes from, e.g. a repository and commit (`policies@4f1c2e9`).",
    )


class VisibleVersionField(serializers.PrimaryKeyRelatedField[PolicyVersion]):
    """A policy version by id, among those the caller may read: any other id is refused like an
    unknown one (a 422). (The empty ``queryset`` only names the model, for the schema.)"""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=PolicyVersion.objects.none(), **kwargs)

    def get_queryset(self) -> QuerySet[PolicyVersion]:
        request = self.context.get("request")
        return selectors.policy_versions_for(request.user if request else None)


class PolicyCreateInSerializer(PolicyDraftInSerializer):
    based_on = VisibleVersionField(
        required=False,
        allow_null=True,
        help_text="The version it starts from (id); without `tests`, the draft takes its tests.",
    )


class JustificationInSerializer(StrictInputMixin, serializers.Serializer[Any]):
    justification = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2000,
        help_text="Why, for the reviewing IAM admin.",
    )


# --- Views ------------------------------------------------------------------------------------------

_TEXT_REJECTED = OpenApiResponse(
    response=TEXT_PROBLEM_SCHEMA,
    description="Unprocessable: the Cedar text does not validate (`policy_errors` places each error), a test "
    "is malformed, or another rule the schema cannot state is broken (`errors` names the fields); or the "
    "Idempotency-Key was already used with another body.",
)
_REJECTED_KEY = (422, PROBLEM_CONTENT_TYPE)
_DRAFT_EXAMPLE = OpenApiExample(
    "A policy set and its test, from a repository",
    request_only=True,
    value={
        "title": "Only what an active integration holds",
        "cedar_text": '@id("permit-within-active-grants")\n'
        '@description("An active integration may use a scope it holds by an active grant.")\n'
        "permit (principal is Integration, action, resource is Scope)\n"
        'when { principal.status == "active" && principal.grants.contains(resource) };\n',
        "tests": [
            {"name": "an active integration uses a scope it holds", "action": "exchange_token", "expect": "allow"},
            {
                "name": "a suspended integration gets nothing",
                "action": "exchange_token",
                "integration": {"status": "suspended"},
                "expect": "deny",
            },
        ],
        "source_ref": "policies@4f1c2e9",
    },
)


def _rejected(rejected: services.PolicyTextRejected) -> Response:
    body = problem_body(
        status=rejected.status,
        title=rejected.title,
        detail=rejected.detail,
        type_slug=rejected.type_slug,
        errors=rejected.errors,
    )
    body["policy_errors"] = [error.as_dict() for error in rejected.policy_errors]
    # The request's transaction is rolled back for any error response (AtomicWriteRequestMiddleware).
    return Response(body, status=rejected.status, content_type=PROBLEM_CONTENT_TYPE)


def _saved(request: Request, save: Callable[[], PolicyVersion], code: int = status.HTTP_200_OK) -> Response:
    """Run a save; answer with the version as it now stands, or the text's errors in place."""
    try:
        version = save()
    except services.PolicyTextRejected as rejected:
        return _rejected(rejected)
    return _out(version, request, code)


def _out(version: PolicyVersion, request: Request, code: int = status.HTTP_200_OK) -> Response:
    fresh = selectors.policy_version_detail(request.user).get(pk=version.pk)
    return Response(PolicyVersionDetailSerializer(fresh).data, status=code)


class PolicyVersionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=PolicyStatus.choices, help_text="Only versions in this status.")

    class Meta:
        model = PolicyVersion
        fields = ["status"]


@extend_schema_view(
    list=extend_schema(
        summary="Runtime policy versions, newest first",
        description="Every version of the runtime policy set: exactly one is enforced; shadow versions are "
        "evaluated beside it and logged, never applied. IAM admins, reviewers and auditors read them; "
        "anyone else gets an empty list.",
    ),
    retrieve=extend_schema(
        summary="One policy version: its Cedar text, tests, errors against today's schema, what blocks "
        "its promotion, and its replays",
        responses={200: PolicyVersionDetailSerializer, 404: _PROBLEM},
    ),
)
class PolicyVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[PolicyVersion]):
    serializer_class = PolicyVersionSerializer
    filterset_class = PolicyVersionFilter
    ordering_fields = ["number"]
    ordering = ["-number"]

    def get_queryset(self) -> QuerySet[PolicyVersion]:
        if self.action == "list":
            return selectors.policy_versions_listed(self.request.user)
        if self.action == "retrieve":
            return selectors.policy_version_detail(self.request.user)
        return selectors.policy_versions_for(self.request.user)

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        return PolicyVersionDetailSerializer if self.action == "retrieve" else PolicyVersionSerializer

    @extend_schema(
        summary="Write a new draft (IAM admins)",
        description="Validated strictly and its tests run before it is saved with the next number.",
        request=PolicyCreateInSerializer,
        examples=[_DRAFT_EXAMPLE],
        responses={201: PolicyVersionDetailSerializer, 403: _PROBLEM, _REJECTED_KEY: _TEXT_REJECTED},
    )
    def create(self, request: Request) -> Response:
        # A repeated Idempotency-Key is answered by the API middleware before this runs.
        data = PolicyCreateInSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        return _saved(
            request,
            lambda: services.policy_draft_create(
                actor=signed_in(request),
                title=values["title"],
                cedar_text=values["cedar_text"],
                tests=values.get("tests"),
                based_on=values.get("based_on"),
                source=_SOURCE,
                source_ref=values["source_ref"],
            ),
            status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Put a draft in shadow: evaluated and logged beside the enforced version, never applied",
        description="Only a draft that validates against today's schema and passes every test.",
        request=None,
        responses={200: PolicyVersionDetailSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def shadow(self, request: Request, pk: str | None = None) -> Response:
        version = services.policy_shadow(actor=signed_in(request), version=self.get_object())
        return _out(version, request)

    @extend_schema(
        summary="Retire a draft or shadow version (an open request to enforce it is cancelled)",
        description="The enforced version is retired only by enforcing another or by a rollback.",
        request=None,
        responses={200: PolicyVersionDetailSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def retire(self, request: Request, pk: str | None = None) -> Response:
        version = services.policy_retire(actor=signed_in(request), version=self.get_object())
        return _out(version, request)

    @extend_schema(
        summary="Ask for this version to be enforced (another IAM admin approves)",
        description="Opens a policy_change access request, which an IAM admin who neither wrote the version "
        "nor asked decides. Refused (409) while `promotion_blockers` names anything: it must validate, pass "
        "its tests and have a replay of its current text.",
        request=JustificationInSerializer,
        responses={201: PolicyVersionDetailSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="request-enforcement")
    def request_enforcement(self, request: Request, pk: str | None = None) -> Response:
        version = self.get_object()
        data = JustificationInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.policy_enforcement_request(
            actor=signed_in(request), version=version, justification=data.validated_data["justification"]
        )
        return _out(version, request, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Run the version's tests against today's schema and store the results (IAM admins)",
        request=None,
        responses={200: PolicyVersionDetailSerializer, 403: _PROBLEM, 404: _PROBLEM},
    )
    @action(detail=True, methods=["post"], url_path="run-tests")
    def run_tests(self, request: Request, pk: str | None = None) -> Response:
        version = self.get_object()
        services.policy_tests_run(actor=signed_in(request), version=version)
        return _out(version, request)

    @extend_schema(
        summary="Ask to enforce again the version enforced before the current one (another IAM admin approves)",
        request=JustificationInSerializer,
        responses={201: PolicyVersionDetailSerializer, 403: _PROBLEM, 409: _PROBLEM},
    )
    @action(detail=False, methods=["post"])
    def rollback(self, request: Request) -> Response:
        data = JustificationInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        req = services.policy_rollback_request(
            actor=signed_in(request), justification=data.validated_data["justification"]
        )
        target = selectors.policy_versions_for(request.user).get(pk=req.payload["version_id"])
        return _out(target, request, status.HTTP_201_CREATED)


class PolicyDraftView(generics.GenericAPIView[PolicyVersion]):
    """``PUT /api/v1/policies/{id}/draft``: policy as code. A repository's CI pushes the text (and
    tests) of a draft, naming its commit in ``source_ref``."""

    serializer_class = PolicyDraftInSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[PolicyVersion]:
        return selectors.policy_versions_for(self.request.user)

    @extend_schema(
        operation_id="policies_draft_update",
        summary="Replace a draft's title, Cedar text and tests (policy as code: a repository's CI pushes here)",
        description="Only a draft (409 otherwise). Validated strictly, its tests run again; an earlier replay "
        "is no longer fresh. Without `tests`, its tests are kept. `source_ref` names where the text comes "
        "from, e.g. the commit.",
        request=PolicyDraftInSerializer,
        examples=[_DRAFT_EXAMPLE],
        responses={200: PolicyVersionDetailSerializer, **_ERRORS, _REJECTED_KEY: _TEXT_REJECTED},
    )
    def put(self, request: Request, pk: int) -> Response:
        version = self.get_object()
        data = PolicyDraftInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        return _saved(
            request,
            lambda: services.policy_draft_update(
                actor=signed_in(request),
                version=version,
                title=values["title"],
                cedar_text=values["cedar_text"],
                tests=values.get("tests"),
                source=_SOURCE,
                source_ref=values["source_ref"],
            ),
        )
