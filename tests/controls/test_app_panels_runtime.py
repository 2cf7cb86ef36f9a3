"""The runtime's dashboard panel and metrics: standing credentials recorded against just-in-time
access tokens issued, now and per week (tokens counted over the seven days to a snapshot)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import RequestFactory
from django.utils import timezone

from governance import dashboard
from governance.controls.models import MetricSnapshot
from governance.models import User
from inventory.models import Credential, Integration, IntegrationStatus
from runtime import dashboard_panels
from tests.runtime.activity_support import token_event

pytestmark = pytest.mark.django_db

UTC = timezone.get_fixed_timezone(0)
# A Wednesday noon: the week started on Monday the 2nd.
NOW = datetime(2025, 7, 9, 12, 0, tzinfo=UTC)


@pytest.fixture
def bots(owner: User) -> list[Integration]:
    return [
        Integration.objects.create(
            name=f"Bot {index}", kind="agent", purpose="demo", business_owner=owner, status=IntegrationStatus.ACTIVE
        )
        for index in range(3)
    ]


def build(user: User) -> dict[str, Any]:
    request = RequestFactory().get("/dashboard/")
    request.user = user
    (panel,) = [panel for panel in dashboard.panels() if panel.key == "credentials-vs-tokens"]
    context = panel.build(request)
    assert context is not None
    return context


def metric(key: str) -> dashboard.Metric:
    (found,) = [item for item in dashboard.metrics() if item.key == key]
    return found


def test_token_metrics_count_the_days_to_the_end_of_the_day(bots):
    first, second, _third = bots
    token_event(first, at=datetime(2025, 7, 6, 23, 59, tzinfo=UTC))  # Sunday, last minute
    token_event(first, at=datetime(2025, 7, 1, 8, 0, tzinfo=UTC))  # Tuesday
    token_event(second, at=datetime(2025, 6, 30, 0, 0, tzinfo=UTC))  # Monday, first instant
    token_event(second, at=datetime(2025, 6, 29, 23, 59, tzinfo=UTC))  # the Sunday before
    token_event(second, at=datetime(2025, 6, 6, 23, 59, tzinfo=UTC))  # 30 days before Sunday's end
    token_event(second, at=datetime(2025, 6, 7, 0, 0, tzinfo=UTC))  # the first instant of the 30 days
    token_event(second, at=datetime(2025, 7, 7, 0, 0, tzinfo=UTC))  # the next day
    token_event(second, at=datetime(2025, 7, 2, 9, 0, tzinfo=UTC), outcome="refused", error="invalid_scope")
    week, month, users = (
        metric("runtime.tokens_issued_7d"),
        metric("runtime.tokens_issued_30d"),
        metric("runtime.jit_token_users_7d"),
    )
    sunday = date(2025, 7, 6)
    assert (week.compute(sunday), users.compute(sunday)) == (3.0, 2.0), "Monday 30 June to Sunday 6 July"
    assert month.compute(sunday) == 5.0
    for measured in (week, month, users):
        assert measured.backfill is measured.compute, "the log's own times: a past day measures as it did then"
    assert (week.compute(date(2025, 6, 29)), users.compute(date(2025, 6, 29))) == (1.0, 1.0)
    assert week.compute(date(2025, 7, 14)) == 0.0


def test_panel_compares_standing_credentials_with_tokens_issued(bots, iam_admin, django_assert_num_queries):
    first, second, third = bots
    with time_machine.travel(NOW - timedelta(days=90), tick=False):
        Credential.objects.create(integration=first, type="api_key", identifier="key-1")
        Credential.objects.create(integration=first, type="oauth_client", identifier="client-1")
        Credential.objects.create(integration=second, type="workload_identity_token", identifier="sa-2")
    token_event(second, at=NOW - timedelta(minutes=5), expires_in=timedelta(minutes=10))  # live
    token_event(second, at=NOW - timedelta(minutes=20), expires_in=timedelta(minutes=10))  # expired
    token_event(third, at=NOW - timedelta(minutes=1), outcome="refused", error="invalid_scope", expires_in=None)
    for back, holders, users in ((1, 2, 0), (2, 1, 1)):
        sunday = date(2025, 7, 6) - timedelta(weeks=back - 1)
        MetricSnapshot.objects.create(key="inventory.standing_credential_holders", day=sunday, value=holders)
        MetricSnapshot.objects.create(key="runtime.jit_token_users_7d", day=sunday, value=users)
    for day, week, month in ((date(2025, 7, 6), 40, 170), (date(2025, 7, 8), 52, 181)):
        MetricSnapshot.objects.create(key="runtime.tokens_issued_7d", day=day, value=week)
        MetricSnapshot.objects.create(key="runtime.tokens_issued_30d", day=day, value=month)
    MetricSnapshot.objects.create(key="runtime.jit_token_users_7d", day=date(2025, 7, 8), value=3)
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(4):
        context = build(iam_admin)
    assert context["standing"] == {"credentials": 2, "integrations": 1}
    assert context["live"] == 1
    assert (context["tokens_week"], context["tokens_month"], context["token_users"]) == (52, 181, 3)
    assert context["measured_on"] == date(2025, 7, 8), "Tuesday's snapshot: the latest"
    table = {row["label"]: row["cells"] for row in context["chart"]["table"]["rows"]}
    assert len(table) == dashboard_panels.WEEKS
    assert table["07 Jul"] == ["1", "3"], "this week: holders now, token users at the latest snapshot"
    assert table["30 Jun"] == ["2", "0"]
    assert table["23 Jun"] == ["1", "1"]
    assert table["16 Jun"] == ["–", "–"]
    assert context["month_url"] == "/runtime/activity/?outcome=issued&since=2025-06-09T12%3A00%3A00%2B00%3A00"


def test_panel_says_when_token_volumes_were_not_measured(bots, iam_admin):
    with time_machine.travel(NOW, tick=False):
        MetricSnapshot.objects.create(key="runtime.tokens_issued_7d", day=date(2025, 7, 1), value=9)  # eight days ago
        context = build(iam_admin)
    assert (context["tokens_week"], context["tokens_month"], context["measured_on"]) == (None, None, None)


def test_issued_link_lists_the_tokens_the_snapshot_counts(bots, iam_admin, web_as):
    token_event(bots[0], at=timezone.now() - timedelta(days=2))
    token_event(bots[1], at=timezone.now() - timedelta(days=40))
    token_event(bots[1], at=timezone.now() - timedelta(hours=1), outcome="refused", error="invalid_scope")
    month = metric("runtime.tokens_issued_30d").compute(timezone.localdate())
    context = build(iam_admin)
    page = web_as(iam_admin).get(context["month_url"])
    assert page.status_code == 200
    assert page.context["page"].paginator.count == month == 1


def test_panel_queries_do_not_grow_with_the_log(bots, iam_admin, django_assert_num_queries):
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        for index in range(90):
            token_event(bots[index % 3], at=NOW - timedelta(minutes=index))
            Credential.objects.create(integration=bots[index % 3], type="api_key", identifier=f"key-{index}")
    for back in range(84):
        for key in ("inventory.standing_credential_holders", "runtime.jit_token_users_7d", "runtime.tokens_issued_7d"):
            MetricSnapshot.objects.create(key=key, day=NOW.date() - timedelta(days=back), value=back)
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(4):
        context = build(iam_admin)
    assert context["standing"]["credentials"] == 90
    assert context["live"] == 10, "issued in the last ten minutes, each living ten minutes"
    assert context["tokens_week"] == 0, "today's snapshot"
