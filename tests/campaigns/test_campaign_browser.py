"""Campaign pages in a real browser (Debian's Chromium through Playwright): the review page chooses
nothing for the reviewer and accepts the recommendations only when asked, keeps every choice
after a refusal; the definition form shows its sections, describes the recurrence as it is typed
and reveals what a choice makes relevant; the report's chart shows bars for a campaign decided
in one day; a campaign with everything decided says so and closes early after a confirmation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from approvals.campaigns import services
from approvals.campaigns.models import CampaignStatus, ItemStatus, ReviewItem
from governance.roles import Role
from tests.browser_support import BROWSER_MARKS, chromium, sign_in

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as instance:
        yield instance


@pytest.fixture
def running(
    transactional_db: Any,
    make_user: Any,
    make_integration: Any,
    make_grant: Any,
    catalog: Any,
    make_definition: Any,
    launched: Any,
) -> dict[str, Any]:
    """alice reviews three grants: read (certify recommended), write and admin (revoke)."""
    alice = make_user("alice", Role.BUSINESS_USER)
    bot = make_integration(alice, technical_owner=make_user("tech", Role.BUSINESS_USER))
    grants = {name: make_grant(bot, catalog[name]) for name in ("read", "write", "admin")}
    campaign = launched(make_definition())
    items = {name: ReviewItem.objects.get(campaign=campaign, grant=grant) for name, grant in grants.items()}
    return {"alice": alice, "campaign": campaign, "items": items}


def test_the_review_page_chooses_nothing_and_accepts_recommendations_of_ticked_items(
    running: Any, live_server: Any, browser: Any
) -> None:
    base = str(live_server.url)
    read, write, admin = (running["items"][name].pk for name in ("read", "write", "admin"))
    page = browser.new_page()
    try:
        sign_in(page, base, "alice", "pw")
        page.goto(f"{base}/campaigns/review/")
        expect(page.locator("li.review-item")).to_have_count(3)
        expect(page.locator("input[type=radio]:checked")).to_have_count(0)
        expect(page.locator(f"#rec-{write}")).to_contain_text("Recommendation: revoke")
        page.get_by_label(f"Tick item #{read}").check()
        page.get_by_label(f"Tick item #{write}").check()
        page.get_by_role("button", name="Accept the recommendations for the ticked items").click()
        expect(page.locator(".messages")).to_contain_text("2 items decided as recommended. 1 item still waits")
        expect(page.locator("li.review-item")).to_have_count(1)
        expect(page.locator(f"#item-{admin}")).to_be_visible()
    finally:
        page.close()
    assert ReviewItem.objects.get(pk=read).status == ItemStatus.CERTIFIED
    revoked = ReviewItem.objects.get(pk=write)
    assert revoked.status == ItemStatus.REVOKED and revoked.comment.startswith("Accepted recommendation: ")


def test_a_refused_submit_keeps_every_choice_and_records_the_decided_items(
    running: Any, live_server: Any, browser: Any
) -> None:
    base = str(live_server.url)
    read, write, admin = (running["items"][name].pk for name in ("read", "write", "admin"))
    page = browser.new_page()
    try:
        sign_in(page, base, "alice", "pw")
        page.goto(f"{base}/campaigns/review/")
        page.locator(f"#item-{read}").get_by_label("Certify (keep)").check()
        page.locator(f"#item-{write}").get_by_label("Revoke").check()
        page.get_by_label(f"Comment on item #{admin}").fill("ask the owner first")
        page.get_by_role("button", name="Submit my decisions").first.click()
        item = page.locator(f"#item-{write}")
        expect(item.locator(".field-error")).to_have_text("Give a reason to revoke.")
        expect(item.get_by_label("Revoke")).to_be_checked()
        expect(page.get_by_label(f"Comment on item #{admin}")).to_have_value("ask the owner first")
        expect(page.locator(f"#item-{read}")).to_have_count(0)
        expect(page.locator(".messages")).to_contain_text("1 item decided. 2 items still wait")
        # The reason given, the same submit records the revoke and leaves the last item open.
        page.get_by_label(f"Comment on item #{write}").fill("nobody uses it")
        page.get_by_role("button", name="Submit my decisions").first.click()
        expect(page.locator(".messages")).to_contain_text("1 item decided. 1 item still waits")
        expect(page.locator("li.review-item")).to_have_count(1)
    finally:
        page.close()
    assert ReviewItem.objects.get(pk=write).status == ItemStatus.REVOKED
    assert ReviewItem.objects.get(pk=admin).status == ItemStatus.OPEN


def test_the_definition_form_has_sections_describes_the_cron_and_reveals_what_applies(
    transactional_db: Any, iam_admin: Any, live_server: Any, browser: Any
) -> None:
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "admin", "pw")
        page.goto(f"{base}/campaigns/definitions/new/")
        for legend in ("What is reviewed", "Who reviews", "Schedule", "What happens at the deadline"):
            expect(page.locator("legend", has_text=legend)).to_be_visible()
        group = page.get_by_label("Reviewing group")
        expect(group).to_be_hidden()
        page.get_by_label("Reviewer", exact=True).select_option("group")
        expect(group).to_be_visible()
        expect(page.get_by_label("Grace after escalation (days)")).to_be_hidden()
        page.get_by_label("Undecided items").select_option("escalate")
        expect(page.get_by_label("Grace after escalation (days)")).to_be_visible()
        page.get_by_label("Repeats (cron, UTC)").fill("0 9 * 1,4,7,10 1#1")
        expect(page.locator("#cron-words")).to_contain_text("on the first Monday of the month")
        expect(page.locator("#cron-runs li")).to_have_count(3)
        expect(page.locator("#cron-runs li").first).to_contain_text("Mon ")
        page.get_by_label("Repeats (cron, UTC)").fill("every quarter")
        expect(page.locator("#cron-words")).to_contain_text("Not a valid cron expression")
        expect(page.locator("#cron-runs li")).to_have_count(0)
    finally:
        page.close()


def test_the_report_of_a_campaign_decided_today_shows_visible_bars(
    running: Any, iam_admin: Any, live_server: Any, browser: Any
) -> None:
    for item in running["items"].values():
        services.review_item_decide(actor=running["alice"], item=item, decision="certify")
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "admin", "pw")
        page.goto(f"{base}/campaigns/{running['campaign'].pk}/report/")
        chart = page.locator("svg.progress-chart")
        expect(chart).to_be_visible()
        expect(chart.locator("title").first).to_contain_text("Items decided per hour on")
        expect(chart.locator("rect.chart-bar")).to_have_count(24)
        bar = chart.locator("rect.chart-bar").filter(has_text=": 3 decided")
        expect(bar).to_have_count(1)
        box = bar.bounding_box()
        assert box is not None and box["height"] > 20 and box["width"] > 5
    finally:
        page.close()


def test_a_campaign_with_everything_decided_says_so_and_closes_early_after_confirming(
    running: Any, iam_admin: Any, live_server: Any, browser: Any
) -> None:
    campaign = running["campaign"]
    for item in running["items"].values():
        services.review_item_decide(actor=running["alice"], item=item, decision="certify")
    base = str(live_server.url)
    page = browser.new_page()
    try:
        sign_in(page, base, "admin", "pw")
        page.goto(f"{base}/campaigns/{campaign.pk}/")
        expect(page.locator("#campaign-status")).to_have_text(f"All decided; closes on {campaign.deadline:%Y-%m-%d}")
        page.get_by_role("link", name="Close the campaign now…").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Close")
        page.get_by_role("button", name="Close the campaign").click()
        expect(page.locator("#campaign-status")).to_have_text("Closed")
        expect(page.locator(".messages")).to_contain_text("Campaign closed")
    finally:
        page.close()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CLOSED
    assert campaign.closed_at is not None and campaign.closed_at < campaign.deadline - timedelta(days=1)
    assert campaign.launched_at is not None and campaign.launched_at <= datetime.now(UTC)
