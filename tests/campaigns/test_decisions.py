"""Deciding review items: certify or revoke (with a reason), applied at once or at the close,
second stage on critical keeps, who may decide."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.campaigns import services
from approvals.campaigns.models import ItemStatus, ReviewItem
from governance.exceptions import NotAllowed, ValidationFailed
from governance.models import AuditEvent
from governance.roles import Role
from inventory.models import GrantStatus


@pytest.fixture
def setup(make_user: Any, make_integration: Any, make_grant: Any, catalog: Any) -> dict[str, Any]:
    alice = make_user("alice", Role.BUSINESS_USER)
    tech = make_user("tech", Role.BUSINESS_USER)
    integration = make_integration(alice, technical_owner=tech)
    return {
        "alice": alice,
        "write": make_grant(integration, catalog["write"]),
        "admin": make_grant(integration, catalog["admin"]),
    }


def _item(campaign: Any, grant: Any) -> ReviewItem:
    return ReviewItem.objects.get(campaign=campaign, grant=grant)


def test_revoking_needs_a_reason(setup: Any, make_definition: Any, launched: Any) -> None:
    campaign = launched(make_definition())
    with pytest.raises(ValidationFailed) as exc:
        services.review_item_decide(
            actor=setup["alice"], item=_item(campaign, setup["write"]), decision="revoke", comment=" "
        )
    assert "comment" in exc.value.errors


def test_a_revoked_grant_is_inactive_at_once_and_audited(setup: Any, make_definition: Any, launched: Any) -> None:
    campaign = launched(make_definition())
    item = services.review_item_decide(
        actor=setup["alice"], item=_item(campaign, setup["write"]), decision="revoke", comment="not needed any more"
    )
    setup["write"].refresh_from_db()
    assert setup["write"].status == GrantStatus.REVOKED
    assert item.status == ItemStatus.REVOKED and item.applied_at is not None
    decided = AuditEvent.objects.get(action="review_item.decided", target_id=str(item.pk))
    assert decided.actor_username == "alice" and decided.owner_id == campaign.owner_id
    assert decided.reason == "not needed any more"
    revoked = AuditEvent.objects.get(action="grant.revoked", target_id=str(setup["write"].pk))
    assert revoked.actor_username == "alice"


def test_revocations_wait_for_the_close_when_the_definition_says_so(
    setup: Any, make_definition: Any, launched: Any
) -> None:
    campaign = launched(make_definition(apply_mode="at_close"))
    services.review_item_decide(
        actor=setup["alice"], item=_item(campaign, setup["write"]), decision="revoke", comment="no"
    )
    setup["write"].refresh_from_db()
    assert setup["write"].status == GrantStatus.ACTIVE
    services.review_item_decide(
        actor=setup["alice"], item=_item(campaign, setup["admin"]), decision="certify", comment=""
    )
    services.campaign_close(campaign=campaign)
    setup["write"].refresh_from_db()
    assert setup["write"].status == GrantStatus.REVOKED
    assert _item(campaign, setup["write"]).applied_at is not None


def test_critical_keeps_need_a_second_stage(
    setup: Any, make_definition: Any, launched: Any, iam_admin: Any, make_user: Any
) -> None:
    campaign = launched(make_definition(second_stage="critical_keeps"))
    critical = services.review_item_decide(
        actor=setup["alice"], item=_item(campaign, setup["admin"]), decision="certify", comment="needed"
    )
    assert critical.status == ItemStatus.AWAITING_CONFIRMATION
    ordinary = services.review_item_decide(
        actor=setup["alice"], item=_item(campaign, setup["write"]), decision="certify"
    )
    assert ordinary.status == ItemStatus.CERTIFIED
    with pytest.raises(NotAllowed):  # the first reviewer does not confirm their own keep
        services.review_item_decide(actor=setup["alice"], item=critical, decision="certify")
    confirmed = services.review_item_decide(actor=iam_admin, item=critical, decision="revoke", comment="too broad")
    assert confirmed.status == ItemStatus.REVOKED and confirmed.confirmed_by == iam_admin
    setup["admin"].refresh_from_db()
    assert setup["admin"].status == GrantStatus.REVOKED
    assert AuditEvent.objects.filter(action="review_item.confirmed", target_id=str(critical.pk)).exists()


def test_a_decided_item_cannot_be_decided_again(setup: Any, make_definition: Any, launched: Any) -> None:
    from governance.exceptions import Conflict

    campaign = launched(make_definition())
    item = services.review_item_decide(actor=setup["alice"], item=_item(campaign, setup["write"]), decision="certify")
    with pytest.raises(Conflict):
        services.review_item_decide(actor=setup["alice"], item=item, decision="revoke", comment="changed my mind")


def test_someone_not_assigned_cannot_decide(setup: Any, make_definition: Any, launched: Any, reviewer: Any) -> None:
    campaign = launched(make_definition())
    with pytest.raises(NotAllowed):
        services.review_item_decide(actor=reviewer, item=_item(campaign, setup["write"]), decision="certify")


def test_api_decision_certify_and_revoke(setup: Any, make_definition: Any, launched: Any, api_as: Any) -> None:
    campaign = launched(make_definition())
    client = api_as(setup["alice"])
    item = _item(campaign, setup["write"])
    bad = client.post(f"/api/v1/review-items/{item.pk}/decision/", {"decision": "revoke"}, format="json")
    assert bad.status_code == 400 and "comment" in bad.json()["errors"]
    ok = client.post(
        f"/api/v1/review-items/{item.pk}/decision/", {"decision": "revoke", "comment": "unused"}, format="json"
    )
    assert ok.status_code == 200 and ok.json()["status"] == "revoked"
    again = client.post(f"/api/v1/review-items/{item.pk}/decision/", {"decision": "certify"}, format="json")
    assert again.status_code == 409


def test_auditor_cannot_decide(
    setup: Any, make_definition: Any, launched: Any, api_as: Any, auditor: Any, web_as: Any
) -> None:
    campaign = launched(make_definition())
    item = _item(campaign, setup["write"])
    response = api_as(auditor).post(f"/api/v1/review-items/{item.pk}/decision/", {"decision": "certify"}, format="json")
    assert response.status_code == 403
    page = web_as(auditor).post("/campaigns/review/decide/", {"items": [item.pk], "decision": "certify"})
    assert page.status_code == 403
    assert _item(campaign, setup["write"]).status == ItemStatus.OPEN


def test_campaign_owner_sees_but_cannot_decide_others_items(
    setup: Any, make_definition: Any, launched: Any, api_as: Any, make_user: Any, iam_admin: Any
) -> None:
    boss = make_user("boss", Role.BUSINESS_USER)
    campaign = launched(make_definition(owner=boss))
    item = _item(campaign, setup["write"])
    client = api_as(boss)
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/items/").json()["count"] == 2
    response = client.post(f"/api/v1/review-items/{item.pk}/decision/", {"decision": "certify"}, format="json")
    assert response.status_code == 403


def test_bulk_decision_from_the_review_page(setup: Any, make_definition: Any, launched: Any, web_as: Any) -> None:
    campaign = launched(make_definition())
    ids = list(ReviewItem.objects.filter(campaign=campaign).values_list("pk", flat=True))
    client = web_as(setup["alice"])
    page = client.get("/campaigns/review/")
    assert page.status_code == 200 and b"Recommendation" in page.content
    response = client.post("/campaigns/review/decide/", {"items": ids, "decision": "certify", "comment": "all fine"})
    assert response.status_code == 302
    assert set(ReviewItem.objects.filter(pk__in=ids).values_list("status", flat=True)) == {ItemStatus.CERTIFIED}
    assert AuditEvent.objects.filter(action="review_item.decided").count() == 2


def test_recommendation_revokes_admin_scope_on_restricted_data_of_an_autonomous_integration(
    make_user: Any, make_integration: Any, catalog: Any
) -> None:
    from django.utils import timezone

    from approvals.campaigns.recommend import recommend

    owner = make_user("alice", Role.BUSINESS_USER)
    bot = make_integration(owner, autonomy="autonomous", data_classifications=["restricted"])
    rec = recommend(integration=bot, scopes=[catalog["admin"]], last_rotated=timezone.now(), now=timezone.now())
    assert rec.decision == "revoke" and "admin-level" in rec.reason
    calm = make_integration(owner, autonomy="human_in_loop")
    assert (
        recommend(integration=calm, scopes=[catalog["read"]], last_rotated=None, now=timezone.now()).decision
        == "certify"
    )
    calm.orphaned = True
    assert (
        "owner left"
        in recommend(integration=calm, scopes=[catalog["read"]], last_rotated=None, now=timezone.now()).reason
    )
