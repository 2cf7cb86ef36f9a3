"""Replay: what would a candidate policy version change? The candidate re-decides the last
``limit`` logged decisions and each new decision is compared with the one the portal enforced
then (the logged ``decision``, the baseline).

Entity data is the data of each decision's own time: the snapshot logged with it
(``PolicyEntitySnapshot``), never the inventory as it stands today. The replay then isolates the
effect of the policy change alone — the same request, the same facts, another policy. Replaying
against today's data would mix in every suspension, grant and owner change since, and answer a
different question ("what would today's data and this policy decide?").

How it reads the log: the window of rows is fixed when the run starts (the newest ``limit`` ids,
so decisions logged meanwhile are not counted), then read newest first in chunks of
``CHUNK_SIZE`` rows by id range with ``values_list`` — memory stays flat whatever the limit.
Each chunk is grouped by snapshot; the snapshots that agree on every entity they share are
joined into one entity set, parsed once into a cedarpy ``Entities`` handle, and their requests
decided with one ``is_authorized_batch`` call. A decision's result cannot change by joining: its
request reaches only the entities of its own snapshot, identical in the joined set (unless a
condition names an entity literally: then each snapshot is decided on its own).

How it counts: a candidate's evaluation error is a deny (as at run time) and is also counted in
``errors``; a decision whose snapshot is gone (purged) or no longer parses against the schema is
not compared at all: it counts in ``errors`` and ``not_replayed``, never as a change. So
``unchanged + allow_to_deny + deny_to_allow + not_replayed`` is the number of rows read.
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import cedarpy
from django.db.models import TextField
from django.db.models.functions import Cast

from governance.models import User
from inventory.models import Integration
from runtime.models import PolicyDecision, PolicyEntitySnapshot
from runtime.policy import entities as entity_data
from runtime.policy.schema import current_schema
from runtime.policy.source import LoadedPolicies

ALLOW = "allow"
DENY = "deny"
ALLOW_TO_DENY = "allow_to_deny"
DENY_TO_ALLOW = "deny_to_allow"
# Rows read per query (and per progress update).
CHUNK_SIZE = 2000
# Snapshots kept during one run (as stored, not parsed): consecutive decisions share many.
SNAPSHOT_HANDLES_MAX = 256
EXAMPLES_MAX = 50
ERROR_EXAMPLES_MAX = 5
# What a change to deny is attributed to when no forbid matched.
NO_PERMIT = "no permit"
EVALUATION_ERROR = "evaluation error"
# Names looked up per query at the end (a parameter list a database always accepts).
_NAMES_PER_QUERY = 500

_FIELDS = (
    "id",
    "decision_id",
    "at",
    "integration_id",
    "owner_id",
    "principal",
    "action",
    "resource",
    "context_text",
    "snapshot_id",
    "decision",
    "reasons",
)


class Logged(NamedTuple):
    """One logged decision, as much of it as replay reads."""

    id: int
    decision_id: str
    at: datetime
    integration_id: int | None
    owner_id: int | None
    principal: str
    action: str
    resource: str
    # The logged context as JSON text: handed to Cedar as it is, never decoded here.
    context: str
    snapshot_id: str | None
    decision: str
    reasons: list[str]


@dataclass(frozen=True)
class Replayed:
    """The candidate's answer to one logged request. ``cedar_allowed`` is Cedar's own verdict;
    the decision is an allow only when Cedar allowed without any error."""

    decision: str
    cedar_allowed: bool
    reasons: list[str]
    errors: list[str]


@dataclass(frozen=True)
class Window:
    """The ids a run reads: the newest ``total`` decisions when it started, ``low`` to ``high``."""

    low: int
    high: int
    total: int


@dataclass(frozen=True)
class Report:
    counts: dict[str, int]
    breakdown: dict[str, dict[str, dict[str, Any]]]
    examples: list[dict[str, Any]]


def window(limit: int) -> Window:
    """The newest ``limit`` decisions by id (fewer when the log holds fewer)."""
    newest = PolicyDecision.objects.order_by("-id").values_list("id", flat=True)
    high = newest.first()
    if high is None:
        return Window(0, 0, 0)
    low = newest[limit - 1 : limit].first()
    if low is None:
        low = PolicyDecision.objects.order_by("id").values_list("id", flat=True).first() or high
    total = PolicyDecision.objects.filter(id__gte=low, id__lte=high).count()
    return Window(low, high, total)


def chunks(span: Window, size: int) -> Iterable[list[Logged]]:
    """The window's rows newest first, ``size`` at a time: one query per chunk by id range."""
    cursor = span.high + 1
    while span.total:
        rows = list(
            PolicyDecision.objects.filter(id__gte=span.low, id__lt=cursor)
            .annotate(context_text=Cast("context", TextField()))
            .order_by("-id")
            .values_list(*_FIELDS)[:size]
        )
        if rows:
            yield [Logged(*row) for row in rows]
        if len(rows) < size:
            return
        cursor = rows[-1][0]


class SnapshotHandles:
    """Entity snapshots as stored (lists of entities), fetched per chunk (one query for those not
    yet held) and kept in a bounded LRU. A snapshot that is gone is held as None."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit or SNAPSHOT_HANDLES_MAX
        self.held: OrderedDict[str, list[dict[str, Any]] | None] = OrderedDict()

    def fetch(self, keys: Iterable[str]) -> dict[str, list[dict[str, Any]] | None]:
        wanted = set(keys)
        found = {key: self.held[key] for key in wanted if key in self.held}
        for key in found:
            self.held.move_to_end(key)
        missing = wanted - found.keys()
        if missing:
            stored = dict(PolicyEntitySnapshot.objects.filter(sha256__in=missing).values_list("sha256", "entities"))
            for key in missing:
                entities = stored.get(key)
                found[key] = entities if isinstance(entities, list) else None
                self._keep(key, found[key])
        return found

    def _keep(self, key: str, entities: list[dict[str, Any]] | None) -> None:
        self.held[key] = entities
        while len(self.held) > self.limit:
            self.held.popitem(last=False)


def parsed(entities: Sequence[dict[str, Any]]) -> cedarpy.Entities | None:
    """A handle for ``entities``, or None when today's schema refuses them."""
    try:
        return cedarpy.Entities.from_json_str(json.dumps(list(entities)), current_schema().handle)
    except Exception:  # entity data today's schema refuses cannot be replayed: counted as an error
        return None


def _uid(entity: dict[str, Any]) -> tuple[str, str]:
    return (str(entity["uid"]["type"]), str(entity["uid"]["id"]))


def merged_groups(
    snapshots: Sequence[tuple[str, list[dict[str, Any]]]],
) -> list[tuple[list[dict[str, Any]], list[str]]]:
    """Snapshots joined into as few entity sets as possible: a snapshot joins the current set
    when every entity it shares with it is identical (a person, a system, an integration that
    did not change between the two decisions), else it starts the next set."""
    groups: list[tuple[list[dict[str, Any]], list[str]]] = []
    current: dict[tuple[str, str], dict[str, Any]] = {}
    keys: list[str] = []
    for key, entities in snapshots:
        if any(current.get(_uid(entity), entity) != entity for entity in entities):
            groups.append((list(current.values()), keys))
            current, keys = {}, []
        for entity in entities:
            current[_uid(entity)] = entity
        keys.append(key)
    if keys:
        groups.append((list(current.values()), keys))
    return groups


def reads_named_entities(candidate: LoadedPolicies) -> bool:
    """Whether a condition names an entity literally (``Scope::"x".sensitivity``): such a policy
    could read an entity another decision's snapshot brought into a joined set, so its
    decisions are replayed one snapshot at a time."""
    conditions = [policy.get("conditions", []) for policy in candidate.est["staticPolicies"].values()]
    return '"__entity"' in json.dumps(conditions)


def cedar_request(row: Logged) -> dict[str, Any]:
    return {
        "principal": row.principal,
        "action": entity_data.uid_text("Action", row.action),
        "resource": row.resource,
        "context": row.context,
    }


def _answer(result: cedarpy.AuthzResult) -> Replayed:
    errors = [str(error) for error in result.diagnostics.errors]
    reasons = sorted(str(reason) for reason in result.diagnostics.reasons)
    allowed = bool(result.allowed)
    return Replayed(ALLOW if allowed and not errors else DENY, allowed, reasons, errors)


def decide_group(candidate: LoadedPolicies, rows: Sequence[Logged], handle: cedarpy.Entities) -> list[Replayed]:
    """The candidate's answers for rows sharing one snapshot: one batch call. A batch the
    engine refuses as a whole is a deny with the error for each of its rows."""
    try:
        results = cedarpy.is_authorized_batch(
            [cedar_request(row) for row in rows], candidate.handle, handle, current_schema().handle
        )
    except Exception as exc:  # never a crash of the run: every row of the group is an evaluation error
        return [Replayed(DENY, False, [], [f"evaluation failed: {exc}"]) for _ in rows]
    return [_answer(result) for result in results]


def _deny_attribution(answer: Replayed) -> list[str]:
    """What turned an allow into a deny: the forbids that matched, "no permit" when none did, or
    an evaluation error (Cedar allowed, or nothing matched, but a policy failed)."""
    if answer.cedar_allowed or (answer.errors and not answer.reasons):
        return [EVALUATION_ERROR]
    return answer.reasons or [NO_PERMIT]


@dataclass
class Tally:
    """The running counts of one replay."""

    counts: Counter[str] = field(default_factory=Counter)
    by_policy: dict[str, Counter[str]] = field(default_factory=dict)
    by_integration: dict[int | None, Counter[str]] = field(default_factory=dict)
    by_owner: dict[int | None, Counter[str]] = field(default_factory=dict)
    changes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {ALLOW_TO_DENY: [], DENY_TO_ALLOW: []})
    failures: list[dict[str, Any]] = field(default_factory=list)

    def compare(self, row: Logged, answer: Replayed) -> None:
        if answer.errors:
            self.counts["errors"] += 1
        if answer.decision == row.decision:
            self.counts["unchanged"] += 1
            return
        change = DENY_TO_ALLOW if answer.decision == ALLOW else ALLOW_TO_DENY
        self.counts[change] += 1
        policies = answer.reasons if change == DENY_TO_ALLOW else _deny_attribution(answer)
        for policy_id in policies:
            self.by_policy.setdefault(policy_id, Counter())[change] += 1
        self.by_integration.setdefault(row.integration_id, Counter())[change] += 1
        self.by_owner.setdefault(row.owner_id, Counter())[change] += 1
        if len(self.changes[change]) < EXAMPLES_MAX:
            self.changes[change].append(_example(row, change, answer))

    def not_replayed(self, row: Logged, message: str) -> None:
        self.counts["errors"] += 1
        self.counts["not_replayed"] += 1
        if len(self.failures) < ERROR_EXAMPLES_MAX:
            self.failures.append(_example(row, "error", Replayed(DENY, False, [], [message])))

    def report(self, candidate: LoadedPolicies) -> Report:
        counts = {
            key: self.counts[key] for key in ("unchanged", ALLOW_TO_DENY, DENY_TO_ALLOW, "errors", "not_replayed")
        }
        described = {policy_id: candidate.descriptions.get(policy_id, "") for policy_id in self.by_policy}
        breakdown = {
            "policy": {
                key: {"description": described[key], **_changes(tally)} for key, tally in self.by_policy.items()
            },
            "integration": _named(self.by_integration, _integration_names, "name"),
            "owner": _named(self.by_owner, _usernames, "username"),
        }
        return Report(counts, breakdown, _examples(self.changes) + self.failures)


def _changes(tally: Counter[str]) -> dict[str, int]:
    return {ALLOW_TO_DENY: tally[ALLOW_TO_DENY], DENY_TO_ALLOW: tally[DENY_TO_ALLOW]}


def _named(
    tallies: dict[int | None, Counter[str]], names_of: Callable[[list[int]], dict[int, str]], label: str
) -> dict[str, dict[str, Any]]:
    names = names_of([key for key in tallies if key is not None])
    return {
        "none" if key is None else str(key): {label: "" if key is None else names.get(key, ""), **_changes(tally)}
        for key, tally in tallies.items()
    }


def _in_slices(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _NAMES_PER_QUERY):
        yield ids[start : start + _NAMES_PER_QUERY]


def _integration_names(ids: list[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    for part in _in_slices(ids):
        names.update(Integration.objects.filter(pk__in=part).values_list("pk", "name"))
    return names


def _usernames(ids: list[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    for part in _in_slices(ids):
        names.update(User.objects.filter(pk__in=part).values_list("pk", "username"))
    return names


def _example(row: Logged, change: str, answer: Replayed) -> dict[str, Any]:
    return {
        "change": change,
        "decision_id": row.decision_id,
        "at": row.at.isoformat(),
        "integration_id": row.integration_id,
        "owner_id": row.owner_id,
        "principal": row.principal,
        "action": row.action,
        "resource": row.resource,
        "old_decision": row.decision,
        "old_reasons": list(row.reasons),
        "new_decision": answer.decision,
        "new_reasons": answer.reasons,
        "new_errors": answer.errors,
    }


def _examples(changes: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Up to EXAMPLES_MAX changes, both kinds shown when both happened: each kind gets half,
    and a kind with fewer leaves its share to the other. Newest first within a kind."""
    to_deny, to_allow = changes[ALLOW_TO_DENY], changes[DENY_TO_ALLOW]
    half = EXAMPLES_MAX // 2
    allow_share = min(len(to_allow), max(half, EXAMPLES_MAX - len(to_deny)))
    deny_share = min(len(to_deny), EXAMPLES_MAX - allow_share)
    return to_deny[:deny_share] + to_allow[:allow_share]


def _decide_sets(
    candidate: LoadedPolicies,
    groups: dict[str | None, list[Logged]],
    snapshots: list[tuple[str, list[dict[str, Any]]]],
    tally: Tally,
    *,
    join: bool = True,
) -> None:
    """Decide each joined entity set's rows with one batch call; a set today's schema refuses is
    decided snapshot by snapshot, so only the snapshots at fault count as not replayed."""
    if join and not reads_named_entities(candidate):
        joined = merged_groups(snapshots)
    else:
        joined = [(entities, [key]) for key, entities in snapshots]
    by_key = dict(snapshots)
    for entities, keys in joined:
        handle = parsed(entities)
        if handle is None and len(keys) > 1:
            alone = [(key, by_key[key]) for key in keys]
            _decide_sets(candidate, {key: groups[key] for key in keys}, alone, tally, join=False)
            continue
        rows = [row for key in keys for row in groups[key]]
        if handle is None:
            for row in rows:
                tally.not_replayed(row, f"entity snapshot {keys[0][:12]} no longer parses")
            continue
        for row, answer in zip(rows, decide_group(candidate, rows, handle), strict=True):
            tally.compare(row, answer)


def replay_chunk(candidate: LoadedPolicies, rows: Sequence[Logged], handles: SnapshotHandles, tally: Tally) -> None:
    """Re-decide one chunk: its snapshots joined into as few entity sets as agree with each other,
    one batch call per set (a chunk's decisions mostly share people, systems and integrations)."""
    groups: dict[str | None, list[Logged]] = {}
    for row in rows:
        groups.setdefault(row.snapshot_id, []).append(row)
    stored = handles.fetch(key for key in groups if key is not None)
    snapshots: list[tuple[str, list[dict[str, Any]]]] = []
    for key, group in groups.items():
        entities = stored.get(key) if key is not None else None
        if key is None or entities is None:
            message = f"entity snapshot {(key or '')[:12] or '(none)'} is gone"
            for row in group:
                tally.not_replayed(row, message)
            continue
        snapshots.append((key, entities))
    _decide_sets(candidate, groups, snapshots, tally)


def replay(
    candidate: LoadedPolicies,
    *,
    limit: int,
    on_start: Callable[[int], object] | None = None,
    on_progress: Callable[[int], object] | None = None,
    chunk_size: int | None = None,
) -> Report:
    """Re-decide the newest ``limit`` logged decisions with ``candidate`` and count what changes.
    ``on_start`` hears the total once, ``on_progress`` the rows processed after each chunk."""
    span = window(limit)
    if on_start is not None:
        on_start(span.total)
    handles = SnapshotHandles()
    tally = Tally()
    processed = 0
    for rows in chunks(span, chunk_size or CHUNK_SIZE):
        replay_chunk(candidate, rows, handles, tally)
        processed += len(rows)
        if on_progress is not None:
            on_progress(processed)
    return tally.report(candidate)
