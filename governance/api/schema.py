"""The OpenAPI document, made as exact as the API: drf-spectacular extensions and one
postprocessing hook.

The schema is a contract the test suite holds the API to (tests/api_contract/test_schemathesis.py
runs schemathesis with ``positive_data_acceptance`` and ``negative_data_rejection``): every value
it allows must be accepted and every value it forbids refused. So it states what DRF's fields
do not say by themselves:

* strings: DRF trims them and refuses NUL, and a required one may not be blank; single-line
  fields (names, identifiers, tags; ``governance.validators.validate_single_line``) refuse
  control characters — each request string carries the pattern that says so;
* date-times: the RFC 3339 form the API takes (``governance.api.input.DATETIME_PATTERN``);
* integers: the 64-bit range; path ids from 1;
* query parameters: an empty value means "not given" (``allowEmptyValue``), as django-filter does;
* every error the API can answer, with the problem-details schema and media type, its headers
  (``Retry-After``, ``WWW-Authenticate``), and ``Idempotency-Key`` on every POST;
* the webhook target URLs the outbound policy can accept (from the deployment's settings);
* OpenAPI links from each create to what reads and acts on what it made, so schemathesis'
  stateful phase walks the workflows (register -> read -> submit -> decide ...).

Input that matches this schema but names something that does not exist, or breaks a rule no
schema can state, is a 422 (``governance.exceptions.Unprocessable``); input that breaks the schema
is a 400.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from rest_framework import serializers

from governance.api.idempotency import FRESH_ANSWER_PATHS
from governance.api.input import DATETIME_PATTERN, SPACE_CLASS, char_class
from governance.roles import ASSIGNABLE_GROUPS
from governance.validators import INT64_MAX, INT64_MIN, validate_single_line


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "governance.api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`, issued by `manage.py issue_api_token USERNAME`.",
        }


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "governance.api.authentication.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


# Groups a campaign definition may name: the roles and reviewer pools (fixed in code).
GROUP_NAMES = sorted(ASSIGNABLE_GROUPS)


# --- Strings --------------------------------------------------------------------------------
# DRF's CharField strips whitespace (Python's str.isspace()) from both ends first: a value of only
# whitespace is blank, and the validators (NUL, control characters, lengths) see the stripped
# value. So what a request string may be is a pattern: any whitespace around a core that starts
# and ends with another character, whose length is the field's min_length..max_length. (The
# lengths are in the pattern, not in minLength/maxLength, which would count the whitespace.)
_SPACE = SPACE_CLASS
# What a single-line field refuses (governance.validators.has_control_characters): Unicode Cc and
# the line and paragraph separators. Any string refuses NUL.
_CONTROL = char_class((0x00, 0x1F), (0x7F, 0x9F), (0x2028, 0x2029))
_NUL = char_class((0x00, 0x00))


def _repeat(low: int, high: int | None) -> str:
    return f"{{{low},}}" if high is None else f"{{{low},{high}}}"


def string_pattern(
    *, single_line: bool, blank: bool, min_length: int | None = None, max_length: int | None = None
) -> str:
    """The pattern of a request string: no NUL (DRF refuses it), no control character inside a
    single line, min_length..max_length characters once stripped, at least one that is not
    whitespace unless blank is allowed. Where blank is allowed the pattern itself still needs one
    character (whitespace alone is blank): drf-spectacular publishes such a field as oneOf
    [pattern, ""], and "" must match only the second."""
    forbidden = _CONTROL if single_line else _NUL
    edge, inner = f"[^{_SPACE}{forbidden}]", f"[^{forbidden}]"
    low = max(min_length or 1, 1)
    if max_length is not None and max_length < low:
        return "^$"  # nothing fits
    if max_length == 1:
        core = edge
    elif low <= 1:
        core = f"{edge}(?:{inner}{_repeat(0, None if max_length is None else max_length - 2)}{edge})?"
    else:
        core = f"{edge}{inner}{_repeat(low - 2, None if max_length is None else max_length - 2)}{edge}"
    if blank:
        return f"^(?:[{_SPACE}]+|[{_SPACE}]*{core}[{_SPACE}]*)$"
    return f"^[{_SPACE}]*{core}[{_SPACE}]*$"


class CharFieldInput(OpenApiSerializerFieldExtension):
    """Every plain ``CharField`` of a request body gets the pattern of what it accepts (its length
    bounds included; ``x-trimmed`` tells the hook to drop the minLength/maxLength that
    drf-spectacular adds afterwards)."""

    target_class = "rest_framework.fields.CharField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        field = self.target
        schema: dict[str, Any] = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        has_regex = any(isinstance(v, RegexValidator) for v in field.validators)  # published as it is
        if direction == "request" and not field.read_only and "pattern" not in schema and not has_regex:
            schema["pattern"] = string_pattern(
                single_line=validate_single_line in field.validators,
                blank=field.allow_blank,
                min_length=field.min_length,
                max_length=field.max_length,
            )
            schema["x-trimmed"] = True
        return schema


class StrictInputSchema(OpenApiSerializerExtension):
    """Input serializers (``governance.api.input.StrictInputMixin``) may declare
    ``required_when = {"comment": ("decision", ("reject", ...))}``: the field is required, and not
    blank or null, when the other field takes one of those values (the service refuses it
    otherwise). Published as an ``anyOf`` over the trigger's values (expanded by the hook below,
    after drf-spectacular's enum hook, which would otherwise make components of the branches);
    not for PATCH, where the stored values take part."""

    target_class = "governance.api.input.StrictInputMixin"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        serializer = self.target
        schema: dict[str, Any] = auto_schema._map_serializer(serializer, direction, bypass_extensions=True)
        if "__doc__" not in type(serializer).__dict__ or not type(serializer).__doc__:
            schema.pop("description", None)  # not the mixin's docstring
        if direction == "request":
            _list_bounds(serializer, schema)
        rules: dict[str, tuple[str, tuple[str, ...]]] = getattr(serializer, "required_when", {})
        if direction != "request" or not rules or getattr(serializer, "partial", False):
            return schema
        conditions = []
        for field_name, (trigger, values) in rules.items():
            field = serializer.fields[field_name]
            required: dict[str, Any] = {"type": "string"}
            if isinstance(field, serializers.CharField):
                required.update(minLength=1, pattern=string_pattern(single_line=False, blank=False))
            conditions.append(
                {
                    "field": field_name,
                    "schema": required,
                    "trigger": trigger,
                    "values": [str(v) for v in values],
                    "others": [str(k) for k in serializer.fields[trigger].choices if k not in values],
                }
            )
        schema["x-required-when"] = conditions
        return schema


def _list_bounds(serializer: Any, schema: dict[str, Any]) -> None:
    """minItems/maxItems of list fields that drf-spectacular leaves out: a nested serializer's
    ``many=True`` with ``max_length``, and ``allow_empty=False``."""
    for name, field in serializer.fields.items():
        prop = schema.get("properties", {}).get(name)
        if field.read_only or not isinstance(prop, dict) or prop.get("type") != "array":
            continue
        if isinstance(field, serializers.ListSerializer | serializers.ListField | serializers.ManyRelatedField):
            high: int | None = getattr(field, "max_length", None)
            if high is not None:
                prop["maxItems"] = min(prop.get("maxItems", high), high)
            low = getattr(field, "min_length", None) or 0
            if not getattr(field, "allow_empty", True):
                low = max(low, 1)
            if low:
                prop["minItems"] = max(prop.get("minItems", 0), low)


def _expand_required_when(schema: dict[str, Any]) -> None:
    conditions = schema.pop("x-required-when", None)
    if not conditions:
        return
    all_of = schema.setdefault("allOf", [])
    for c in conditions:
        when = {
            "properties": {c["trigger"]: {"type": "string", "enum": c["values"]}, c["field"]: c["schema"]},
            "required": [c["trigger"], c["field"]],
        }
        otherwise = [{"properties": {c["trigger"]: {"type": "string", "enum": c["others"]}}}] if c["others"] else []
        all_of.append({"anyOf": [*otherwise, when]})


# --- Webhook targets ------------------------------------------------------------------------
# RFC 3986 path and query characters (a webhook target has no fragment: it is never sent).
_PCHAR = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# What the API takes before the outbound policy looks at it: http(s), an ASCII host name or IP
# literal, a port, a path and query of a URI's own characters (Django's URLValidator alone lets
# "}" or a bare "%" through). The policy then refuses internal addresses, other ports and plain
# http (README "Outbound policy").
WEBHOOK_URL_SYNTAX = (
    f"^https?://(?:{_LABEL}(?:\\.{_LABEL})*|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]{{1,5}})?"
    f"(?:/(?:{_PCHAR}|/)*)?(?:\\?(?:{_PCHAR}|[/?])*)?$"
)
# What the schema offers (a part of the above, so that any value it allows is accepted): a public
# host name of at most 5 labels of at most 30 characters, a path of at most 80 and a query of at
# most 32 characters (or %-escapes) - within the field's 500 characters by construction, since a
# maxLength beside a pattern makes schemathesis' boundary cases very slow to draw.
_NAME_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,28}[A-Za-z0-9])?"
_PUBLIC_NAME = f"{_NAME_LABEL}(?:\\.{_NAME_LABEL}){{0,3}}\\.(?:[A-Za-z]{{2,24}}|xn--[A-Za-z0-9]{{1,20}})"
_OFFERED_REST = f"(?:/(?:{_PCHAR}|/){{0,80}})?(?:\\?(?:{_PCHAR}|[/?]){{0,32}})?"


def webhook_target_pattern() -> str:
    """The target URLs a subscription can name in this deployment: ``https://`` to a host name on
    an allowed port (``OUTBOUND_ALLOWED_PORTS``), or ``http(s)://`` to a host of
    ``OUTBOUND_ALLOWED_HOSTS``. Whether a public name resolves to a public address is decided when
    subscribing and at every send; a refused one is a 400 naming ``target_url``."""
    ports = "|".join(str(p) for p in sorted(settings.OUTBOUND_ALLOWED_PORTS))
    choices = [f"https://{_PUBLIC_NAME}(?::(?:{ports}))?"]
    for entry in settings.OUTBOUND_ALLOWED_HOSTS:
        entry = entry.strip()
        if not entry:
            continue
        if entry.startswith("["):  # [v6] or [v6]:port
            has_port = entry.rsplit("]", 1)[-1].startswith(":")
        elif entry.count(":") > 1:  # a bare IPv6 literal: bracketed in a URL
            entry, has_port = f"[{entry}]", False
        else:
            has_port = ":" in entry
        port = "" if has_port else f"(?::(?:{ports}))?"
        choices.append(f"https?://{re.escape(entry)}{port}")
    return f"^(?:{'|'.join(choices)}){_OFFERED_REST}$"


# --- Problem details, headers and parameters on every operation -----------------------------

PROBLEM_COMPONENT = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Validation errors by field.",
        },
    },
    "required": ["type", "title", "status", "detail"],
}
_PROBLEM_STATUSES = {
    "400": "Invalid input: the request breaks this schema (`errors` names the fields).",
    "401": "Not authenticated.",
    "403": "Not allowed.",
    "404": "Not found (or not visible to the caller).",
    "405": "Method not allowed.",
    "409": "Conflict with the object's current state.",
    "429": "Too many requests: retry after `Retry-After` seconds.",
}
_BODY_STATUSES = {
    "413": "The request body is larger than the deployment's limit (`REQUEST_BODY_MAX_BYTES`).",
    "415": "Unsupported media type (send JSON).",
    "422": "Unprocessable: the input matches this schema but names something that does not exist or "
    "breaks a rule the schema cannot state (`errors` names the fields); or the Idempotency-Key was "
    "already used with another body.",
}
_RESPONSE_HEADERS = {
    "401": {
        "WWW-Authenticate": {"schema": {"type": "string"}, "description": "How to authenticate (`Token`)."},
    },
    "409": {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 0},
            "description": "Sent when a request with the same Idempotency-Key is still running.",
        },
    },
    "429": {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 0},
            "required": True,
            "description": "Seconds to wait.",
        },
    },
}
_ASCII_SPACE = char_class((0x09, 0x09), (0x0B, 0x0C), (0x1C, 0x20))
IDEMPOTENCY_KEY_PATTERN = f"^[{_ASCII_SPACE}]*(?:[!-~](?:[ -~]{{0,198}}[!-~])?)?[{_ASCII_SPACE}]*$"
_IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    # governance.api.idempotency: stripped, then empty (no key) or 1-200 printable ASCII characters.
    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
    "description": "Same key and body within 24 h: the first response is returned again and nothing "
    "new is created; the same key with another body is a 422; while the first is running, a 409.",
}


def _problem_response(description: str, status: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
    }
    if status in _RESPONSE_HEADERS:
        response["headers"] = _RESPONSE_HEADERS[status]
    return response


def _bound_integer(schema: dict[str, Any], *, minimum: int = INT64_MIN) -> None:
    """A 64-bit range on an integer schema that has none (what the API and the database take)."""
    if schema.get("type") != "integer":
        return
    schema.setdefault("maximum", INT64_MAX)
    schema["maximum"] = min(schema["maximum"], INT64_MAX)
    schema["minimum"] = max(schema.get("minimum", minimum), minimum)


def _refine_request_schema(schema: Any, components: dict[str, Any], seen: set[str]) -> None:
    """Integers bounded and date-times in RFC 3339 form, through a request body's schema."""
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        if name not in seen:
            seen.add(name)
            _refine_request_schema(components.get(name), components, seen)
        return
    _bound_integer(schema)
    if schema.pop("x-trimmed", False):
        # The pattern counts the characters once stripped; these would count the whitespace too.
        schema.pop("minLength", None)
        schema.pop("maxLength", None)
    if schema.get("type") == "string" and schema.get("format") == "date-time":
        schema.setdefault("pattern", DATETIME_PATTERN)
    for key in ("properties",):
        for sub in (schema.get(key) or {}).values():
            _refine_request_schema(sub, components, seen)
    for key in ("items", "additionalProperties"):
        _refine_request_schema(schema.get(key), components, seen)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            _refine_request_schema(sub, components, seen)


def _refine_parameters(operation: dict[str, Any]) -> None:
    for param in operation.get("parameters", []):
        schema = param.get("schema")
        if not isinstance(schema, dict):
            continue
        if param.get("in") == "path":
            # Ids start at 1; an id past the range is matched by nothing (a 404), like any unknown one.
            _bound_integer(schema, minimum=1)
        elif param.get("in") == "query":
            # django-filter (and the pagination) read an empty value as "not given".
            param["allowEmptyValue"] = True
            _bound_integer(schema)
            if schema.get("type") == "string" and schema.get("format") == "date-time":
                schema.setdefault("pattern", DATETIME_PATTERN)
            elif schema.get("type") == "string" and not ({"enum", "format", "pattern"} & schema.keys()):
                # A NUL in the query string is refused (governance.request_limits).
                schema["pattern"] = f"^[^{_NUL}]*$"


def _request_schemas(operation: dict[str, Any]) -> list[Any]:
    content = (operation.get("requestBody") or {}).get("content") or {}
    return [media.get("schema") for media in content.values()]


def postprocess_problem_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Every operation documents the problem-details errors it can answer (the API's handler,
    middleware, throttles) with a ``ProblemDetails`` schema and their headers; every POST the
    ``Idempotency-Key`` header (handled for all of /api/v1/ by the idempotency middleware); and
    parameters and request bodies get the bounds and forms described in the module docstring."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["ProblemDetails"] = PROBLEM_COMPONENT
    for component in components.values():
        _expand_required_when(component)
    refined: set[str] = set()
    for path, path_item in result.get("paths", {}).items():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            wanted = dict(_PROBLEM_STATUSES)
            if method in {"post", "put", "patch"}:
                wanted.update(_BODY_STATUSES)
            for status, description in wanted.items():
                existing = responses.get(status)
                if existing is None or not existing.get("content"):
                    responses[status] = _problem_response(description, status)
            if method == "post":
                params = operation.setdefault("parameters", [])
                params[:] = [p for p in params if not (p.get("in") == "header" and p.get("name") == "Idempotency-Key")]
                if not path.startswith(FRESH_ANSWER_PATHS):
                    params.append(dict(_IDEMPOTENCY_PARAMETER))
            _refine_parameters(operation)
            for schema in _request_schemas(operation):
                _refine_request_schema(schema, components, refined)
    target = components.get("WebhookSubscriptionCreateRequest", {}).get("properties", {}).get("target_url")
    if isinstance(target, dict):
        # The pattern implies a URI of at most 500 characters; "format" and the lengths beside it
        # would only make schemathesis search for values that cannot exist.
        for key in ("format", "minLength", "maxLength"):
            target.pop(key, None)
        target["pattern"] = webhook_target_pattern()
        target["description"] = "An https URL of a public host (an http URL for a host the deployment allows)."
    _add_links(result)
    return result


# --- Links: what to call next with what a response returned ---------------------------------
# OpenAPI links turn the operations into workflows for clients and for schemathesis' stateful
# phase: register -> read / change / submit -> its access request -> decide; define a campaign ->
# start it -> launch -> its review items -> decide; subscribe a webhook -> its deliveries ->
# redeliver -> delete. Each source (operationId, status) lists (name, target operationId,
# parameters, request body); a list's first row stands for "one you just listed".
_ID = "$response.body#/id"
_FIRST = "$response.body#/results/0/id"
_SAME = "$request.path.id"
_INTEGRATION_ACTIONS = (
    ("GetIntegration", "integrations_retrieve"),
    ("ChangeIntegration", "integrations_partial_update"),
    ("SubmitIntegration", "integrations_submit_create"),
    ("SuspendIntegration", "integrations_suspend_create"),
    ("ReactivateIntegration", "integrations_reactivate_create"),
    ("RetireIntegration", "integrations_retire_create"),
    ("ProposeOwnershipTransfer", "integrations_transfer_create"),
    ("IntegrationHistory", "integrations_history_list"),
)
_REQUEST_ACTIONS = (
    ("GetAccessRequest", "access_requests_retrieve"),
    ("DecideAccessRequest", "access_requests_decisions_create"),
    ("WithdrawAccessRequest", "access_requests_withdraw_create"),
)
_TRANSFER_ACTIONS = (
    ("GetOwnershipTransfer", "ownership_transfers_retrieve"),
    ("AcceptOwnershipTransfer", "ownership_transfers_accept_create"),
    ("DeclineOwnershipTransfer", "ownership_transfers_decline_create"),
)
_DEFINITION_ACTIONS = (
    ("GetCampaignDefinition", "campaign_definitions_retrieve"),
    ("ChangeCampaignDefinition", "campaign_definitions_partial_update"),
    ("ReplaceCampaignDefinition", "campaign_definitions_update"),
)
_CAMPAIGN_ACTIONS = (
    ("GetCampaign", "campaigns_retrieve"),
    ("LaunchCampaign", "campaigns_launch_create"),
    ("CampaignItems", "campaigns_items_list"),
)
_ITEM_ACTIONS = (("GetReviewItem", "review_items_retrieve"), ("DecideReviewItem", "review_items_decision_create"))
_GRANT_ACTIONS = (("GetGrant", "grants_retrieve"), ("RevokeGrant", "grants_revoke_create"))
_WEBHOOK_ACTIONS = (
    ("GetWebhook", "webhooks_retrieve"),
    ("WebhookDeliveries", "webhooks_deliveries_list"),
    ("DeleteWebhook", "webhooks_destroy"),
)
_DELIVERY_ACTIONS = (
    ("GetWebhookDelivery", "webhook_deliveries_retrieve"),
    ("RedeliverWebhookDelivery", "webhook_deliveries_redeliver_create"),
)

Link = tuple[str, str, dict[str, str], Any]


def _on(actions: tuple[tuple[str, str], ...], expression: str) -> list[Link]:
    return [(name, target, {"path.id": expression}, None) for name, target in actions]


LINKS: dict[tuple[str, str], list[Link]] = {
    ("integrations_create", "201"): [
        *_on(_INTEGRATION_ACTIONS, _ID),
        ("IntegrationAccessRequests", "access_requests_list", {"query.integration": _ID}, None),
        ("IntegrationGrants", "grants_list", {"query.integration": _ID}, None),
        ("IntegrationTransfers", "ownership_transfers_list", {"query.integration": _ID}, None),
    ],
    ("integrations_list", "200"): _on(_INTEGRATION_ACTIONS, _FIRST),
    ("integrations_retrieve", "200"): _on(_INTEGRATION_ACTIONS[1:], _ID),
    ("integrations_partial_update", "200"): _on(_INTEGRATION_ACTIONS[:3], _ID),
    ("integrations_submit_create", "200"): [
        *_on(_INTEGRATION_ACTIONS[:1], _ID),
        ("IntegrationAccessRequests", "access_requests_list", {"query.integration": _ID}, None),
    ],
    ("integrations_suspend_create", "200"): _on((_INTEGRATION_ACTIONS[0], _INTEGRATION_ACTIONS[4]), _ID),
    ("integrations_reactivate_create", "200"): [
        ("IntegrationAccessRequests", "access_requests_list", {"query.integration": _ID}, None),
    ],
    ("integrations_transfer_create", "201"): _on(_TRANSFER_ACTIONS, _ID),
    ("ownership_transfers_list", "200"): _on(_TRANSFER_ACTIONS, _FIRST),
    ("access_requests_list", "200"): _on(_REQUEST_ACTIONS, _FIRST),
    ("access_requests_retrieve", "200"): _on(_REQUEST_ACTIONS[1:], _ID),
    ("access_requests_decisions_create", "201"): _on(_REQUEST_ACTIONS[:2], _SAME),
    ("grants_list", "200"): _on(_GRANT_ACTIONS, _FIRST),
    ("campaign_definitions_create", "201"): [
        *_on(_DEFINITION_ACTIONS, _ID),
        ("StartCampaign", "campaigns_create", {}, {"definition": _ID}),
    ],
    ("campaign_definitions_list", "200"): [
        *_on(_DEFINITION_ACTIONS, _FIRST),
        ("StartCampaign", "campaigns_create", {}, {"definition": _FIRST}),
    ],
    ("campaigns_create", "201"): [
        *_on(_CAMPAIGN_ACTIONS, _ID),
        ("CampaignReviewItems", "review_items_list", {"query.campaign": _ID}, None),
    ],
    ("campaigns_list", "200"): _on(_CAMPAIGN_ACTIONS, _FIRST),
    ("campaigns_launch_create", "202"): _on((_CAMPAIGN_ACTIONS[0], _CAMPAIGN_ACTIONS[2]), _ID),
    ("campaigns_items_list", "200"): _on(_ITEM_ACTIONS, _FIRST),
    ("review_items_list", "200"): _on(_ITEM_ACTIONS, _FIRST),
    ("review_items_decision_create", "200"): _on(_ITEM_ACTIONS[:1], _ID),
    ("webhooks_create", "201"): _on(_WEBHOOK_ACTIONS, _ID),
    ("webhooks_list", "200"): _on(_WEBHOOK_ACTIONS, _FIRST),
    ("webhooks_deliveries_list", "200"): _on(_DELIVERY_ACTIONS, _FIRST),
    ("webhook_deliveries_retrieve", "200"): _on(_DELIVERY_ACTIONS[1:], _ID),
    ("audit_events_list", "200"): [("GetAuditEvent", "audit_events_retrieve", {"path.id": _FIRST}, None)],
    ("scopes_list", "200"): [
        ("GetScope", "scopes_retrieve", {"path.code": "$response.body#/results/0/code"}, None),
        ("IntegrationsRequestingScope", "integrations_list", {"query.scope": "$response.body#/results/0/code"}, None),
    ],
}


def _add_links(result: dict[str, Any]) -> None:
    """Put ``LINKS`` on the responses they start from (only between operations the schema has)."""
    operations = {
        op.get("operationId"): op
        for item in result.get("paths", {}).values()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }
    for (source, status), links in LINKS.items():
        response = operations.get(source, {}).get("responses", {}).get(status)
        if response is None:
            continue
        for name, target, parameters, body in links:
            if target not in operations:
                continue
            link: dict[str, Any] = {"operationId": target}
            if parameters:
                link["parameters"] = parameters
            if body is not None:
                link["requestBody"] = body
            response.setdefault("links", {})[name] = link
