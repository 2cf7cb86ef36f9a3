"""The definition form reads as sections with help, names people and groups by name with
suggestions, describes its recurrence in words with the next runs, and deletes only after a
confirmation page. The report's chart draws bars whether the decisions fall on one day or many."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import time_machine
from django.contrib.auth.models import Group

from approvals.campaigns import services
from approvals.campaigns.chart import build_chart, daily_buckets, hourly_buckets
from approvals.campaigns.cron import cron_explain
from approvals.campaigns.models import CampaignDefinition, ReviewItem
from governance.models import AuditEvent
from governance.roles import Role

SECTIONS = ("What is reviewed", "Who reviews", "Schedule", "Reminders and escalation", "What happens at the deadline")


def _base(owner: str) -> dict[str, Any]:
    return {
        "name": "Quarterly",
        "owner": owner,
        "reviewer_rule": "business_owner",
        "granularity": "grant",
        "second_stage": "none",
        "duration_days": 14,
        "default_action": "revoke",
        "escalation_grace_days": 7,
        "apply_mode": "immediate",
        "forbid_self_review": "on",
        "is_active": "on",
    }


def test_a_recurrence_is_described_in_words_with_its_next_three_runs() -> None:
    explained = cron_explain("0 9 * 1,4,7,10 1#1", now=datetime(2026, 11, 30, tzinfo=UTC))
    assert explained.valid
    assert explained.description == (
        "At 09:00, on the first Monday of the month, only in January, April, July, and October (UTC)"
    )
    assert [run.date() for run in explained.next_runs] == [date(2027, 1, 4), date(2027, 4, 5), date(2027, 7, 5)]
    assert not cron_explain("quarterly").valid and cron_explain("").valid


def test_the_form_shows_sections_and_the_recurrence_in_words(iam_admin: Any, web_as: Any) -> None:
    definition = services.definition_save(
        actor=iam_admin, values={"name": "Q", "owner": iam_admin, "recurrence": "0 9 * 1,4,7,10 1#1"}
    )
    with time_machine.travel(datetime(2026, 11, 30, tzinfo=UTC), tick=False):
        html = web_as(iam_admin).get(f"/campaigns/definitions/{definition.pk}/").content.decode()
    for legend in SECTIONS:
        assert f"<legend>{legend}</legend>" in html
    assert "on the first Monday of the month, only in January, April, July, and October" in html
    assert "Mon 2027-01-04 09:00 UTC" in html and "Mon 2027-07-05 09:00 UTC" in html
    assert 'data-show-when="reviewer_rule" data-show-value="group" id="field-reviewer_group"' in html
    assert 'value="admin"' in html and 'list="people-options"' in html  # the owner by username, with suggestions
    listed = web_as(iam_admin).get("/campaigns/definitions/").content.decode()
    assert "At 09:00, on the first Monday of the month" in listed


def test_the_cron_endpoint_describes_what_is_typed_for_admins_only(iam_admin: Any, outsider: Any, web_as: Any) -> None:
    data = web_as(iam_admin).get("/campaigns/definitions/cron.json", {"expr": "0 6 1 1,4,7,10 *"}).json()
    assert data["valid"] and data["description"].startswith("At 06:00, on day 1 of the month")
    assert len(data["next_runs"]) == 3
    assert web_as(iam_admin).get("/campaigns/definitions/cron.json", {"expr": "0 6 1"}).json()["valid"] is False
    assert web_as(outsider).get("/campaigns/definitions/cron.json", {"expr": "0 6 1 * *"}).status_code == 404


def test_people_and_groups_are_named_by_name_and_unknown_names_are_errors(
    iam_admin: Any, make_user: Any, web_as: Any
) -> None:
    bob = make_user("bob", Role.BUSINESS_USER)
    carol = make_user("carol", Role.BUSINESS_USER)
    Group.objects.create(name="crm-owners")
    client = web_as(iam_admin)
    bad = client.post(
        "/campaigns/definitions/new/",
        {**_base("nobody"), "business_owners": "bob, ghost", "reviewer_rule": "group", "reviewer_group": "nope"},
    )
    html = bad.content.decode()
    assert bad.status_code == 200 and "“nobody”" in html and "ghost" in html and "No group is named “nope”" in html
    assert 'value="bob, ghost"' in html  # what was typed is kept
    ok = client.post(
        "/campaigns/definitions/new/",
        {
            **_base("admin"),
            "business_owners": "bob, carol",
            "reviewer_rule": "group",
            "reviewer_group": "crm-owners",
            "fallback_user": "carol",
        },
    )
    assert ok.status_code == 302
    saved = CampaignDefinition.objects.get(name="Quarterly")
    assert set(saved.business_owners.all()) == {bob, carol}
    assert saved.reviewer_group is not None and saved.reviewer_group.name == "crm-owners"
    assert saved.fallback_user == carol


def test_a_definition_is_deleted_only_after_its_confirmation_page(
    iam_admin: Any, web_as: Any, make_definition: Any, launched: Any, outsider: Any
) -> None:
    unused = make_definition(recurrence="0 6 1 * *")
    client = web_as(iam_admin)
    assert "Delete the definition" in client.get(f"/campaigns/definitions/{unused.pk}/delete/").content.decode()
    assert CampaignDefinition.objects.filter(pk=unused.pk).exists()
    assert web_as(outsider).post(f"/campaigns/definitions/{unused.pk}/delete/").status_code == 404
    client = web_as(iam_admin)
    assert client.post(f"/campaigns/definitions/{unused.pk}/delete/").status_code == 302
    assert not CampaignDefinition.objects.filter(pk=unused.pk).exists()
    assert AuditEvent.objects.filter(action="campaign_definition.deleted", target_id=str(unused.pk)).count() == 1
    ran = make_definition()
    launched(ran)
    assert "cannot be deleted" in client.get(f"/campaigns/definitions/{ran.pk}/delete/").content.decode()
    assert client.post(f"/campaigns/definitions/{ran.pk}/delete/").status_code == 302
    assert CampaignDefinition.objects.filter(pk=ran.pk).exists()


def test_the_auditor_reads_the_form_but_cannot_delete(iam_admin: Any, auditor: Any, web_as: Any) -> None:
    definition = services.definition_save(actor=iam_admin, values={"name": "Q", "owner": iam_admin})
    assert web_as(auditor).get(f"/campaigns/definitions/{definition.pk}/").status_code == 200
    assert web_as(auditor).get(f"/campaigns/definitions/{definition.pk}/delete/").status_code == 403


def test_one_day_of_decisions_is_drawn_as_hourly_bars_on_a_whole_number_axis() -> None:
    chart = build_chart(hourly_buckets(date(2026, 11, 29), {9: 1}), title="t", x_title="x")
    drawn = [bar for bar in chart.bars if float(bar["height"]) > 0]
    assert len(chart.bars) == 24 and len(drawn) == 1 and drawn[0]["title"].endswith("09:00–10:00 UTC: 1 decided")
    assert [tick["label"] for tick in chart.ticks] == [0, 1]
    assert [label["text"] for label in chart.labels][:3] == ["00:00", "03:00", "06:00"]


def test_many_days_are_drawn_as_daily_bars_with_round_ticks() -> None:
    series = [(date(2026, 11, day), total) for day, total in zip(range(1, 31), range(0, 300, 10), strict=True)]
    chart = build_chart(daily_buckets(series), title="t", x_title="x")
    assert len(chart.bars) == 30 and all(float(bar["height"]) > 0 for bar in chart.bars[1:])
    assert [tick["label"] for tick in chart.ticks] == [0, 5, 10]
    assert len(chart.labels) <= 8 and chart.labels[0]["text"] == "01 Nov"


def test_the_report_of_a_campaign_decided_in_one_day_draws_bars(
    make_user: Any, make_integration: Any, make_grant: Any, catalog: Any, make_definition: Any, launched: Any,
    iam_admin: Any, web_as: Any,
) -> None:  # fmt: skip
    alice = make_user("alice", Role.BUSINESS_USER)
    bot = make_integration(alice, technical_owner=make_user("tech", Role.BUSINESS_USER))
    make_grant(bot, catalog["read"])
    with time_machine.travel(datetime(2026, 11, 29, 9, 0, tzinfo=UTC), tick=False):
        campaign = launched(make_definition())
        services.review_item_decide(actor=alice, item=ReviewItem.objects.get(campaign=campaign), decision="certify")
    with time_machine.travel(datetime(2026, 11, 29, 15, 0, tzinfo=UTC), tick=False):
        html = web_as(iam_admin).get(f"/campaigns/{campaign.pk}/report/").content.decode()
    assert "Items decided per hour on 2026-11-29" in html
    assert html.count('class="chart-bar"') == 24
    assert "2026-11-29 09:00–10:00 UTC: 1 decided" in html and "<polyline" not in html
