"""Evidence of recertification, on crafted data: the last closed campaign's completion by
reviewers and its revocations that took effect, and the days since the last launch (before any,
how long the oldest active grant has gone unreviewed).

Campaigns are defined, launched, decided and closed through the campaign services
(``tests.campaigns`` fixtures); time moves with time_machine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from approvals.campaigns import services
from approvals.campaigns.models import Campaign, ItemStatus, ReviewItem
from governance.controls.registry import Figure, Status, Threshold, control, evaluate
from governance.models import User
from governance.roles import Role
from inventory.models import Grant, GrantStatus, Integration, Scope
from tests.campaigns.conftest import catalog, launched, make_definition, make_grant, make_integration

pytestmark = pytest.mark.django_db

__all__ = ["catalog", "launched", "make_definition", "make_grant", "make_integration"]  # fixtures, used by name


def rows(figure: Figure) -> list[dict[str, Any]]:
    """The records behind ``figure``, as the evidence pack reads them."""
    assert figure.records is not None
    return [dict(row) for row in figure.records()]


def figures(thresholds: dict[str, Threshold] | None = None) -> dict[str, Figure]:
    registered = control("recertification")
    assert registered is not None
    return {figure.key: figure for figure in evaluate(registered, thresholds or {}).figures}


@pytest.fixture
def grants(
    make_user: Callable[..., User],
    make_integration: Callable[..., Integration],
    make_grant: Callable[..., Grant],
    catalog: dict[str, Scope],
) -> dict[str, Any]:
    """Ten grants of five integrations owned by Alice (a technical owner beside her, so she may
    review them herself)."""
    alice = make_user("alice", Role.BUSINESS_USER)
    tech = make_user("tech", Role.BUSINESS_USER)
    made = []
    for _ in range(5):
        integration = make_integration(alice, technical_owner=tech)
        made += [make_grant(integration, catalog["read"]), make_grant(integration, catalog["write"])]
    return {"alice": alice, "grants": made}


def decide(campaign: Campaign, reviewer: User, decisions: list[str]) -> list[ReviewItem]:
    """The reviewer decides the campaign's first items in order (certify or revoke)."""
    items = list(ReviewItem.objects.filter(campaign=campaign).order_by("pk"))
    for item, decision in zip(items, decisions, strict=False):
        services.review_item_decide(actor=reviewer, item=item, decision=decision, comment="Not needed any more.")
    return items


@pytest.fixture
def closed(grants: dict[str, Any], make_definition: Callable[..., Any], launched: Callable[..., Campaign]) -> Campaign:
    """Alice certifies 7 items and revokes 2; the tenth is revoked by the default action at the
    deadline, and the campaign closes."""
    campaign = launched(make_definition(name="Quarterly review", duration_days=14))
    decide(campaign, grants["alice"], ["certify"] * 7 + ["revoke"] * 2)
    assert campaign.deadline is not None
    with time_machine.travel(campaign.deadline + timedelta(hours=1), tick=False):
        services.campaign_close(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == "closed"
    return campaign


def test_before_any_campaign_or_grant_nothing_applies(db: Any) -> None:
    found = figures()
    assert {fig.status for fig in found.values()} == {Status.NOT_APPLICABLE}
    assert found["recertification.completion"].detail == "No recertification campaign has closed yet."
    assert "nothing to recertify yet" in found["recertification.days_since_launch"].detail


def test_before_any_launch_the_days_count_from_the_oldest_active_grant(
    grants: dict[str, Any], django_assert_num_queries: Any
) -> None:
    old = grants["grants"][0]
    Grant.objects.filter(pk=old.pk).update(granted_at=timezone.now() - timedelta(days=200))
    Grant.objects.filter(pk=grants["grants"][1].pk).update(
        granted_at=timezone.now() - timedelta(days=400), status=GrantStatus.REVOKED
    )
    registered = control("recertification")
    assert registered is not None
    with django_assert_num_queries(3):  # and the oldest active grant, before any launch
        registered.evidence()
    days = figures()["recertification.days_since_launch"]
    assert (days.value, days.status) == (200, Status.NOT_MET)
    assert days.detail.startswith("No recertification campaign has ever been launched; the oldest active grant")


def test_the_last_closed_campaign_s_completion_and_revocations_are_measured(closed: Campaign) -> None:
    found = figures()
    completion = found["recertification.completion"]
    assert (completion.value, completion.status) == (90.0, Status.PARTLY)
    assert "reviewers decided 9 of 10 items; the default action (revoke) decided 1." in completion.detail
    assert completion.detail.startswith(f"“{closed.name}”, closed")
    revocations = found["recertification.revocations_applied"]
    assert (revocations.value, revocations.status) == (100.0, Status.MET)
    assert revocations.detail == f"“{closed.name}” revoked 3 items (0 not applied yet); 3 took effect on the grants."
    items = rows(completion)
    assert len(items) == 10
    assert sorted(row["status"] for row in items) == ["certified"] * 7 + ["revoked"] * 3
    assert [row["by_default"] for row in items].count(True) == 1
    revoked = rows(revocations)
    assert len(revoked) == 3 and all(row["applied_at"] is not None for row in revoked)
    revoked_grants = {row["grant_id"] for row in revoked}
    assert set(Grant.objects.filter(pk__in=revoked_grants).values_list("status", flat=True)) == {GrantStatus.REVOKED}
    # An organisation content with nine items in ten decided by people meets it.
    own = figures({"recertification.completion": Threshold(met=90)})
    assert own["recertification.completion"].status == Status.MET


def test_a_revocation_that_did_not_take_effect_is_counted_against(closed: Campaign) -> None:
    stuck = ReviewItem.objects.filter(campaign=closed, status=ItemStatus.REVOKED).order_by("pk").first()
    assert stuck is not None
    ReviewItem.objects.filter(pk=stuck.pk).update(applied_at=None)
    revocations = figures()["recertification.revocations_applied"]
    assert (revocations.value, revocations.status) == (66.6, Status.NOT_MET)
    assert "(1 not applied yet); 2 took effect" in revocations.detail


def test_a_campaign_that_revoked_nothing_has_no_revocation_to_apply(
    grants: dict[str, Any], make_definition: Callable[..., Any], launched: Callable[..., Campaign]
) -> None:
    campaign = launched(make_definition(name="All kept", duration_days=14))
    decide(campaign, grants["alice"], ["certify"] * 10)
    services.campaign_close_early(actor=campaign.owner, campaign=campaign)
    found = figures()
    assert (found["recertification.completion"].value, found["recertification.completion"].status) == (
        100.0,
        Status.MET,
    )
    revocations = found["recertification.revocations_applied"]
    assert revocations.status == Status.NOT_APPLICABLE
    campaign.refresh_from_db()
    assert revocations.detail == f"“{campaign.name}” revoked nothing: every item was kept."


def test_only_the_campaign_closed_last_counts(
    closed: Campaign, grants: dict[str, Any], make_definition: Callable[..., Any], launched: Callable[..., Campaign]
) -> None:
    assert closed.closed_at is not None
    with time_machine.travel(closed.closed_at + timedelta(days=10), tick=False):
        later = launched(make_definition(name="Follow-up", duration_days=7))
        decide(later, grants["alice"], ["certify"] * 20)
        services.campaign_close_early(actor=later.owner, campaign=later)
        found = figures()
    assert found["recertification.completion"].value == 100.0
    assert found["recertification.completion"].records_url == f"/campaigns/{later.pk}/report/"
    assert {row["id"] for row in rows(found["recertification.completion"])} == set(
        ReviewItem.objects.filter(campaign=later).values_list("pk", flat=True)
    )


def test_days_since_the_last_launch_grow_until_the_next(closed: Campaign) -> None:
    assert closed.launched_at is not None
    with time_machine.travel(closed.launched_at + timedelta(days=20), tick=False):
        days = figures()["recertification.days_since_launch"]
        assert (days.value, days.status) == (20, Status.MET)
    with time_machine.travel(closed.launched_at + timedelta(days=120), tick=False):
        assert figures()["recertification.days_since_launch"].status == Status.PARTLY
        own = figures({"recertification.days_since_launch": Threshold(met=180)})
        assert own["recertification.days_since_launch"].status == Status.MET
    with time_machine.travel(closed.launched_at + timedelta(days=200), tick=False):
        assert figures()["recertification.days_since_launch"].status == Status.NOT_MET
    [launch] = rows(figures()["recertification.days_since_launch"])
    assert (launch["id"], launch["name"], launch["status"]) == (closed.pk, closed.name, "closed")


def test_recertification_figures_link_to_the_report_and_the_campaigns(
    closed: Campaign, auditor: User, web_as: Any, outsider: User
) -> None:
    found = figures()
    report = f"/campaigns/{closed.pk}/report/"
    assert found["recertification.completion"].records_url == report
    assert found["recertification.revocations_applied"].records_url == report
    assert found["recertification.days_since_launch"].records_url == "/campaigns/"
    page = web_as(auditor).get(report)
    assert page.status_code == 200 and closed.name in page.content.decode()
    listing = web_as(auditor).get("/campaigns/")
    assert listing.status_code == 200 and closed.pk in {campaign.pk for campaign in listing.context["campaigns"]}


@pytest.mark.parametrize("extra_grants", [0, 30])
def test_recertification_evidence_costs_a_fixed_number_of_queries(
    closed: Campaign,
    extra_grants: int,
    grants: dict[str, Any],
    make_grant: Callable[..., Grant],
    catalog: dict[str, Scope],
    make_definition: Callable[..., Any],
    launched: Callable[..., Campaign],
    django_assert_num_queries: Any,
) -> None:
    integration = grants["grants"][0].integration
    for _ in range(extra_grants):
        make_grant(integration, catalog["admin"], status=GrantStatus.EXPIRED)
    launched(make_definition(name="Running", duration_days=14))
    registered = control("recertification")
    assert registered is not None
    with django_assert_num_queries(2):
        registered.evidence()
