"""The decision log: every runtime policy decision, appended without a global lock (one bulk
INSERT per call; the entity slices stored once per distinct content). Tamper evidence follows
the token log's design: each decision carries the digest of its own fields; a sealer chains the
digests into batches and each batch into the audit chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from runtime.models import PolicyDecision, PolicyEntitySnapshot

# Snapshots this process knows are stored (bounded): the steady state writes none.
_KNOWN_SNAPSHOTS: set[str] = set()
_KNOWN_MAX = 50_000


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def decision_digest(row: PolicyDecision) -> str:
    """SHA-256 of the decision's canonical JSON: every field but ``id`` and ``batch``."""
    payload = {
        "at": _time(row.at),
        "decision_id": row.decision_id,
        "point": row.point,
        "caller": row.caller_id,
        "integration": row.integration_id,
        "owner": row.owner_id,
        "principal": row.principal,
        "action": row.action,
        "resource": row.resource,
        "context": row.context,
        "snapshot": row.snapshot_id,
        "decision": row.decision,
        "reasons": list(row.reasons),
        "errors": list(row.errors),
        "policy_version": row.policy_version_id,
        "shadow": row.shadow,
        "latency_us": row.latency_us,
        "trace": row.trace,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _store_snapshots(snapshots: Mapping[str, str]) -> None:
    new = {sha: text for sha, text in snapshots.items() if sha not in _KNOWN_SNAPSHOTS}
    if not new:
        return
    PolicyEntitySnapshot.objects.bulk_create(
        [PolicyEntitySnapshot(sha256=sha, entities=json.loads(text)) for sha, text in new.items()],
        ignore_conflicts=True,
    )
    if len(_KNOWN_SNAPSHOTS) > _KNOWN_MAX:
        _KNOWN_SNAPSHOTS.clear()
    _KNOWN_SNAPSHOTS.update(new)


def forget_snapshots() -> None:
    """Drop this process's memory of stored snapshots (tests roll their rows back)."""
    _KNOWN_SNAPSHOTS.clear()


def append(rows: Sequence[PolicyDecision], snapshots: Mapping[str, str]) -> list[PolicyDecision]:
    """Write decisions (and the snapshots they refer to that may not be stored yet)."""
    _store_snapshots(snapshots)
    for row in rows:
        row.digest = decision_digest(row)
    return PolicyDecision.objects.bulk_create(list(rows))


def describe(row: PolicyDecision) -> dict[str, Any]:
    """The decision as the API and pages show it."""
    return {
        "decision_id": row.decision_id,
        "at": row.at,
        "decision": row.decision,
        "reasons": row.reasons,
        "errors": row.errors,
    }
