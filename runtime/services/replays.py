"""Replays of a candidate policy version against the decision log (``runtime.policy.replay``).

A replay moves queued -> running -> done or failed. ``replay_start`` (IAM admins) records it,
audited as ``policy_replay.started``, and queues the run after commit; ``replay_run`` (the
background task) claims it with a conditional UPDATE, re-decides the log in chunks — writing
only its progress on the way — and writes the whole report at the end, audited as
``policy_replay.finished`` in the same transaction. A run that fails stores its error; running
the task again starts over and overwrites the report, so nothing is ever half applied.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance import queue
from governance.actors import Actor
from governance.audit import accountable_human, audit_record
from governance.exceptions import NotAllowed, ValidationFailed
from governance.models import User
from runtime.models import PolicyReplay, PolicyVersion, ReplayStatus
from runtime.permissions import can_manage_policies
from runtime.policy import replay as engine
from runtime.policy.source import LoadedPolicies, PolicyTextInvalid, load

log = logging.getLogger(__name__)

RUN_TASK = "runtime.tasks.policy_replay_run"
# A run may start over from any of these (a worker that died leaves "running" behind).
_RUNNABLE = (ReplayStatus.QUEUED, ReplayStatus.RUNNING, ReplayStatus.FAILED)


def _checked_limit(limit: object) -> int:
    if limit is None:
        return int(settings.RUNTIME_REPLAY_DEFAULT_LIMIT)
    maximum = int(settings.RUNTIME_REPLAY_MAX_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ValidationFailed.on("limit", "How many decisions to replay must be a whole number.")
    if not 1 <= limit <= maximum:
        raise ValidationFailed.on("limit", f"Replay between 1 and {maximum:,} decisions.")
    return limit


def _candidate(version: PolicyVersion) -> LoadedPolicies:
    try:
        return load(version.cedar_text)
    except PolicyTextInvalid as invalid:
        raise ValidationFailed.on("cedar_text", f"v{version.number} does not validate: {invalid}") from invalid


def replay_start(*, actor: Actor | User, version: PolicyVersion, limit: int | None = None) -> PolicyReplay:
    """Ask what ``version`` would change over the last ``limit`` decisions (default
    RUNTIME_REPLAY_DEFAULT_LIMIT, at most RUNTIME_REPLAY_MAX_LIMIT). IAM admins only; the
    version must validate. Audited as ``policy_replay.started``; the run is queued after commit
    and the replay is returned at once, queued."""
    if not can_manage_policies(actor):
        raise NotAllowed("Only IAM admins may replay policy versions.")
    checked = _checked_limit(limit)
    candidate = _candidate(version)
    requester = accountable_human(actor)
    if requester is None:
        raise NotAllowed("A replay needs a person who asked for it.")
    with transaction.atomic():
        replay = PolicyReplay.objects.create(
            candidate=version, candidate_sha256=candidate.sha256, limit=checked, requested_by=requester
        )
        audit_record(
            actor=actor,
            action="policy_replay.started",
            target=replay,
            target_repr=f"replay of policy v{version.number}",
            after={"version": version.number, "sha256": candidate.sha256, "limit": checked},
        )
        transaction.on_commit(lambda: queue.enqueue(RUN_TASK, replay.pk, name=f"policy-replay-{replay.pk}"))
    return replay


def _claim(replay_id: int) -> bool:
    """running, from queued (or from a run that died or failed): one conditional UPDATE, which
    also wipes whatever an earlier run left."""
    claimed = PolicyReplay.objects.filter(pk=replay_id, status__in=_RUNNABLE).update(
        status=ReplayStatus.RUNNING,
        started_at=timezone.now(),
        finished_at=None,
        total=0,
        processed=0,
        counts={},
        breakdown={},
        examples=[],
        error="",
    )
    return claimed == 1


def _finish(replay: PolicyReplay, values: dict[str, Any], audited: dict[str, Any]) -> None:
    """done or failed, with the report or the error, and its audit event, in one transaction."""
    with transaction.atomic():
        changed = PolicyReplay.objects.filter(pk=replay.pk, status=ReplayStatus.RUNNING).update(
            finished_at=timezone.now(), **values
        )
        if changed != 1:
            return
        audit_record(
            actor=Actor.system(on_behalf_of=replay.requested_by),
            action="policy_replay.finished",
            target=replay,
            target_repr=f"replay of policy v{replay.candidate.number}",
            owner=replay.requested_by,
            after={"version": replay.candidate.number, **audited},
        )


def replay_run(*, replay_id: int) -> PolicyReplay | None:
    """The background half: re-decide the log with the candidate's current text and store the
    report. Returns the replay, or None when there is nothing to run (gone, or already done)."""
    if not _claim(replay_id):
        return None
    replay = PolicyReplay.objects.select_related("candidate", "requested_by").get(pk=replay_id)
    # A second delivery of the task may run beside this one: once either has finished, the other
    # writes nothing more (its progress, its hash) over the finished report.
    running = PolicyReplay.objects.filter(pk=replay_id, status=ReplayStatus.RUNNING)
    try:
        candidate = _candidate(replay.candidate)
        running.update(candidate_sha256=candidate.sha256)
        report = engine.replay(
            candidate,
            limit=replay.limit,
            on_start=lambda total: running.update(total=total),
            on_progress=lambda done: running.update(processed=done),
        )
    except Exception as exc:  # the run fails loudly in its report; a rerun starts over
        log.exception("Policy replay %s failed", replay_id)
        message = str(getattr(exc, "detail", "") or exc) or type(exc).__name__
        _finish(replay, {"status": ReplayStatus.FAILED, "error": message[:2000]}, {"status": "failed"})
    else:
        values = {
            "status": ReplayStatus.DONE,
            "counts": report.counts,
            "breakdown": report.breakdown,
            "examples": report.examples,
        }
        _finish(replay, values, {"status": "done", "sha256": candidate.sha256, "counts": report.counts})
    replay.refresh_from_db()
    return replay
