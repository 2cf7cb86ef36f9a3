"""A new assignment copies its integration's tier and score while a rescore of that integration
is in flight: the writer locks the integration first (the lock order of every request writer),
so the copy is the rescored one. Real concurrent transactions on PostgreSQL, one thread and one
connection each."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction

from approvals import services
from approvals.models import StepAssignment
from governance.roles import Pool, Role
from inventory.choices import RISK_TIER_ORDER
from inventory.models import Integration

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs real row locks between concurrent connections: runs in CI's PostgreSQL pass",
    ),
]


@pytest.fixture(autouse=True)
def _no_delivery_from_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # The outbox's on_commit hook would enqueue through django-q's broker from the thread.
    monkeypatch.setattr("governance.services.outbox._schedule_delivery", lambda email_id: None)


def _rescore_held(integration_id: int, held: threading.Event) -> None:
    """Rescore the integration to critical / 95 as the receiver does, and keep the transaction
    open a moment after it is locked."""
    try:
        with transaction.atomic():
            integration = Integration.objects.select_for_update().get(pk=integration_id)
            integration.risk_tier, integration.risk_score = "critical", 95
            integration.save(update_fields=["risk_tier", "risk_score"])
            services.assignments_rescore(integration)
            held.set()
            time.sleep(1.0)
    finally:
        connection.close()


def test_a_reassignment_during_a_rescore_copies_the_rescored_keys(
    make_integration: Any, submit: Any, reviewer: Any, make_user: Any, iam_admin: Any
) -> None:
    req = submit(make_integration())
    colleague = make_user("raj", Role.REVIEWER, Pool.IAM_REVIEWERS)
    waiting = StepAssignment.objects.get(step__request=req, user=reviewer)
    held = threading.Event()
    rescore = threading.Thread(target=_rescore_held, args=(req.integration_id, held))
    rescore.start()
    assert held.wait(10)
    new = services.assignment_reassign(actor=iam_admin, assignment=waiting, to_user=colleague, reason="On leave")
    rescore.join()
    new.refresh_from_db()
    assert (new.risk_rank, new.risk_score) == (RISK_TIER_ORDER["critical"], 95)
