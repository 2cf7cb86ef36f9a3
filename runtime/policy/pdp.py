"""The policy decision point: every runtime access decision, made in process by the enforced
policy version with the request's context, with every shadow version evaluated beside it and
logged but never applied.

Per decision: one query names the enforced and shadow versions (so a version enforced or
retired in another process counts at the next request); the policy sets and schema are parsed
once per process per version text; the entities are the request's slice read fresh from the
inventory (``runtime.policy.entities``), parsed once per distinct content. An evaluation
error, an unloadable version or no enforced version at all is a deny: never an allow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import cedarpy
from django.conf import settings
from django.utils import timezone

from governance.models import User
from inventory.models import Integration, Scope
from runtime.models import PolicyDecision, PolicyStatus, PolicyVersion
from runtime.policy import entities as entity_data
from runtime.policy import log as decision_log
from runtime.policy.log import Pending
from runtime.policy.schema import current_schema
from runtime.policy.source import LoadedPolicies, PolicyTextInvalid, load

ALLOW = "allow"
DENY = "deny"
ENTITY_HANDLES_MAX = 4096
logger = logging.getLogger(__name__)

CallerValue = bool | int | str


@dataclass(frozen=True)
class PolicyRequest:
    """One question: may ``integration`` do ``action`` on ``scope`` now, in this context?"""

    integration: Integration
    action: str
    scope: Scope
    task: str = ""
    chain_depth: int = 1
    delegated_user: User | None = None
    caller_attributes: Mapping[str, CallerValue] = field(default_factory=dict)
    at: datetime | None = None


@dataclass(frozen=True)
class VersionResult:
    number: int
    decision: str
    reasons: list[str]
    errors: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "reasons": self.reasons, "errors": self.errors}


@dataclass(frozen=True)
class Outcome:
    """The enforced decision (what the caller applies), each shadow version's result, and what
    the decision was logged as."""

    decision_id: str
    enforced: VersionResult
    shadow: list[VersionResult]
    version_id: int | None
    descriptions: Mapping[str, str]
    latency_us: int

    @property
    def allowed(self) -> bool:
        return self.enforced.decision == ALLOW

    def explanation(self) -> str:
        """Why, in words: the deciding policies with their descriptions, or the errors."""
        if self.enforced.errors:
            return "Denied: the policy could not be evaluated (" + "; ".join(self.enforced.errors) + ")."
        if not self.enforced.reasons:
            verb = "Allowed" if self.allowed else "Denied"
            return f"{verb}: no policy permits this (deny by default)." if not self.allowed else f"{verb}."
        named = "; ".join(f"{pid} ({self.descriptions.get(pid, '').rstrip('.')})" for pid in self.enforced.reasons)
        return f"{'Allowed' if self.allowed else 'Denied'} by policy {named} (policy v{self.enforced.number})."


@dataclass(frozen=True)
class ActiveVersion:
    pk: int
    number: int
    sha256: str
    policies: LoadedPolicies | None
    load_error: str


# --- Versions ---------------------------------------------------------------------------------

_VERSION_COPIES: dict[tuple[int, str, str], ActiveVersion] = {}


def _version(pk: int, number: int, sha256: str) -> ActiveVersion:
    """A version's parsed policy set, once per process per (version, text, schema): a version
    checked against another schema may no longer validate against this one."""
    key = (pk, sha256, current_schema().sha256)
    found = _VERSION_COPIES.get(key)
    if found is not None:
        return found
    text = PolicyVersion.objects.filter(pk=pk).values_list("cedar_text", flat=True).first() or ""
    try:
        loaded: ActiveVersion = ActiveVersion(pk, number, sha256, load(text), "")
    except PolicyTextInvalid as invalid:
        # The schema moved under a stored version (say, a caller attribute was undeclared): it
        # decides nothing until fixed, and every request it would decide is denied.
        loaded = ActiveVersion(pk, number, sha256, None, f"policy v{number} no longer validates: {invalid}")
    if len(_VERSION_COPIES) > 64:
        _VERSION_COPIES.clear()
    _VERSION_COPIES[key] = loaded
    return loaded


def active_versions() -> tuple[ActiveVersion | None, list[ActiveVersion]]:
    """The enforced version and the shadow versions, as the database says now (one query)."""
    rows = (
        PolicyVersion.objects.filter(status__in=[PolicyStatus.ENFORCED, PolicyStatus.SHADOW])
        .values_list("pk", "number", "sha256", "status")
        .order_by("number")
    )
    enforced: ActiveVersion | None = None
    shadows: list[ActiveVersion] = []
    for pk, number, sha256, status in rows:
        version = _version(pk, number, sha256)
        if status == PolicyStatus.ENFORCED:
            enforced = version
        else:
            shadows.append(version)
    return enforced, shadows


# --- Requests and entities ----------------------------------------------------------------------


def context_of(request: PolicyRequest, at: datetime) -> dict[str, Any]:
    local = at.astimezone(ZoneInfo(settings.RUNTIME_POLICY_TIME_ZONE))
    context: dict[str, Any] = {
        "time": {
            "epoch": int(at.timestamp()),
            "hour": local.hour,
            "minute": local.minute,
            "weekday": local.isoweekday(),
            "date": local.date().isoformat(),
        },
        "task": request.task,
        "chain_depth": request.chain_depth,
        "caller": dict(request.caller_attributes),
    }
    if request.delegated_user is not None:
        context["delegated_user"] = {"__entity": entity_data.uid("Person", request.delegated_user.pk)}
    return context


def cedar_request(request: PolicyRequest, context: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "principal": entity_data.uid_text("Integration", request.integration.pk),
        "action": entity_data.uid_text("Action", request.action),
        "resource": entity_data.uid_text("Scope", request.scope.code),
        "context": dict(context),
    }


def slice_of(request: PolicyRequest) -> list[entity_data.Entity]:
    parts = [entity_data.integration_entities(request.integration), entity_data.scope_entities(request.scope)]
    if request.delegated_user is not None:
        parts.append(entity_data.person_entities(request.delegated_user))
    return entity_data.merged(*parts)


def entities_json(entities: Sequence[entity_data.Entity]) -> tuple[str, str]:
    """The canonical JSON of an entity slice and its SHA-256 (the snapshot's key)."""
    text = json.dumps(entities, sort_keys=True, separators=(",", ":"))
    return text, hashlib.sha256(text.encode()).hexdigest()


_ENTITY_HANDLES: OrderedDict[tuple[str, str], cedarpy.Entities] = OrderedDict()


def entities_handle(text: str, sha256: str) -> cedarpy.Entities:
    """The parsed entities of a slice, once per process per content and schema (a bounded LRU)."""
    schema = current_schema()
    key = (sha256, schema.sha256)
    handle = _ENTITY_HANDLES.get(key)
    if handle is not None:
        # Another thread of this process may have evicted it meanwhile: the handle is still good.
        with contextlib.suppress(KeyError):
            _ENTITY_HANDLES.move_to_end(key)
        return handle
    handle = cedarpy.Entities.from_json_str(text, schema.handle)
    _ENTITY_HANDLES[key] = handle
    while len(_ENTITY_HANDLES) > ENTITY_HANDLES_MAX:
        with contextlib.suppress(KeyError):
            _ENTITY_HANDLES.popitem(last=False)
    return handle


def clear_caches() -> None:
    _VERSION_COPIES.clear()
    _ENTITY_HANDLES.clear()


# --- Evaluating -----------------------------------------------------------------------------------


def evaluate(
    version: ActiveVersion | None, request: Mapping[str, Any], entities: cedarpy.Entities | None
) -> VersionResult:
    """One version's decision. Anything but a clean allow is a deny: an evaluation error in any
    policy (Cedar would skip an erroring forbid), a version that does not load, no version."""
    if version is None:
        return VersionResult(0, DENY, [], ["no policy version is enforced"])
    if version.policies is None or entities is None:
        return VersionResult(version.number, DENY, [], [version.load_error or "the entity data could not be read"])
    try:
        result = cedarpy.is_authorized(dict(request), version.policies.handle, entities, current_schema().handle)
    except Exception as exc:  # a request the engine refuses is a deny with the reason, never a 500
        return VersionResult(version.number, DENY, [], [f"evaluation failed: {exc}"])
    errors = [str(error) for error in result.diagnostics.errors]
    reasons = sorted(str(reason) for reason in result.diagnostics.reasons)
    decision = ALLOW if result.allowed and not errors else DENY
    return VersionResult(version.number, decision, reasons, errors)


def _descriptions(version: ActiveVersion | None) -> Mapping[str, str]:
    return version.policies.descriptions if version is not None and version.policies is not None else {}


@dataclass
class Evaluated:
    """A decided request, before it is logged."""

    request: PolicyRequest
    outcome: Outcome
    context: dict[str, Any]
    entities_text: str
    entities_sha256: str


def evaluate_request(
    request: PolicyRequest, enforced: ActiveVersion | None, shadows: Sequence[ActiveVersion], now: datetime
) -> Evaluated:
    started = time.perf_counter_ns()
    at = request.at or now
    context = context_of(request, at)
    question = cedar_request(request, context)
    text, sha256 = entities_json(slice_of(request))
    try:
        handle: cedarpy.Entities | None = entities_handle(text, sha256)
    except Exception:  # entity data the schema refuses decides nothing: deny, logged
        logger.exception("Policy entities for %s could not be parsed; denied", question["principal"])
        handle = None
    result = evaluate(enforced, question, handle)
    shadow = [evaluate(version, question, handle) for version in shadows]
    outcome = Outcome(
        decision_id=uuid.uuid4().hex,
        enforced=result,
        shadow=shadow,
        version_id=enforced.pk if enforced is not None else None,
        descriptions=_descriptions(enforced),
        latency_us=(time.perf_counter_ns() - started) // 1000,
    )
    return Evaluated(request, outcome, context, text, sha256)


def decision_row(evaluated: Evaluated, *, point: str, caller: User | None, trace: str) -> PolicyDecision:
    request, outcome = evaluated.request, evaluated.outcome
    return PolicyDecision(
        at=request.at or timezone.now(),
        decision_id=outcome.decision_id,
        point=point,
        caller=caller,
        integration_id=request.integration.pk,
        owner_id=request.integration.business_owner_id,
        principal=entity_data.uid_text("Integration", request.integration.pk),
        action=request.action,
        resource=entity_data.uid_text("Scope", request.scope.code),
        context=evaluated.context,
        snapshot_id=evaluated.entities_sha256,
        decision=outcome.enforced.decision,
        reasons=outcome.enforced.reasons,
        errors=outcome.enforced.errors,
        policy_version_id=outcome.version_id,
        shadow={str(result.number): result.as_dict() for result in outcome.shadow},
        latency_us=outcome.latency_us,
        trace=trace[:64],
    )


def decide_pending(
    requests: Sequence[PolicyRequest],
    *,
    point: str,
    caller: User | None = None,
    trace: str = "",
    traces: Sequence[str] | None = None,
) -> tuple[list[Outcome], Pending]:
    """Decide each request with the enforced version (and every shadow version): the outcomes in
    order and the decisions to log. The caller must write them (``runtime.policy.log.append``)
    before it acts on an outcome — in its own transaction if it has a record of its own.
    ``traces``, when given, is one trace per request (a batch whose items carry their own);
    otherwise every decision is logged with ``trace``."""
    if traces is not None and len(traces) != len(requests):
        raise ValueError("traces must name one trace per request")
    now = timezone.now()
    enforced, shadows = active_versions()
    decided = [evaluate_request(request, enforced, shadows, now) for request in requests]
    each = traces if traces is not None else [trace] * len(decided)
    rows = [
        decision_row(item, point=point, caller=caller, trace=item_trace)
        for item, item_trace in zip(decided, each, strict=True)
    ]
    pending = Pending(rows, {item.entities_sha256: item.entities_text for item in decided})
    return [item.outcome for item in decided], pending


def decide(
    requests: Sequence[PolicyRequest],
    *,
    point: str,
    caller: User | None = None,
    trace: str = "",
    traces: Sequence[str] | None = None,
) -> list[Outcome]:
    """Decide and log: the log is written before the outcomes are returned, so a decision that
    could not be logged raises, and the caller treats it as a deny."""
    outcomes, pending = decide_pending(requests, point=point, caller=caller, trace=trace, traces=traces)
    decision_log.append(pending.rows, pending.snapshots)
    return outcomes
