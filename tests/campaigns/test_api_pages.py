"""Every endpoint and page: outsiders get 404, auditors cannot change anything, lists run a
fixed number of queries whatever their size."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.campaigns import services
from approvals.campaigns.models import Campaign, CampaignDefinition, ReviewItem
from governance.roles import Role


@pytest.fixture
def world(
    make_user: Any, make_integration: Any, make_grant: Any, catalog: Any, make_definition: Any, launched: Any
) -> dict[str, Any]:
    alice = make_user("alice", Role.BUSINESS_USER)
    tech = make_user("tech", Role.BUSINESS_USER)
    integration = make_integration(alice, technical_owner=tech)
    make_grant(integration, catalog["write"])
    definition = make_definition()
    campaign = launched(definition)
    return {
        "alice": alice,
        "definition": definition,
        "campaign": campaign,
        "item": ReviewItem.objects.get(campaign=campaign),
    }


def _api_urls(world: dict[str, Any]) -> list[tuple[str, str]]:
    campaign, item, definition = world["campaign"].pk, world["item"].pk, world["definition"].pk
    return [
        ("get", f"/api/v1/campaigns/{campaign}/"),
        ("get", f"/api/v1/campaigns/{campaign}/items/"),
        ("post", f"/api/v1/campaigns/{campaign}/launch/"),
        ("get", f"/api/v1/review-items/{item}/"),
        ("post", f"/api/v1/review-items/{item}/decision/"),
        ("get", f"/api/v1/campaign-definitions/{definition}/"),
        ("patch", f"/api/v1/campaign-definitions/{definition}/"),
    ]


def _page_urls(world: dict[str, Any]) -> list[tuple[str, str]]:
    campaign, definition = world["campaign"].pk, world["definition"].pk
    return [
        ("get", f"/campaigns/{campaign}/"),
        ("get", f"/campaigns/{campaign}/progress.json"),
        ("post", f"/campaigns/{campaign}/launch/"),
        ("get", f"/campaigns/{campaign}/report/"),
        ("get", f"/campaigns/{campaign}/report.csv"),
        ("get", "/campaigns/definitions/"),
        ("get", "/campaigns/definitions/new/"),
        ("get", f"/campaigns/definitions/{definition}/"),
        ("post", f"/campaigns/definitions/{definition}/"),
        ("post", f"/campaigns/definitions/{definition}/start/"),
    ]


def test_outsider_gets_404_on_every_campaign_endpoint(world: Any, outsider: Any, api_as: Any) -> None:
    client = api_as(outsider)
    for method, url in _api_urls(world):
        response = getattr(client, method)(url, {"decision": "certify"}, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
    assert client.get("/api/v1/campaigns/").json()["count"] == 0
    assert client.get("/api/v1/review-items/").json()["count"] == 0
    assert client.get("/api/v1/campaign-definitions/").json()["count"] == 0
    assert (
        client.post("/api/v1/campaign-definitions/", {"name": "x", "owner": "outsider"}, format="json").status_code
        == 403
    )
    assert client.post("/api/v1/campaigns/", {"definition": world["definition"].pk}, format="json").status_code == 403


def test_outsider_gets_404_on_every_campaign_page(world: Any, outsider: Any, web_as: Any) -> None:
    client = web_as(outsider)
    for method, url in _page_urls(world):
        response = getattr(client, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
    response = client.post("/campaigns/review/decide/", {"items": [world["item"].pk], "decision": "certify"})
    assert response.status_code == 404
    assert b"Nothing to show" in client.get("/campaigns/review/").content


def test_assigned_reviewer_sees_the_campaign_but_not_its_report(world: Any, web_as: Any, api_as: Any) -> None:
    client = web_as(world["alice"])
    assert client.get(f"/campaigns/{world['campaign'].pk}/").status_code == 200
    assert client.get(f"/campaigns/{world['campaign'].pk}/report/").status_code == 403
    assert client.get(f"/campaigns/{world['campaign'].pk}/report.csv").status_code == 403
    assert api_as(world["alice"]).post(f"/api/v1/campaigns/{world['campaign'].pk}/launch/").status_code == 403


def test_a_reviewer_who_may_not_launch_a_draft_is_refused_by_the_service_behind_page_and_api(
    world: Any, web_as: Any, api_as: Any
) -> None:
    draft = services.campaign_create(actor=world["definition"].owner, definition=world["definition"])
    # alice sees a campaign through an item assigned to her; she is neither its owner nor an IAM admin.
    ReviewItem.objects.filter(pk=world["item"].pk).update(campaign=draft)
    assert web_as(world["alice"]).post(f"/campaigns/{draft.pk}/launch/").status_code == 403
    assert api_as(world["alice"]).post(f"/api/v1/campaigns/{draft.pk}/launch/").status_code == 403
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_auditor_reads_everything_and_changes_nothing(world: Any, auditor: Any, api_as: Any, web_as: Any) -> None:
    client = api_as(auditor)
    assert client.get(f"/api/v1/campaigns/{world['campaign'].pk}/items/").json()["count"] == 1
    assert client.get("/api/v1/campaign-definitions/").json()["count"] == 1
    assert (
        client.post("/api/v1/campaign-definitions/", {"name": "x", "owner": "auditor"}, format="json").status_code
        == 403
    )
    assert (
        client.patch(
            f"/api/v1/campaign-definitions/{world['definition'].pk}/", {"name": "y"}, format="json"
        ).status_code
        == 403
    )
    draft = Campaign.objects.create(
        definition=world["definition"],
        name="d",
        owner=world["definition"].owner,
        granularity="grant",
        default_action="revoke",
        apply_mode="immediate",
        second_stage="none",
    )
    assert client.post(f"/api/v1/campaigns/{draft.pk}/launch/").status_code == 403
    pages = web_as(auditor)
    assert pages.get(f"/campaigns/{world['campaign'].pk}/report/").status_code == 200
    assert pages.post(f"/campaigns/definitions/{world['definition'].pk}/", {"name": "z"}).status_code == 403
    assert pages.post(f"/campaigns/{draft.pk}/launch/").status_code == 403
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_admin_defines_and_starts_a_campaign_through_the_api(world: Any, iam_admin: Any, api_as: Any) -> None:
    client = api_as(iam_admin)
    created = client.post(
        "/api/v1/campaign-definitions/",
        {
            "name": "Quarterly high",
            "owner": iam_admin.username,
            "risk_tiers": ["high", "critical"],
            "recurrence": "0 6 1 1,4,7,10 *",
            "reminder_days": [7, 1],
            "fallback_group": "iam_reviewers",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    bad = client.post(
        "/api/v1/campaign-definitions/",
        {"name": "Bad", "owner": iam_admin.username, "recurrence": "quarterly"},
        format="json",
    )
    assert bad.status_code == 400 and "recurrence" in bad.json()["errors"]
    started = client.post("/api/v1/campaigns/", {"definition": created.json()["id"], "launch": True}, format="json")
    assert started.status_code == 201 and started.json()["status"] == "launching"


def test_admin_defines_a_campaign_through_the_page_and_errors_keep_the_input(
    world: Any, iam_admin: Any, web_as: Any
) -> None:
    client = web_as(iam_admin)
    assert client.get("/campaigns/definitions/new/").status_code == 200
    base = {
        "name": "From the page",
        "owner": iam_admin.username,
        "reviewer_rule": "business_owner",
        "granularity": "grant",
        "second_stage": "none",
        "duration_days": 14,
        "default_action": "revoke",
        "escalation_grace_days": 7,
        "apply_mode": "immediate",
        "risk_tiers": ["high"],
        "forbid_self_review": "on",
        "is_active": "on",
    }
    bad = client.post("/campaigns/definitions/new/", {**base, "recurrence": "not cron"})
    assert bad.status_code == 200 and b"five-field cron" in bad.content and b"From the page" in bad.content
    assert b'aria-invalid="true"' in bad.content and b'id="id_recurrence-error"' in bad.content
    ok = client.post("/campaigns/definitions/new/", {**base, "recurrence": "0 6 1 1,4,7,10 *", "reminder_days": "7, 1"})
    assert ok.status_code == 302
    saved = CampaignDefinition.objects.get(name="From the page")
    assert saved.reminder_days == [7, 1] and saved.risk_tiers == ["high"]
    start = client.post(f"/campaigns/definitions/{saved.pk}/start/")
    assert start.status_code == 302


def _grow(world: Any, make_integration: Any, make_grant: Any, catalog: Any, n: int) -> Campaign:
    for _ in range(n):
        integration = make_integration(world["alice"], technical_owner=world["item"].integration.technical_owner)
        make_grant(integration, catalog["write"])
        make_grant(integration, catalog["admin"])
    return world["campaign"]


def _count(client: Any, url: str) -> int:
    client.get(url)  # warm the per-user role cache, so both sizes are measured alike
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        assert response.status_code == 200
    return len(ctx.captured_queries)


def test_items_endpoint_and_review_page_run_fixed_queries(
    world: Any,
    make_integration: Any,
    make_grant: Any,
    catalog: Any,
    make_definition: Any,
    launched: Any,
    api_as: Any,
    web_as: Any,
) -> None:
    small = launched(make_definition(name="small"))
    api, web = api_as(world["alice"]), web_as(world["alice"])
    small_api = _count(api, f"/api/v1/campaigns/{small.pk}/items/")
    small_web = _count(web, f"/campaigns/review/?campaign={small.pk}")
    _grow(world, make_integration, make_grant, catalog, 20)
    big = launched(make_definition(name="big"))
    assert ReviewItem.objects.filter(campaign=big).count() == 41
    assert _count(api, f"/api/v1/campaigns/{big.pk}/items/") == small_api
    assert _count(web, f"/campaigns/review/?campaign={big.pk}") == small_web
    per_integration = launched(make_definition(name="per-integration", granularity="integration"))
    assert _count(web, f"/campaigns/review/?campaign={per_integration.pk}") == small_web


def test_campaign_list_and_home_panels(world: Any, web_as: Any, iam_admin: Any) -> None:
    page = web_as(world["alice"]).get("/campaigns/")
    assert page.status_code == 200 and b"1 review item" in page.content
    home = web_as(world["alice"]).get("/")
    assert b"Your recertification reviews" in home.content
    admin_home = web_as(iam_admin).get("/")
    assert b"Running campaigns" in admin_home.content


def test_cancel_only_a_draft(world: Any, iam_admin: Any) -> None:
    from governance.exceptions import IllegalTransition

    with pytest.raises(IllegalTransition):
        services.campaign_cancel(actor=iam_admin, campaign=world["campaign"], reason="oops")


def test_post_campaign_with_the_same_idempotency_key_creates_one(world: Any, iam_admin: Any, token_client: Any) -> None:
    client = token_client(iam_admin)  # the API's idempotency middleware keys on the caller
    body = {"definition": world["definition"].pk, "launch": True}
    first = client.post("/api/v1/campaigns/", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    second = client.post("/api/v1/campaigns/", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"] and second["Idempotent-Replayed"] == "true"
    assert Campaign.objects.filter(definition=world["definition"]).count() == 2  # the fixture's run and this one
    other = client.post(
        "/api/v1/campaigns/", {**body, "name": "Another run"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1"
    )
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["errors"]
    assert Campaign.objects.filter(definition=world["definition"]).count() == 2
