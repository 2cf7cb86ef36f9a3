"""Recertification recommendations use run-time usage: a grant not used in the last 30 days (and
older than that) is recommended for revocation, one in use for certification — with the numbers
in the reason — and the other rules still apply, their reasons combined. The review page reads
the usage in the same query as the grants: no query per item."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.campaigns.models import Granularity, ItemDecision, ReviewItem
from approvals.campaigns.recommend import recommend
from approvals.campaigns.selectors import grants_shown
from governance.roles import Role
from inventory.models import Credential, Grant, GrantUsageDay, Integration

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_now() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def alice(make_user: Any) -> Any:
    return make_user("alice", Role.BUSINESS_USER)


@pytest.fixture
def bot(alice: Any, make_user: Any, make_integration: Any) -> Integration:
    return make_integration(alice, technical_owner=make_user("tech", Role.BUSINESS_USER))


def _grant(
    make_grant: Any, integration: Integration, scope: Any, *, days_old: int, last_used_days: int | None
) -> Grant:
    last_used = NOW - timedelta(days=last_used_days) if last_used_days is not None else None
    return make_grant(integration, scope, granted_at=NOW - timedelta(days=days_old), last_used_at=last_used)


def _uses(grant: Grant, **by_days_ago: int) -> None:
    GrantUsageDay.objects.bulk_create(
        GrantUsageDay(grant=grant, day=NOW.date() - timedelta(days=int(ago[1:])), uses=uses)
        for ago, uses in by_days_ago.items()
    )


def _advice(integration: Integration, grants: list[Grant], last_rotated: datetime | None = NOW) -> Any:
    shown = grants_shown({grant.pk for grant in grants})
    covered = [shown[grant.pk] for grant in grants]
    return recommend(
        integration=integration,
        scopes=[grant.scope for grant in covered],
        last_rotated=last_rotated,
        now=NOW,
        grants=covered,
    )


def test_a_grant_in_use_is_recommended_for_certification_with_its_numbers(
    bot: Integration, make_grant: Any, catalog: Any
) -> None:
    grant = _grant(make_grant, bot, catalog["read"], days_old=200, last_used_days=1)
    _uses(grant, d1=400, d10=12, d29=0, d31=5000)  # the day 31 days ago is outside the window
    advice = _advice(bot, [grant])
    assert advice.decision == ItemDecision.CERTIFY
    assert advice.reason == "Used 412 times in the last 30 days (last used 2026-11-01)."


def test_a_grant_not_used_in_30_days_is_recommended_for_revocation_naming_its_last_use(
    bot: Integration, make_grant: Any, catalog: Any
) -> None:
    grant = _grant(make_grant, bot, catalog["read"], days_old=200, last_used_days=31)
    _uses(grant, d31=7)
    advice = _advice(bot, [grant])
    assert advice.decision == ItemDecision.REVOKE
    assert advice.reason == "Not used in the last 30 days (last used 2026-10-02)."


def test_a_grant_never_used_since_it_was_granted_is_recommended_for_revocation(
    bot: Integration, make_grant: Any, catalog: Any
) -> None:
    grant = _grant(make_grant, bot, catalog["read"], days_old=45, last_used_days=None)
    advice = _advice(bot, [grant])
    assert advice.decision == ItemDecision.REVOKE
    assert advice.reason == "Never used since granted on 2026-09-18."


def test_a_recent_grant_not_used_yet_is_not_held_against_it(bot: Integration, make_grant: Any, catalog: Any) -> None:
    grant = _grant(make_grant, bot, catalog["read"], days_old=10, last_used_days=None)
    advice = _advice(bot, [grant])
    assert advice.decision == ItemDecision.CERTIFY
    assert advice.reason == "The owner is active and nothing flags this access."


def test_rule_reasons_and_usage_are_combined(bot: Integration, alice: Any, make_grant: Any, catalog: Any) -> None:
    grant = _grant(make_grant, bot, catalog["read"], days_old=200, last_used_days=0)
    _uses(grant, d0=3)
    type(alice).objects.filter(pk=alice.pk).update(is_active=False)
    bot.refresh_from_db()
    advice = _advice(bot, [grant])
    assert advice.decision == ItemDecision.REVOKE
    assert advice.reason == (
        "The owner left: the integration is orphaned and nobody answers for this access. "
        "Used 3 times in the last 30 days (last used 2026-11-02)."
    )


def test_a_stale_credential_counts_against_sensitive_access_only_when_it_is_not_in_use(
    bot: Integration, make_grant: Any, catalog: Any
) -> None:
    used = _grant(make_grant, bot, catalog["write"], days_old=400, last_used_days=2)
    _uses(used, d2=1)
    advice = _advice(bot, [used], last_rotated=None)
    assert advice.decision == ItemDecision.CERTIFY
    assert advice.reason == (
        "Used once in the last 30 days (last used 2026-10-31). "
        "Its credential was not rotated in over a year (or never): rotate it."
    )
    Grant.objects.filter(pk=used.pk).update(last_used_at=NOW - timedelta(days=90))
    GrantUsageDay.objects.all().delete()
    advice = _advice(bot, [used], last_rotated=None)
    assert advice.decision == ItemDecision.REVOKE
    assert advice.reason.startswith("Not used in the last 30 days (last used 2026-08-04). Sensitive access")


def test_an_item_covering_several_grants_names_those_not_used(bot: Integration, make_grant: Any, catalog: Any) -> None:
    used = _grant(make_grant, bot, catalog["read"], days_old=200, last_used_days=5)
    _uses(used, d5=20, d6=22)
    idle = _grant(make_grant, bot, catalog["write"], days_old=200, last_used_days=60)
    advice = _advice(bot, [used, idle])
    assert advice.decision == ItemDecision.CERTIFY
    assert advice.reason == (
        "Used 42 times in the last 30 days (last used 2026-10-28). Not used in the last 30 days: crm:write."
    )
    Grant.objects.filter(pk=used.pk).update(last_used_at=NOW - timedelta(days=40))
    GrantUsageDay.objects.all().delete()
    advice = _advice(bot, [used, idle])
    assert advice.decision == ItemDecision.REVOKE
    assert advice.reason == "None of its 2 grants was used in the last 30 days (last used 2026-09-23)."


def test_the_review_page_recommends_from_usage_and_shows_it(
    bot: Integration, alice: Any, make_grant: Any, catalog: Any, make_definition: Any, launched: Any, web_as: Any
) -> None:
    busy = _grant(make_grant, bot, catalog["read"], days_old=200, last_used_days=1)
    _uses(busy, d1=412)
    _grant(make_grant, bot, catalog["write"], days_old=200, last_used_days=31)
    Credential.objects.create(integration=bot, type="api_key", identifier="k-1", last_rotated_at=NOW)
    launched(make_definition())
    html = web_as(alice).get("/campaigns/review/").content.decode()
    assert "Recommendation: certify</strong> — Used 412 times in the last 30 days (last used 2026-11-01)." in html
    assert "Recommendation: revoke</strong> — Not used in the last 30 days (last used 2026-10-02)." in html
    assert "used 412 times in 30 days, last <time" in html


def test_the_review_page_reads_usage_in_a_fixed_number_of_queries(
    bot: Integration,
    alice: Any,
    make_user: Any,
    make_integration: Any,
    make_grant: Any,
    catalog: Any,
    make_definition: Any,
    launched: Any,
    web_as: Any,
) -> None:
    _uses(_grant(make_grant, bot, catalog["read"], days_old=200, last_used_days=1), d1=5)
    small = launched(make_definition(name="small"))
    client = web_as(alice)

    def count(campaign_id: int) -> int:
        client.get(f"/campaigns/review/?campaign={campaign_id}")
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/campaigns/review/?campaign={campaign_id}").status_code == 200
        return len(queries)

    baseline = count(small.pk)
    tech = bot.technical_owner
    for _ in range(15):
        other = make_integration(alice, technical_owner=tech)
        _uses(_grant(make_grant, other, catalog["read"], days_old=200, last_used_days=2), d2=1, d3=4)
        _grant(make_grant, other, catalog["write"], days_old=200, last_used_days=None)
    big = launched(make_definition(name="big"))
    assert ReviewItem.objects.filter(campaign=big).count() == 31
    assert count(big.pk) == baseline
    grouped = launched(make_definition(name="grouped", granularity=Granularity.INTEGRATION))
    assert count(grouped.pk) == baseline


def test_usage_days_outside_the_window_do_not_count(bot: Integration, make_grant: Any, catalog: Any) -> None:
    grant = _grant(make_grant, bot, catalog["read"], days_old=200, last_used_days=29)
    GrantUsageDay.objects.create(grant=grant, day=date(2026, 10, 4), uses=9)  # 29 days ago: inside
    GrantUsageDay.objects.create(grant=grant, day=date(2026, 10, 3), uses=100)  # 30 days ago: outside
    assert getattr(grants_shown({grant.pk})[grant.pk], "uses_last_30_days") == 9  # noqa: B009 (an annotation)
