"""Replay: a candidate version re-decides the logged decisions with the entity data of their time,
and the report counts exactly what would change, by policy, integration and owner."""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

import django_q.conf
import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.exceptions import NotAllowed, ValidationFailed
from governance.models import AuditEvent, User
from governance.roles import Role
from inventory.models import Grant, Integration
from runtime.models import PolicyDecision, PolicyEntitySnapshot, PolicyReplay, PolicyStatus, PolicyVersion
from runtime.policy import entities, pdp
from runtime.policy import replay as engine
from runtime.policy.source import load
from runtime.services.policies import policy_draft_create
from runtime.services.replays import replay_run, replay_start
from runtime.tasks import policy_replay_run
from tests.runtime.policy.support import WEEKDAY_MORNING, PolicyWorld, build_policy_world

pytestmark = pytest.mark.django_db

FORBID_WRITE = """
@id("forbid-crm-write")
@description("Nobody writes to the CRM while it migrates.")
forbid (principal, action, resource is Scope) when { resource.code == "crm:write" };
"""
PERMIT_ADMIN = """
@id("permit-crm-admin")
@description("Every active integration may administer the CRM.")
permit (principal is Integration, action, resource is Scope)
when { principal.status == "active" && resource.code == "crm:admin" };
"""
# Valid against the schema, fails at evaluation on every request (integer overflow).
OVERFLOWING = """
@id("overflowing-forbid")
@description("Fails to evaluate on every request.")
forbid (principal, action, resource) when { context.time.epoch * 10000000000000 > 0 };
"""


def enforced_text() -> str:
    return PolicyVersion.objects.get(status=PolicyStatus.ENFORCED).cedar_text


def candidate_version(text: str, actor: User) -> PolicyVersion:
    base = PolicyVersion.objects.get(status=PolicyStatus.ENFORCED)
    return policy_draft_create(actor=actor, title="Candidate", cedar_text=text, based_on=base)


def no_longer_valid(version: PolicyVersion) -> None:
    """As if the schema had moved under the stored text (a save never stores an invalid one)."""
    PolicyVersion.objects.filter(pk=version.pk).update(cedar_text="forbid (principal, action, resource)")
    version.refresh_from_db()


def decide(integration: Integration, scope_code: str, world: PolicyWorld, times: int) -> None:
    loaded = entities.load_integrations([integration.pk], WEEKDAY_MORNING)[integration.pk]
    scope = next(scope for scope in world.scopes.values() if scope.code == scope_code)
    request = pdp.PolicyRequest(integration=loaded, action="exchange_token", scope=scope, at=WEEKDAY_MORNING)
    pdp.decide([request] * times, point="api")


@pytest.fixture
def crafted_log(owner: User, make_user: Callable[..., User]) -> dict[str, Any]:
    """Oldest first: 6 allows on crm:read and 2 on crm:write (the support agent), 1 allow on
    crm:write (a billing bot of another owner), 2 denies on crm:admin (the support agent)."""
    world = build_policy_world(owner)
    billing_owner = make_user("billie")
    billing = Integration.objects.create(
        name="Billing bot", kind="agent", purpose="Bills.", business_owner=billing_owner, status="active"
    )
    Grant.objects.create(integration=billing, scope=world.scopes["write"], source_type="tests", source_id="2")
    decide(world.integration, "crm:read", world, 6)
    decide(world.integration, "crm:write", world, 2)
    decide(billing, "crm:write", world, 1)
    decide(world.integration, "crm:admin", world, 2)
    assert (
        list(PolicyDecision.objects.order_by("id").values_list("decision", flat=True)) == ["allow"] * 9 + ["deny"] * 2
    )
    return {"world": world, "billing": billing, "billing_owner": billing_owner}


def report_of(text: str, limit: int = 1000) -> engine.Report:
    return engine.replay(load(text), limit=limit)


def test_replay_counts_exactly_what_a_candidate_changes(crafted_log: dict[str, Any]) -> None:
    world, billing = crafted_log["world"], crafted_log["billing"]
    report = report_of(enforced_text() + FORBID_WRITE + PERMIT_ADMIN)
    assert report.counts == {"unchanged": 6, "allow_to_deny": 3, "deny_to_allow": 2, "errors": 0, "not_replayed": 0}
    assert report.breakdown["policy"] == {
        "forbid-crm-write": {
            "description": "Nobody writes to the CRM while it migrates.",
            "allow_to_deny": 3,
            "deny_to_allow": 0,
        },
        "permit-crm-admin": {
            "description": "Every active integration may administer the CRM.",
            "allow_to_deny": 0,
            "deny_to_allow": 2,
        },
    }
    assert report.breakdown["integration"] == {
        str(world.integration.pk): {"name": "Support agent", "allow_to_deny": 2, "deny_to_allow": 2},
        str(billing.pk): {"name": "Billing bot", "allow_to_deny": 1, "deny_to_allow": 0},
    }
    assert report.breakdown["owner"] == {
        str(world.owner.pk): {"username": "owner", "allow_to_deny": 2, "deny_to_allow": 2},
        str(crafted_log["billing_owner"].pk): {"username": "billie", "allow_to_deny": 1, "deny_to_allow": 0},
    }


def test_examples_carry_the_old_and_the_new_reasons(crafted_log: dict[str, Any]) -> None:
    report = report_of(enforced_text() + FORBID_WRITE + PERMIT_ADMIN)
    changes = {(example["change"], example["resource"]) for example in report.examples}
    assert changes == {("allow_to_deny", 'Scope::"crm:write"'), ("deny_to_allow", 'Scope::"crm:admin"')}
    assert len(report.examples) == 5
    to_deny = next(example for example in report.examples if example["change"] == "allow_to_deny")
    assert (to_deny["old_decision"], to_deny["old_reasons"]) == ("allow", ["permit-within-active-grants"])
    assert (to_deny["new_decision"], to_deny["new_reasons"]) == ("deny", ["forbid-crm-write"])
    to_allow = next(example for example in report.examples if example["change"] == "deny_to_allow")
    assert (to_allow["old_decision"], to_allow["old_reasons"]) == ("deny", [])
    assert (to_allow["new_decision"], to_allow["new_reasons"]) == ("allow", ["permit-crm-admin"])
    logged = PolicyDecision.objects.get(decision_id=to_allow["decision_id"])
    assert to_allow["principal"] == logged.principal and to_allow["action"] == "exchange_token"


def test_a_deny_with_no_forbid_is_attributed_to_no_permit(crafted_log: dict[str, Any]) -> None:
    without_permit = """
@id("forbid-everything-but-read")
@description("Only reads.")
forbid (principal, action, resource is Scope) when { resource.access != "read" };
"""
    report = report_of(without_permit + PERMIT_ADMIN.replace("permit-crm-admin", "permit-admin-only"))
    # Reads lose their permit (this set has none for them); writes meet the forbid.
    assert report.breakdown["policy"]["no permit"]["allow_to_deny"] == 6
    assert report.breakdown["policy"]["forbid-everything-but-read"]["allow_to_deny"] == 3
    assert report.counts["deny_to_allow"] == 0


def test_an_erroring_candidate_denies_and_counts_its_errors(crafted_log: dict[str, Any]) -> None:
    report = report_of(enforced_text() + OVERFLOWING)
    # The forbid that fails is skipped by Cedar, the permit matches: still a deny, never an allow.
    assert report.counts == {"unchanged": 2, "allow_to_deny": 9, "deny_to_allow": 0, "errors": 11, "not_replayed": 0}
    assert report.breakdown["policy"] == {
        "evaluation error": {"description": "", "allow_to_deny": 9, "deny_to_allow": 0}
    }
    example = report.examples[0]
    assert example["new_decision"] == "deny" and "overflow" in example["new_errors"][0]


def test_a_decision_whose_snapshot_is_gone_counts_as_an_error_not_a_change(crafted_log: dict[str, Any]) -> None:
    admin_snapshot = PolicyDecision.objects.filter(resource='Scope::"crm:admin"').values("snapshot_id")
    PolicyEntitySnapshot.objects.filter(sha256__in=admin_snapshot).delete()
    report = report_of(enforced_text() + FORBID_WRITE + PERMIT_ADMIN)
    assert report.counts == {"unchanged": 6, "allow_to_deny": 3, "deny_to_allow": 0, "errors": 2, "not_replayed": 2}
    failures = [example for example in report.examples if example["change"] == "error"]
    assert len(failures) == 2 and "gone" in failures[0]["new_errors"][0]


def test_only_the_newest_decisions_within_the_limit_are_replayed(crafted_log: dict[str, Any]) -> None:
    # The newest five: the two admin denies, the billing bot's write and two of the agent's writes.
    report = report_of(enforced_text() + FORBID_WRITE + PERMIT_ADMIN, limit=5)
    assert report.counts == {"unchanged": 0, "allow_to_deny": 3, "deny_to_allow": 2, "errors": 0, "not_replayed": 0}
    report = report_of(enforced_text() + FORBID_WRITE + PERMIT_ADMIN, limit=2)
    assert report.counts == {"unchanged": 0, "allow_to_deny": 0, "deny_to_allow": 2, "errors": 0, "not_replayed": 0}


def test_tiny_chunks_and_a_tiny_snapshot_cache_give_the_same_report(
    crafted_log: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = enforced_text() + FORBID_WRITE + PERMIT_ADMIN
    whole = report_of(text)
    monkeypatch.setattr(engine, "CHUNK_SIZE", 2)
    monkeypatch.setattr(engine, "SNAPSHOT_HANDLES_MAX", 1)
    progress: list[int] = []
    chunked = engine.replay(load(text), limit=1000, on_progress=progress.append)
    assert progress == [2, 4, 6, 8, 10, 11]
    assert (chunked.counts, chunked.breakdown, chunked.examples) == (whole.counts, whole.breakdown, whole.examples)


def test_each_chunk_reads_its_rows_in_one_query_and_each_snapshot_once(
    crafted_log: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "CHUNK_SIZE", 4)
    with CaptureQueriesContext(connection) as queries:
        engine.replay(load(enforced_text()), limit=1000)
    decision_reads = [q for q in queries if 'FROM "runtime_policydecision"' in q["sql"]]
    snapshot_reads = [q for q in queries if 'FROM "runtime_policyentitysnapshot"' in q["sql"]]
    # The window (newest id, the limit-th newest, else the oldest, the count), then 3 chunks.
    assert len(decision_reads) == 4 + 3
    # Newest first: the chunks hold 3, 1 and 0 snapshots not parsed before, each read once.
    assert len(snapshot_reads) == 2


PEOPLE_MATTER = """
@id("permit-held-scopes")
@description("What the grants hold.")
permit (principal is Integration, action, resource is Scope) when { principal.grants.contains(resource) };

@id("forbid-inactive-owner")
@description("No accountable owner, nothing.")
forbid (principal is Integration, action, resource) when { !principal.business_owner.active };

@id("forbid-for-admins")
@description("Nothing on behalf of an IAM admin.")
forbid (principal, action, resource) when {
  context has delegated_user && context.delegated_user.roles.contains("iam_admin")
};
"""


def test_joined_snapshots_decide_exactly_as_each_snapshot_alone(
    crafted_log: dict[str, Any], make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same people and integrations change between decisions (an owner deactivated, a person
    made an admin): a joined entity set must never let one decision read another's copy."""
    world, billing, billie = crafted_log["world"], crafted_log["billing"], crafted_log["billing_owner"]
    dana = make_user("dana")

    def request(pk: int, delegate: User | None) -> pdp.PolicyRequest:
        return pdp.PolicyRequest(
            integration=entities.load_integrations([pk], WEEKDAY_MORNING)[pk],
            action="use_scope",
            scope=world.scopes["write"],
            delegated_user=entities.load_people([delegate.pk])[delegate.pk] if delegate else None,
            at=WEEKDAY_MORNING,
        )

    # The same requests before and after: billie's account deactivated, dana made an IAM admin.
    for _ in range(2):
        pdp.decide([request(world.integration.pk, dana), request(billing.pk, None)], point="api")
        User.objects.filter(pk=billie.pk).update(is_active=False)
        dana.groups.add(Group.objects.get(name=Role.IAM_ADMIN))
    candidate = load(PEOPLE_MATTER)
    parsed_sets: list[int] = []
    real_parsed = engine.parsed

    def counted(entity_list: Any) -> Any:
        parsed_sets.append(len(entity_list))
        return real_parsed(entity_list)

    monkeypatch.setattr(engine, "parsed", counted)
    joined = engine.replay(candidate, limit=1000)
    joined_sets = len(parsed_sets)
    monkeypatch.setattr(engine, "merged_groups", lambda snapshots: [(ents, [key]) for key, ents in snapshots])
    alone = engine.replay(candidate, limit=1000)
    assert joined_sets < len(parsed_sets) - joined_sets  # the join did join
    assert (joined.counts, joined.breakdown) == (alone.counts, alone.breakdown)
    by_id = itemgetter("decision_id")
    assert sorted(joined.examples, key=by_id) == sorted(alone.examples, key=by_id)
    # Only dana's second request changes: the billing bot's second was already denied (its owner).
    assert joined.counts == {"unchanged": 14, "allow_to_deny": 1, "deny_to_allow": 0, "errors": 0, "not_replayed": 0}


# --- The service and the task ------------------------------------------------------------------


def test_only_iam_admins_may_start_a_replay(
    crafted_log: dict[str, Any], iam_admin: User, reviewer: User, owner: User
) -> None:
    version = candidate_version(enforced_text() + FORBID_WRITE, iam_admin)
    for user in (reviewer, owner):
        with pytest.raises(NotAllowed):
            replay_start(actor=user, version=version)
    assert not PolicyReplay.objects.exists()


@pytest.mark.parametrize("limit", [0, -1, 1_000_001, "100", True])
def test_the_limit_is_checked(crafted_log: dict[str, Any], iam_admin: User, limit: Any) -> None:
    version = candidate_version(enforced_text(), iam_admin)
    with pytest.raises(ValidationFailed) as refused:
        replay_start(actor=iam_admin, version=version, limit=limit)
    assert list(refused.value.errors) == ["limit"]
    assert not PolicyReplay.objects.exists()


def test_a_replay_starts_queued_audited_with_the_default_limit(
    crafted_log: dict[str, Any], iam_admin: User, settings: Any
) -> None:
    settings.RUNTIME_REPLAY_DEFAULT_LIMIT = 7
    version = candidate_version(enforced_text() + FORBID_WRITE, iam_admin)
    replay = replay_start(actor=iam_admin, version=version)
    assert (replay.status, replay.limit, replay.requested_by) == ("queued", 7, iam_admin)
    assert replay.candidate_sha256 == version.sha256
    event = AuditEvent.objects.get(action="policy_replay.started")
    assert event.target_id == str(replay.pk) and (event.after or {})["limit"] == 7


def test_a_version_that_does_not_validate_cannot_be_replayed(crafted_log: dict[str, Any], iam_admin: User) -> None:
    version = candidate_version(enforced_text(), iam_admin)
    no_longer_valid(version)
    with pytest.raises(ValidationFailed):
        replay_start(actor=iam_admin, version=version)


def test_the_replay_runs_after_commit_and_stores_its_report(
    crafted_log: dict[str, Any],
    iam_admin: User,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    monkeypatch.setattr(django_q.conf.Conf, "SYNC", True)
    version = candidate_version(enforced_text() + FORBID_WRITE + PERMIT_ADMIN, iam_admin)
    with django_capture_on_commit_callbacks(execute=True):
        replay = replay_start(actor=iam_admin, version=version, limit=100)
    replay.refresh_from_db()
    assert (replay.status, replay.total, replay.processed, replay.error) == ("done", 11, 11, "")
    assert replay.counts["allow_to_deny"] == 3 and replay.counts["deny_to_allow"] == 2
    assert replay.breakdown["policy"]["forbid-crm-write"]["allow_to_deny"] == 3
    assert replay.started_at is not None and replay.finished_at is not None
    finished = AuditEvent.objects.get(action="policy_replay.finished")
    assert finished.owner == iam_admin and (finished.after or {})["status"] == "done"


def test_a_failing_run_is_marked_failed_and_a_rerun_starts_over(
    crafted_log: dict[str, Any], iam_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = candidate_version(enforced_text() + FORBID_WRITE + PERMIT_ADMIN, iam_admin)
    replay = replay_start(actor=iam_admin, version=version)
    monkeypatch.setattr(engine, "CHUNK_SIZE", 4)
    real_chunk = engine.replay_chunk
    calls = {"n": 0}

    def dies_on_the_second_chunk(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the database went away")
        real_chunk(*args)

    monkeypatch.setattr(engine, "replay_chunk", dies_on_the_second_chunk)
    assert policy_replay_run(replay.pk) == "failed"
    replay.refresh_from_db()
    assert (replay.status, replay.error, replay.processed) == ("failed", "the database went away", 4)
    # Nothing of the half-done run is in the report.
    assert (replay.counts, replay.breakdown, replay.examples) == ({}, {}, [])

    monkeypatch.setattr(engine, "replay_chunk", real_chunk)
    assert policy_replay_run(replay.pk) == "done"
    replay.refresh_from_db()
    assert (replay.status, replay.error, replay.processed, replay.total) == ("done", "", 11, 11)
    assert replay.counts == {"unchanged": 6, "allow_to_deny": 3, "deny_to_allow": 2, "errors": 0, "not_replayed": 0}
    # A replay that is done is not run again.
    assert policy_replay_run(replay.pk) == "skipped"


def test_a_candidate_that_no_longer_validates_fails_the_run(crafted_log: dict[str, Any], iam_admin: User) -> None:
    version = candidate_version(enforced_text(), iam_admin)
    replay = replay_start(actor=iam_admin, version=version)
    no_longer_valid(version)
    replay = replay_run(replay_id=replay.pk) or replay
    assert replay.status == "failed" and "does not validate" in replay.error
