"""Usage flowing back from the runtime: per grant and day, added without losing a concurrent
increment; last used and uses in the last 30 days on the integration's page and in the API; the
"holds unused scopes" filter."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance.models import AuditEvent, User
from inventory import selectors, services
from inventory.models import Grant, GrantUsageDay, Integration
from tests.inventory.conftest import grant_all

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _now() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def assistant(owner: User, reviewer: User, make_integration: Callable[..., Integration]) -> Integration:
    """Active, holding two grants (granted 60 days ago)."""
    integration = make_integration(owner, name="Assistant", scopes=("msgraph:User.Read", "msgraph:Mail.Read"))
    grant_all(integration, reviewer)
    Grant.objects.filter(integration=integration).update(granted_at=NOW - timedelta(days=60))
    return integration


def grant_of(integration: Integration, code: str) -> Grant:
    return Grant.objects.get(integration=integration, scope__code=code, status="active")


# --- Recording -----------------------------------------------------------------------------------


def test_uses_are_added_to_the_day_of_the_last_use_and_last_used_only_moves_forward(assistant: Integration) -> None:
    grant = grant_of(assistant, "msgraph:Mail.Read")
    assert services.grant_usage_record({grant.pk: (3, NOW - timedelta(minutes=2))}) == 1
    services.grant_usage_record({grant.pk: (4, NOW - timedelta(minutes=1))})
    # A batch sealed late, of older uses: counted, but last_used_at stays.
    services.grant_usage_record({grant.pk: (2, NOW - timedelta(minutes=30))})
    assert list(GrantUsageDay.objects.values_list("grant_id", "day", "uses")) == [(grant.pk, date(2026, 3, 31), 9)]
    grant.refresh_from_db()
    assert grant.last_used_at == NOW - timedelta(minutes=1)
    assert not AuditEvent.objects.filter(action__startswith="grant.used").exists()


def test_the_day_is_the_utc_day(assistant: Integration) -> None:
    grant = grant_of(assistant, "msgraph:Mail.Read")
    late_evening_in_new_york = datetime(2026, 3, 30, 21, 30, tzinfo=UTC) + timedelta(hours=4)
    services.grant_usage_record({grant.pk: (1, late_evening_in_new_york)})
    services.grant_usage_record({grant.pk: (1, datetime(2026, 3, 30, 23, 59, tzinfo=UTC))})
    assert dict(GrantUsageDay.objects.values_list("day", "uses")) == {date(2026, 3, 31): 1, date(2026, 3, 30): 1}


def test_many_grants_in_one_call_and_unknown_ids_skipped(assistant: Integration) -> None:
    mail, user = grant_of(assistant, "msgraph:Mail.Read"), grant_of(assistant, "msgraph:User.Read")
    recorded = services.grant_usage_record(
        {mail.pk: (5, NOW), user.pk: (1, NOW - timedelta(days=1)), 999_999: (7, NOW)}
    )
    assert recorded == 2
    assert sorted(GrantUsageDay.objects.values_list("grant_id", "day", "uses")) == sorted(
        [(mail.pk, date(2026, 3, 31), 5), (user.pk, date(2026, 3, 30), 1)]
    )


def test_a_concurrent_sealer_adding_to_the_same_row_keeps_its_count(
    assistant: Integration, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another sealer commits its uses between this one's insert of the day's row and its
    increment: both counts must stay (the increment is computed by the database, uses + n)."""
    grant = grant_of(assistant, "msgraph:Mail.Read")
    real_bulk_create = GrantUsageDay.objects.bulk_create
    interleaved: list[bool] = []

    def bulk_create_then_other_sealer(rows: Any, **kwargs: Any) -> Any:
        created = real_bulk_create(rows, **kwargs)
        if not interleaved:
            interleaved.append(True)
            services.grant_usage_record({grant.pk: (10, NOW)})
        return created

    monkeypatch.setattr(GrantUsageDay.objects, "bulk_create", bulk_create_then_other_sealer)
    services.grant_usage_record({grant.pk: (3, NOW)})
    assert GrantUsageDay.objects.get(grant=grant).uses == 13


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs concurrent connections with row locks: runs in the PostgreSQL pass (SQLite has one writer)",
)
def test_sealers_racing_on_the_same_day_lose_no_increment(assistant: Integration) -> None:
    grant = grant_of(assistant, "msgraph:Mail.Read")
    barrier = threading.Barrier(4)
    errors: list[str] = []

    def seal() -> None:
        try:
            barrier.wait()
            for _ in range(5):
                services.grant_usage_record({grant.pk: (2, NOW)})
        except Exception as exc:  # a failure must show in the assertion
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=seal) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert GrantUsageDay.objects.get(grant=grant).uses == 40


# --- Reading ---------------------------------------------------------------------------------------


def _usage(grant: Grant, days_ago: int, uses: int) -> None:
    GrantUsageDay.objects.create(grant=grant, day=NOW.date() - timedelta(days=days_ago), uses=uses)


def test_uses_in_the_last_30_days_count_today_and_the_29_days_before(assistant: Integration) -> None:
    mail = grant_of(assistant, "msgraph:Mail.Read")
    _usage(mail, 0, 4)
    _usage(mail, 29, 3)
    _usage(mail, 30, 100)
    rows = {grant.scope.code: grant for grant in selectors.grants_of(assistant)}
    assert rows["msgraph:Mail.Read"].uses_last_30_days == 7  # type: ignore[attr-defined]
    assert rows["msgraph:User.Read"].uses_last_30_days == 0  # type: ignore[attr-defined]
    assert selectors.used_vs_granted(list(rows.values())) == (1, 2)


@pytest.fixture
def shapes(
    owner: User, reviewer: User, make_integration: Callable[..., Integration], assistant: Integration
) -> dict[str, Integration]:
    """Integrations whose only grant was used recently, long ago, never (old and new), and one
    whose unused grant was revoked."""

    def one(name: str, *, granted_days: int, used_days: int | None, revoked: bool = False) -> Integration:
        integration = make_integration(owner, name=name)
        grant_all(integration, reviewer)
        grant = Grant.objects.get(integration=integration)
        last_used = NOW - timedelta(days=used_days) if used_days is not None else None
        status = "revoked" if revoked else "active"
        Grant.objects.filter(pk=grant.pk).update(
            granted_at=NOW - timedelta(days=granted_days), last_used_at=last_used, status=status
        )
        return integration

    services.grant_usage_record(
        {grant.pk: (1, NOW - timedelta(days=2)) for grant in Grant.objects.filter(integration=assistant)}
    )
    return {
        "recent": assistant,
        "long_ago": one("Long ago", granted_days=90, used_days=31),
        "never_old": one("Never, old", granted_days=31, used_days=None),
        "never_new": one("Never, new", granted_days=5, used_days=None),
        "revoked": one("Revoked", granted_days=90, used_days=None, revoked=True),
    }


def test_holds_unused_scopes(shapes: dict[str, Integration]) -> None:
    unused = set(Integration.objects.filter(selectors.holds_unused_scopes()).values_list("name", flat=True))
    assert unused == {"Long ago", "Never, old"}


def test_list_page_filters_unused_scopes_in_a_fixed_number_of_queries(
    owner: User,
    reviewer: User,
    web_as: Any,
    shapes: dict[str, Integration],
    make_integration: Callable[..., Integration],
) -> None:
    client = web_as(owner)
    page = client.get(reverse("inventory:list"), {"unused_scopes": "true"}).content.decode()
    assert ">Long ago</a>" in page and ">Never, old</a>" in page
    assert ">Assistant</a>" not in page and ">Never, new</a>" not in page and ">Revoked</a>" not in page
    used = client.get(reverse("inventory:list"), {"unused_scopes": "false"}).content.decode()
    assert ">Assistant</a>" in used and ">Long ago</a>" not in used
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("inventory:list"), {"unused_scopes": "true", "identity": "declared"})
    for n in range(5):
        more = make_integration(owner, name=f"Idle {n}")
        grant_all(more, reviewer)
        Grant.objects.filter(integration=more).update(granted_at=NOW - timedelta(days=40))
    with CaptureQueriesContext(connection) as large:
        page = client.get(reverse("inventory:list"), {"unused_scopes": "true", "identity": "declared"}).content.decode()
    assert ">Idle 4</a>" in page
    assert len(large.captured_queries) == len(small.captured_queries)


def test_api_filters_unused_scopes_and_shows_grant_usage(
    owner: User, outsider: User, api_as: Callable[[User], Any], shapes: dict[str, Integration]
) -> None:
    client = api_as(owner)
    names = [row["name"] for row in client.get("/api/v1/integrations/", {"unused_scopes": "true"}).json()["results"]]
    assert names == ["Long ago", "Never, old"]
    assert client.get("/api/v1/integrations/", {"unused_scopes": "maybe"}).status_code == 400
    grants = client.get("/api/v1/grants/", {"integration": shapes["recent"].pk}).json()["results"]
    assert {(row["scope"], row["uses_last_30_days"]) for row in grants} == {
        ("msgraph:User.Read", 1),
        ("msgraph:Mail.Read", 1),
    }
    assert all(row["last_used_at"] == "2026-03-29T12:00:00Z" for row in grants)
    assert api_as(outsider).get("/api/v1/integrations/", {"unused_scopes": "true"}).json()["results"] == []
    assert api_as(outsider).get("/api/v1/grants/", {"integration": shapes["recent"].pk}).json()["results"] == []


def test_grants_endpoint_query_count_stays_fixed_with_usage(
    owner: User, reviewer: User, api_as: Callable[[User], Any], make_integration: Callable[..., Integration]
) -> None:
    client = api_as(owner)
    first = make_integration(owner, name="First")
    grant_all(first, reviewer)
    with CaptureQueriesContext(connection) as small:
        client.get("/api/v1/grants/")
    for n in range(6):
        more = make_integration(owner, name=f"More {n}", scopes=("msgraph:User.Read", "msgraph:Mail.Read"))
        grant_all(more, reviewer)
        services.grant_usage_record({grant.pk: (n + 1, NOW) for grant in Grant.objects.filter(integration=more)})
    with CaptureQueriesContext(connection) as large:
        rows = client.get("/api/v1/grants/").json()["results"]
    assert len(rows) == 13 and sum(row["uses_last_30_days"] for row in rows) == 2 * sum(range(1, 7))
    assert len(large.captured_queries) == len(small.captured_queries)


# --- The integration's page --------------------------------------------------------------------


def test_detail_page_shows_last_used_uses_and_used_vs_granted(owner: User, web_as: Any, assistant: Integration) -> None:
    mail = grant_of(assistant, "msgraph:Mail.Read")
    services.grant_usage_record({mail.pk: (412, NOW - timedelta(hours=1))})
    page = web_as(owner).get(reverse("inventory:detail", args=[assistant.pk])).content.decode()
    assert "Last used" in page and "Uses (30 days)" in page
    assert "1 of 2 granted scopes used in the last 30 days." in page
    assert "<td>412</td>" in page and "2026-03-31 11:00" in page and "never" in page


def test_detail_page_query_count_does_not_grow_with_grants(
    owner: User, reviewer: User, web_as: Any, make_integration: Callable[..., Integration], catalog: Any
) -> None:
    client = web_as(owner)
    small_one = make_integration(owner, name="Small", scopes=("msgraph:User.Read",))
    grant_all(small_one, reviewer)
    big_one = make_integration(owner, name="Big", scopes=tuple(catalog))
    grant_all(big_one, reviewer)
    for integration in (small_one, big_one):
        services.grant_usage_record({grant.pk: (1, NOW) for grant in Grant.objects.filter(integration=integration)})
    client.get(reverse("inventory:detail", args=[small_one.pk]))
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("inventory:detail", args=[small_one.pk]))
    with CaptureQueriesContext(connection) as large:
        page = client.get(reverse("inventory:detail", args=[big_one.pk])).content.decode()
    assert f"{len(catalog)} of {len(catalog)} granted scopes used" in page
    assert len(large.captured_queries) == len(small.captured_queries)


def test_a_large_batch_is_written_in_chunks(assistant: Integration, catalog: dict[str, Any]) -> None:
    mail = grant_of(assistant, "msgraph:Mail.Read")
    Grant.objects.bulk_create(
        [
            Grant(integration=assistant, scope=mail.scope, status="expired", source_type="tests", source_id=str(n))
            for n in range(1200)
        ]
    )
    ids = list(Grant.objects.filter(integration=assistant).values_list("pk", flat=True))
    assert services.grant_usage_record({pk: (2, NOW) for pk in ids}) == len(ids) == 1202
    services.grant_usage_record({pk: (1, NOW) for pk in ids})
    assert set(GrantUsageDay.objects.values_list("uses", flat=True)) == {3}
    assert GrantUsageDay.objects.count() == 1202
    assert not Grant.objects.filter(last_used_at__isnull=True).exists()
