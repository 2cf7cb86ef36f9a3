"""The decision API: gateways, MCP servers and API proxies ask the policy decision point whether an
integration may use a scope now — one request, or a batch of up to 100 — and reviewers, auditors
and IAM admins read the decisions logged.

Asking is in three passes, and nothing is decided unless every item of the body passes all three:

1. the shape of every item (a 400 naming the field, e.g. ``requests.3.context.chain_depth``): the
   single and the batch form are published closed (no other names), so they can never both match
   and a misspelt name is an error rather than a default silently used;
2. what every item names, for the whole batch at once in a fixed number of queries (a 422 naming
   the field): an unknown integration, scope or user answers only "unknown"; a workload token
   that does not verify says which check failed, as the token endpoint does;
3. one call to the decision point for all items, which logs every decision before the answer
   leaves. An evaluation error is a deny (the decision point's rule); anything unexpected while
   reading, deciding or logging (a database error, a misconfigured deployment) is a 503 and
   nothing is answered as allowed.

Shadow versions are evaluated and logged by the decision point, never returned.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import django_filters
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from governance.api.input import StrictInputMixin, char_class
from governance.api.permissions import AuditorsReadOnly
from governance.api.schema import StrictInputSchema
from governance.api.throttles import MachineRateThrottle
from governance.exceptions import DomainError, Unprocessable
from governance.filters import IdFilter
from governance.models import User
from governance.validators import INT64_MAX, INT64_MIN, validate_single_line
from governance.web import signed_in
from inventory.models import Integration, Scope
from runtime import permissions, selectors
from runtime.errors import ExchangeRefused
from runtime.exchange import TASK_MAX_LENGTH
from runtime.filters import PolicyDecisionFilter
from runtime.models import PolicyDecision, PolicyDecisionPoint
from runtime.policy import entities, pdp
from runtime.policy.schema import ACTIONS, caller_attributes
from runtime.workload import MAX_TOKEN_LENGTH, verify_workload_token

logger = logging.getLogger(__name__)

MAX_BATCH = 100
MAX_CHAIN_DEPTH = 10
TRACE_MAX_LENGTH = 64
ATTRIBUTE_TEXT_MAX_LENGTH = 200
USERNAME_MAX_LENGTH = 150
SCOPE_CODE_MAX_LENGTH = Scope._meta.get_field("code").max_length or 170
DECISIONS = (pdp.ALLOW, pdp.DENY)
UNKNOWN_FIELD = "Unknown field."
PRINCIPAL_NAMES = ("integration", "workload_token")

# The JSON schema of each declared caller attribute type. A text attribute is stored in the
# decision log's JSON, which PostgreSQL refuses with a NUL in it.
_NUL = char_class((0x00, 0x00))
_ATTRIBUTE_SCHEMAS: dict[str, dict[str, Any]] = {
    "Bool": {"type": "boolean"},
    "Long": {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
    "String": {"type": "string", "pattern": f"^[^{_NUL}]{{0,{ATTRIBUTE_TEXT_MAX_LENGTH}}}$"},
}


# --- Input -----------------------------------------------------------------------------------------


class ClosedInput(StrictInputMixin, serializers.Serializer[Any]):
    """An input object that refuses names it does not know (a 400 naming each), then checks the
    JSON type of every field (``StrictInputMixin``) before DRF's own validation."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in data if name not in self.fields or self.fields[name].read_only)
            if unknown:
                raise serializers.ValidationError({name: [UNKNOWN_FIELD] for name in unknown})
        return super().to_internal_value(data)


class ClosedInputSchema(StrictInputSchema):
    """Published as it validates: no names but the fields (``additionalProperties: false``)."""

    target_class = "runtime.api.decisions.ClosedInput"
    match_subclasses = True
    priority = 1  # before the strict-input extension it extends

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = super().map_serializer(auto_schema, direction)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


class DecisionAskSchema(AutoSchema):
    """Either form of the question is an object, so a body is required — which drf-spectacular
    cannot tell from a oneOf of two shapes without a field in common."""

    def _get_request_body(self, direction: str = "request") -> Any:
        body = super()._get_request_body(direction)
        if body is not None:
            body["required"] = True
        return body


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX


@extend_schema_field(
    {
        "description": "Who asks: the integration by its id, or the workload token it presented (verified as "
        "the token endpoint verifies it, and bound to exactly one integration). Exactly one of the two.",
        "oneOf": [
            {
                "type": "object",
                "title": "By integration id",
                "properties": {"integration": {"type": "integer", "minimum": 1, "maximum": INT64_MAX}},
                "required": ["integration"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "title": "By workload token",
                "properties": {
                    "workload_token": {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_LENGTH},
                },
                "required": ["workload_token"],
                "additionalProperties": False,
            },
        ],
    }
)
class PrincipalField(serializers.Field):
    """``{"integration": <id>}`` or ``{"workload_token": "<jwt>"}``: exactly one."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError("Expected an object: {integration: id} or {workload_token: jwt}.")
        unknown = sorted(str(name) for name in data if name not in PRINCIPAL_NAMES)
        if unknown:
            raise serializers.ValidationError({name: [UNKNOWN_FIELD] for name in unknown})
        if len(data) != 1:
            raise serializers.ValidationError("Give the integration (its id) or a workload_token: exactly one.")
        if "integration" in data:
            value = data["integration"]
            if not _is_integer(value) or value < 1:
                raise serializers.ValidationError({"integration": ["Expected an integer id from 1."]})
            return {"integration": value}
        token = data["workload_token"]
        if not isinstance(token, str) or not 1 <= len(token) <= MAX_TOKEN_LENGTH:
            raise serializers.ValidationError(
                {"workload_token": [f"Expected a signed JWT of 1 to {MAX_TOKEN_LENGTH} characters."]}
            )
        return {"workload_token": token}

    def to_representation(self, value: Any) -> Any:
        return value


def _attribute_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` is not a value of the declared Cedar type ``kind`` (None when it is)."""
    if kind == "Bool":
        return None if isinstance(value, bool) else "Expected true or false."
    if kind == "Long":
        return None if _is_integer(value) else "Expected a 64-bit integer."
    if not isinstance(value, str):
        return "Expected a string."
    if len(value) > ATTRIBUTE_TEXT_MAX_LENGTH or "\x00" in value:
        return f"At most {ATTRIBUTE_TEXT_MAX_LENGTH} characters, without NUL."
    return None


class CallerAttributesField(serializers.Field):
    """The caller-supplied attributes the deployment declares (``RUNTIME_POLICY_CONTEXT_ATTRIBUTES``),
    each of its declared type; a name not declared, or a value of another type, is a 400 naming
    ``context.attributes.<name>`` (a policy could never read it)."""

    def to_internal_value(self, data: Any) -> dict[str, pdp.CallerValue]:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError("Expected an object of declared caller attributes.")
        try:
            declared = caller_attributes()
        except Exception:  # a misconfigured deployment (runtime.E003 names it): decide nothing
            logger.exception("RUNTIME_POLICY_CONTEXT_ATTRIBUTES cannot be read; the decision API answered 503")
            raise DecisionUnavailable(_UNAVAILABLE_DETAIL) from None
        errors: dict[str, list[str]] = {}
        values: dict[str, pdp.CallerValue] = {}
        for name, value in data.items():
            kind = declared.get(name)
            problem = "Not a declared caller attribute." if kind is None else _attribute_problem(kind, value)
            if problem:
                errors[str(name)] = [problem]
            else:
                values[name] = value
        if errors:
            raise serializers.ValidationError(errors)
        return values

    def to_representation(self, value: Any) -> Any:
        return value


class CallerAttributesSchema(OpenApiSerializerFieldExtension):
    """The attributes as this deployment declares them, read when the schema is generated."""

    target_class = CallerAttributesField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        declared = caller_attributes()
        return {
            "type": "object",
            "description": "Caller-supplied attributes the policies may read as `context.caller.<name>`; only "
            "those the deployment declares, each of its declared type.",
            "properties": {name: dict(_ATTRIBUTE_SCHEMAS[kind]) for name, kind in sorted(declared.items())},
            "additionalProperties": False,
        }


class DecisionResourceSerializer(ClosedInput):
    scope = serializers.CharField(
        max_length=SCOPE_CODE_MAX_LENGTH, help_text="The scope asked for, by its code `system:name`."
    )


class DecisionContextSerializer(ClosedInput):
    task = serializers.CharField(
        max_length=TASK_MAX_LENGTH,
        allow_blank=True,
        required=False,
        default="",
        validators=[validate_single_line],
        help_text="What the integration is doing, in one line (policies read `context.task`).",
    )
    chain_depth = serializers.IntegerField(
        min_value=1,
        max_value=MAX_CHAIN_DEPTH,
        required=False,
        default=1,
        help_text="Integrations in the calling chain, this one included (1: called directly).",
    )
    delegated_user = serializers.CharField(
        max_length=USERNAME_MAX_LENGTH,
        required=False,
        validators=[validate_single_line],
        help_text="Username of the person the integration acts for, if it acts for one.",
    )
    attributes = CallerAttributesField(required=False, default=dict)


class DecisionAskSerializer(ClosedInput):
    """One question: may this integration take this action on this scope now, in this context?"""

    principal = PrincipalField()
    action = serializers.ChoiceField(
        choices=[(action, action) for action in ACTIONS],
        help_text="`use_scope` for a gateway or MCP server about to let a call through; `exchange_token` as the "
        "token endpoint asks.",
    )
    resource = DecisionResourceSerializer()
    # Declared fields leave the class body (DRF's metaclass), so ``context`` and ``errors`` do not
    # hide the serializer's own attributes of those names; the stubs cannot know.
    context = DecisionContextSerializer()  # type: ignore[assignment]
    trace = serializers.CharField(
        max_length=TRACE_MAX_LENGTH,
        allow_blank=True,
        required=False,
        default="",
        validators=[validate_single_line],
        help_text="The caller's own request id, logged with the decision.",
    )


class DecisionBatchSerializer(ClosedInput):
    """Up to 100 questions, answered in order; one bad item and none is decided."""

    # ``max_length`` goes to the list serializer ``many=True`` makes (not in the stubs).
    requests = DecisionAskSerializer(many=True, max_length=MAX_BATCH, allow_empty=False)  # type: ignore[call-arg]


# --- Output ----------------------------------------------------------------------------------------


class DecisionAnswerSerializer(serializers.Serializer[Any]):
    decision = serializers.ChoiceField(
        choices=[(value, value) for value in DECISIONS], help_text="What the caller applies."
    )
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text="Ids of the policies that decided (empty: deny by default)."
    )
    errors = serializers.ListField(  # type: ignore[assignment]  # declared: see DecisionAskSerializer.context
        child=serializers.CharField(), help_text="Evaluation errors; any error makes the decision a deny."
    )
    policy_version = serializers.IntegerField(
        allow_null=True, help_text="Number of the enforced policy version that decided (null: none is enforced)."
    )
    decision_id = serializers.CharField(help_text="The decision's id in the decision log.")
    explanation = serializers.CharField(help_text="Why, in words.")


class DecisionBatchAnswerSerializer(serializers.Serializer[Any]):
    results = DecisionAnswerSerializer(many=True, help_text="One answer per request, in the order asked.")


class PolicyDecisionSerializer(serializers.ModelSerializer[PolicyDecision]):
    """A logged decision: the request (never a token), what the enforced version decided and why,
    each shadow version's result, who asked and how long it took."""

    caller = serializers.CharField(
        source="caller.username",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="Username of the account that asked (null: the token endpoint).",
    )
    integration = serializers.IntegerField(source="integration_id", read_only=True, allow_null=True)
    integration_name = serializers.CharField(source="integration.name", read_only=True, allow_null=True, default=None)
    owner = serializers.CharField(
        source="owner.username",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="Username of the integration's business owner when decided.",
    )
    decision = serializers.ChoiceField(choices=[(value, value) for value in DECISIONS], read_only=True)
    reasons = serializers.ListField(child=serializers.CharField(), read_only=True)
    errors = serializers.ListField(child=serializers.CharField(), read_only=True)  # type: ignore[assignment]
    policy_version = serializers.IntegerField(
        source="policy_version.number",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="Number of the enforced version that decided (null: none was enforced).",
    )
    shadow = serializers.DictField(
        read_only=True,
        help_text='Each shadow version\'s result by its number: {"3": {"decision", "reasons", "errors"}}.',
    )
    context = serializers.DictField(  # type: ignore[assignment]
        read_only=True, help_text="The request context the policies read."
    )
    snapshot = serializers.CharField(
        source="snapshot_id", read_only=True, allow_null=True, help_text="SHA-256 of the entity data decided with."
    )
    batch = serializers.IntegerField(source="batch_id", read_only=True, allow_null=True)

    class Meta:
        model = PolicyDecision
        fields = [
            "decision_id",
            "at",
            "point",
            "caller",
            "integration",
            "integration_name",
            "owner",
            "principal",
            "action",
            "resource",
            "context",
            "decision",
            "reasons",
            "errors",
            "policy_version",
            "shadow",
            "latency_us",
            "trace",
            "snapshot",
            "digest",
            "batch",
        ]
        read_only_fields = fields


# --- Reading what the items name ---------------------------------------------------------------------


class DecisionUnavailable(DomainError):
    """Reading, deciding or logging failed unexpectedly: the caller must treat the request as denied."""

    status = 503
    title = "Decision unavailable"
    type_slug = "decision-unavailable"


_UNAVAILABLE_DETAIL = "The decision point could not decide or log this request; treat it as denied and try again."


@dataclass
class _Named:
    """What a batch names, read once for all its items."""

    integrations: dict[int, Integration]
    scopes: dict[str, Scope]
    people: dict[str, User]
    # Each distinct workload token: the integration id it is bound to, or why it was refused.
    tokens: dict[str, int | str]


def _verified_tokens(items: Sequence[Mapping[str, Any]]) -> dict[str, int | str]:
    """Each distinct workload token verified once: its integration's id, or the refusal."""
    found: dict[str, int | str] = {}
    for item in items:
        token = item["principal"].get("workload_token")
        if token is None or token in found:
            continue
        try:
            found[token] = verify_workload_token(token).integration.pk
        except ExchangeRefused as refused:
            found[token] = refused.description
    return found


def _people_named(usernames: set[str]) -> dict[str, User]:
    if not usernames:
        return {}
    ids = User.objects.filter(username__in=usernames).values_list("pk", flat=True)
    return {user.username: user for user in entities.load_people(list(ids)).values()}


def _named(items: Sequence[Mapping[str, Any]], now: datetime) -> _Named:
    tokens = _verified_tokens(items)
    ids = {item["principal"]["integration"] for item in items if "integration" in item["principal"]}
    ids |= {found for found in tokens.values() if isinstance(found, int)}
    usernames = {item["context"]["delegated_user"] for item in items if "delegated_user" in item["context"]}
    return _Named(
        integrations=entities.load_integrations(ids, now),
        scopes=entities.load_scopes(item["resource"]["scope"] for item in items),
        people=_people_named(usernames),
        tokens=tokens,
    )


def _integration_of(principal: Mapping[str, Any], named: _Named) -> tuple[Integration | None, str, str]:
    """The integration a principal names, or (None, the field at fault, why)."""
    if "integration" in principal:
        found = named.integrations.get(principal["integration"])
        return found, "principal.integration", "Unknown integration."
    verified = named.tokens[principal["workload_token"]]
    if isinstance(verified, str):
        return None, "principal.workload_token", verified
    return named.integrations.get(verified), "principal.workload_token", "The bound integration is gone."


def _policy_request(
    item: Mapping[str, Any], named: _Named, now: datetime, errors: dict[str, list[str]], prefix: str
) -> pdp.PolicyRequest | None:
    """The decision point's request for one item, or None with its faults added to ``errors``."""
    integration, field, why = _integration_of(item["principal"], named)
    if integration is None:
        errors[prefix + field] = [why]
    scope = named.scopes.get(item["resource"]["scope"])
    if scope is None:
        errors[prefix + "resource.scope"] = ["Unknown scope."]
    context = item["context"]
    delegated: User | None = None
    if "delegated_user" in context:
        delegated = named.people.get(context["delegated_user"])
        if delegated is None:
            errors[prefix + "context.delegated_user"] = ["Unknown user."]
    if integration is None or scope is None or ("delegated_user" in context and delegated is None):
        return None
    return pdp.PolicyRequest(
        integration=integration,
        action=item["action"],
        scope=scope,
        task=context["task"],
        chain_depth=context["chain_depth"],
        delegated_user=delegated,
        caller_attributes=context["attributes"],
        at=now,
    )


def policy_requests(items: Sequence[Mapping[str, Any]], *, batch: bool) -> list[pdp.PolicyRequest]:
    """The decision point's requests for validated items, reading the entity data of the whole
    batch in a fixed number of queries (plus one verification per distinct workload token).
    Raises ``Unprocessable`` naming every field that names something unknown; then no item is
    decided."""
    now = timezone.now()
    named = _named(items, now)
    errors: dict[str, list[str]] = {}
    requests = [
        _policy_request(item, named, now, errors, f"requests.{index}." if batch else "")
        for index, item in enumerate(items)
    ]
    if errors:
        summary = "; ".join(f"{field}: {messages[0]}" for field, messages in list(errors.items())[:5])
        raise Unprocessable(summary, errors=errors)
    return [request for request in requests if request is not None]


def _answer(outcome: pdp.Outcome) -> dict[str, Any]:
    return {
        "decision": outcome.enforced.decision,
        "reasons": list(outcome.enforced.reasons),
        "errors": list(outcome.enforced.errors),
        # Number 0 stands for "no version is enforced" in the decision point's result.
        "policy_version": outcome.enforced.number or None,
        "decision_id": outcome.decision_id,
        "explanation": outcome.explanation(),
    }


def _read(items: Sequence[Mapping[str, Any]], *, batch: bool) -> list[pdp.PolicyRequest]:
    """``policy_requests``, with anything unexpected while reading (the database, a workload
    issuer's keys) a 503: never an allow, never a 500."""
    try:
        return policy_requests(items, batch=batch)
    except Unprocessable:
        raise
    except Exception:
        logger.exception("The decision API could not read what %d request(s) name; answered 503", len(items))
        raise DecisionUnavailable(_UNAVAILABLE_DETAIL) from None


def _decided(requests: list[pdp.PolicyRequest], traces: list[str], caller: User) -> list[pdp.Outcome]:
    try:
        # A savepoint: a database error while logging leaves the request's transaction usable.
        with transaction.atomic():
            return pdp.decide(requests, point=PolicyDecisionPoint.API, caller=caller, traces=traces)
    except Exception:  # deciding or logging failed: never an allow, never a 500
        logger.exception("The decision API could not decide or log %d request(s); answered 503", len(requests))
        raise DecisionUnavailable(_UNAVAILABLE_DETAIL) from None


def _validated(data: Any) -> tuple[list[dict[str, Any]], bool]:
    """The validated items of a body and whether it was the batch form (a 400 on any fault)."""
    if isinstance(data, Mapping) and "requests" in data:
        batch = DecisionBatchSerializer(data=data)
        batch.is_valid(raise_exception=True)
        return [dict(item) for item in batch.validated_data["requests"]], True
    single = DecisionAskSerializer(data=data)
    single.is_valid(raise_exception=True)
    return [dict(single.validated_data)], False


# --- Views ------------------------------------------------------------------------------------------


class DecisionFilter(PolicyDecisionFilter):
    """The decisions page's filters (the same parameters mean the same thing), the version under
    the name the API published (``policy_version``), and who asked, the owner and the trace."""

    version = None  # type: ignore[assignment]  # named policy_version here
    policy_version = IdFilter(
        field_name="policy_version__number",
        label="Policy version",
        help_text="Number of the enforced policy version that decided.",
    )
    owner = django_filters.CharFilter(
        field_name="owner__username", label="Owner (username)", help_text="Username of the business owner."
    )
    caller = django_filters.CharFilter(
        field_name="caller__username", label="Caller (username)", help_text="Username of the account that asked."
    )
    trace = django_filters.CharFilter(help_text="The trace the caller sent (or the token's jti).")

    class Meta:
        model = PolicyDecision
        fields = [
            "integration",
            "owner",
            "caller",
            "decision",
            "action",
            "point",
            "policy_version",
            "shadow_disagrees",
            "trace",
            "since",
            "until",
        ]


def decisions_listed(user: Any) -> QuerySet[PolicyDecision]:
    """The decision log as ``user`` may read it (``selectors.policy_decisions_for``), newest
    first, with what a row shows joined in the one query (not the deciding version's texts)."""
    return (
        selectors.policy_decisions_for(user)
        .select_related("caller", "integration", "owner", "policy_version")
        .defer("policy_version__cedar_text", "policy_version__tests", "policy_version__test_results")
        .order_by("-at", "-id")
    )


class DecisionAccess(BasePermission):
    """Asking is for resource-server and gateway accounts and IAM admins. Reading is filtered by
    what the caller may see: the log is empty for anyone but IAM admins, reviewers and auditors,
    and any of its decisions a 404."""

    message = "Asking for decisions is for resource-server accounts and IAM admins."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method == "POST":
            return permissions.can_ask_decisions(request.user)
        return True


_PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")
_UNAVAILABLE = OpenApiResponse(
    response={"$ref": "#/components/schemas/ProblemDetails"},
    description="The decision point could not decide or log: treat the request as denied and retry.",
)
_ASK = PolymorphicProxySerializer(
    component_name="DecisionAskOrBatch",
    serializers=[DecisionAskSerializer, DecisionBatchSerializer],
    resource_type_field_name=None,
)
_ANSWER = PolymorphicProxySerializer(
    component_name="DecisionAnswerOrBatch",
    serializers=[DecisionAnswerSerializer, DecisionBatchAnswerSerializer],
    resource_type_field_name=None,
)
_ASK_DESCRIPTION = (
    "For gateways, MCP servers and API proxies (resource-server accounts) and IAM admins. Send one request "
    "(`principal`, `action`, `resource`, `context`, optional `trace`) and get one answer, or "
    '`{"requests": [...]}` (1 to 100) and get `{"results": [...]}` in the same order. Every item is checked '
    "before any is decided: a malformed item is a 400 and a reference to something unknown (integration, scope, "
    "user) or a workload token that does not verify is a 422, naming the field (`requests.3.resource.scope`). "
    "An evaluation error is a deny with its `errors`; a 503 means nothing could be decided: deny. Every "
    "decision is logged (`GET /api/v1/decisions/`)."
)


@extend_schema_view(
    list=extend_schema(
        summary="The decision log, newest first (IAM admins, reviewers, auditors)",
        description="Every decision of the policy decision point, from the token endpoint and this API. "
        "Empty for anyone but IAM admins, reviewers and auditors.",
    ),
    retrieve=extend_schema(summary="One logged decision", responses={200: PolicyDecisionSerializer, 404: _PROBLEM}),
)
class DecisionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[PolicyDecision]):
    serializer_class = PolicyDecisionSerializer
    filterset_class = DecisionFilter
    # Newest first, always: the log is read by time (filter with since/until), not re-sorted.
    filter_backends = [DjangoFilterBackend]
    permission_classes = [IsAuthenticated, AuditorsReadOnly, DecisionAccess]
    lookup_field = "decision_id"
    lookup_value_regex = "[0-9a-f]{32}"
    schema = DecisionAskSchema()

    def get_queryset(self) -> QuerySet[PolicyDecision]:
        return decisions_listed(self.request.user)

    def get_throttles(self) -> list[Any]:
        # Asking is what a gateway does on every call it serves: the machine limits apply.
        if self.action == "create":
            return [MachineRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        summary="Ask the policy decision point (one request, or a batch of up to 100)",
        description=_ASK_DESCRIPTION,
        request=_ASK,
        responses={200: _ANSWER, (503, "application/problem+json"): _UNAVAILABLE},
    )
    def create(self, request: Request) -> Response:
        items, batch = _validated(request.data)
        requests = _read(items, batch=batch)
        outcomes = _decided(requests, [item["trace"] for item in items], signed_in(request))
        answers = [_answer(outcome) for outcome in outcomes]
        return Response({"results": answers} if batch else answers[0])
