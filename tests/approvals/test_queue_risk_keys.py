"""The queue's copies of the integration's risk tier and score on each open assignment: set when
the assignment is made, rewritten in the inventory's transaction when the integration is
rescored (so the risk sort and the tier filter follow at once), and filled in bulk for rows
written without them."""

from __future__ import annotations

import re

import pytest

from approvals import services
from approvals.models import AccessRequest, StepAssignment
from approvals.services.queue_keys import queue_keys_of
from inventory.choices import RISK_TIER_ORDER
from inventory.services.scoring import integrations_risk_refresh

pytestmark = pytest.mark.django_db


def _row_names(html: str) -> list[str]:
    return re.findall(r'class="row-toggle"[^>]*>([^<]+)</button>', html)


def _keys(integration) -> set[tuple[int, int]]:  # noqa: ANN001
    return set(
        StepAssignment.objects.filter(is_open=True, step__request__integration=integration).values_list(
            "risk_rank", "risk_score"
        )
    )


def test_a_new_assignment_carries_the_integrations_tier_rank_and_score(reviewer, make_integration, submit):
    integration = make_integration("Ledger bot", tier="high")
    submit(integration)
    assert StepAssignment.objects.filter(step__request__integration=integration).exists()
    assert _keys(integration) == {(RISK_TIER_ORDER["high"], 60)}


def test_a_change_request_without_an_integration_ranks_by_its_own_tier():
    assert queue_keys_of(AccessRequest(integration=None, risk_tier="critical")) == (RISK_TIER_ORDER["critical"], 0)


def test_a_rescore_moves_the_request_in_the_risk_sorted_queue_and_out_of_its_tier(
    web_as, reviewer, owner, make_integration, submit
):
    # Stored as critical (90): its own facts score far lower, as the next rescore finds.
    overrated = make_integration("Overrated bot", tier="critical")
    steady = make_integration("Steady bot", tier="medium")
    submit(overrated)
    submit(steady)
    client = web_as(reviewer)
    assert _row_names(client.get("/approvals/queue/?view=table&sort=risk").content.decode()) == [
        "Overrated bot",
        "Steady bot",
    ]
    assert _row_names(client.get("/approvals/queue/?view=table&tier=critical").content.decode()) == ["Overrated bot"]

    assert integrations_risk_refresh(actor=owner, integration_ids=[overrated.pk]) == 1
    overrated.refresh_from_db()
    assert RISK_TIER_ORDER[overrated.risk_tier] < RISK_TIER_ORDER["medium"]
    assert _keys(overrated) == {(RISK_TIER_ORDER[overrated.risk_tier], overrated.risk_score)}
    assert _row_names(client.get("/approvals/queue/?view=table&sort=risk").content.decode()) == [
        "Steady bot",
        "Overrated bot",
    ]
    assert _row_names(client.get("/approvals/queue/?view=table&tier=critical").content.decode()) == []
    tier_page = client.get(f"/approvals/queue/?view=table&tier={overrated.risk_tier}").content.decode()
    assert _row_names(tier_page) == ["Overrated bot"]


def test_a_rescore_leaves_decided_assignments_as_they_were(owner, reviewer, make_integration, submit):
    integration = make_integration("Closed bot", tier="critical")
    submit(integration)
    StepAssignment.objects.filter(step__request__integration=integration).update(is_open=False)
    integrations_risk_refresh(actor=owner, integration_ids=[integration.pk])
    assert set(
        StepAssignment.objects.filter(step__request__integration=integration).values_list("risk_rank", "risk_score")
    ) == {(RISK_TIER_ORDER["critical"], 90)}


def test_fill_sets_the_keys_of_open_assignments_written_without_them(reviewer, make_integration, submit):
    low, critical = make_integration("Low bot", tier="low"), make_integration("Critical bot", tier="critical")
    submit(low)
    submit(critical)
    StepAssignment.objects.update(risk_rank=-1, risk_score=0)
    assert services.queue_keys_fill() == 2
    assert _keys(low) == {(RISK_TIER_ORDER["low"], 5)}
    assert _keys(critical) == {(RISK_TIER_ORDER["critical"], 90)}
