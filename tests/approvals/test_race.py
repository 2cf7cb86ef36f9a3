"""Two reviewers deciding the same step at the same moment produce exactly one outcome: real
concurrent transactions on PostgreSQL (one thread and one connection each), no mock."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from approvals import services
from approvals.models import Decision, RequestStatus, StepStatus
from governance.exceptions import Conflict
from inventory.models import Grant

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs real row locks between concurrent connections: runs in CI's PostgreSQL pass "
        "(SQLite serialises whole-database writers, so there is no race to test)",
    ),
]


@pytest.fixture(autouse=True)
def _no_delivery_from_threads(monkeypatch):  # noqa: ANN001, ANN202
    # The outbox's on_commit hook enqueues delivery through django-q's broker, which keeps its
    # own connection in the thread and would outlive it; delivery is not what is tested here.
    monkeypatch.setattr("governance.services.outbox._schedule_delivery", lambda email_id: None)


def race(fn_a, fn_b):  # noqa: ANN001, ANN201
    """Run both at the same moment, each in its own thread (own connection); their outcomes."""
    barrier = threading.Barrier(2)
    results: list[str] = []
    lock = threading.Lock()

    def run(fn) -> None:  # noqa: ANN001
        try:
            barrier.wait()
            fn()
            outcome = "decided"
        except Conflict as exc:
            outcome = f"conflict: {exc.detail}"
        except Exception as exc:  # any other failure must show in the assertion, not vanish
            outcome = f"error: {type(exc).__name__}: {exc}"
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(f,)) for f in (fn_a, fn_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def decide(actor, req, step, decision="approve", comment=""):  # noqa: ANN001, ANN201
    return lambda: services.request_decide(
        actor=actor, request=req, decision=decision, comment=comment, step_id=step.pk
    )


def test_two_reviewers_approving_the_same_step_at_once_yield_one_decision(
    make_integration, submit, reviewer, second_reviewer
):
    for i in range(5):
        req = submit(make_integration(f"Race {i}", tier="low"))
        step = req.steps.get(status=StepStatus.ACTIVE)
        results = race(decide(reviewer, req, step), decide(second_reviewer, req, step))
        assert sorted(r.split(":")[0] for r in results) == ["conflict", "decided"], results
        loser = next(r for r in results if r.startswith("conflict"))
        assert "already" in loser and "decided by" in loser
        req.refresh_from_db()
        assert req.status == RequestStatus.APPROVED
        assert Decision.objects.filter(request=req).count() == 1
        assert Grant.objects.filter(integration=req.integration).count() == 1


def test_approve_and_reject_at_the_same_moment_leave_one_outcome(make_integration, submit, reviewer, second_reviewer):
    req = submit(make_integration("Race mixed", tier="low"))
    step = req.steps.get(status=StepStatus.ACTIVE)
    results = race(decide(reviewer, req, step), decide(second_reviewer, req, step, "reject", "no"))
    assert sorted(r.split(":")[0] for r in results) == ["conflict", "decided"]
    req.refresh_from_db()
    assert Decision.objects.filter(request=req).count() == 1
    assert req.status in (RequestStatus.APPROVED, RequestStatus.REJECTED)
    assert Grant.objects.filter(integration=req.integration).count() == (
        1 if req.status == RequestStatus.APPROVED else 0
    )
