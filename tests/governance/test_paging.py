"""Counts of long lists: exact up to a bound, the planner's estimate beyond it on PostgreSQL
("about 12,000" on pages, ``count_is_estimate`` in the API), exact on SQLite; pages and ``next``
never trust the estimate. The bound is set low here so that a dozen rows take the estimate path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance import paging
from governance.models import User
from inventory.models import Integration

BOUND = 5
ROWS = 12


@pytest.fixture
def low_bound(settings: Any) -> int:
    settings.PAGING_EXACT_COUNT_UP_TO = BOUND
    return BOUND


@pytest.fixture
def rows(owner: User) -> list[Integration]:
    """A dozen integrations of ``owner`` (written in bulk: only their number matters here)."""
    made = Integration.objects.bulk_create(
        [
            Integration(name=f"Paged {index:02}", kind="agent", purpose="Paging.", business_owner=owner)
            for index in range(ROWS)
        ]
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE inventory_integration")
    return made


def estimating() -> bool:
    return connection.vendor == "postgresql"


def test_estimates_keep_two_significant_figures() -> None:
    assert [paging.rounded(value) for value in (7, 99, 123, 12_345, 523_112, 5_012_345, 9_960)] == [
        7,
        99,
        120,
        12_000,
        520_000,
        5_000_000,
        10_000,
    ]
    assert paging.Counted(12_000, estimated=True).label == "about 12,000"
    assert paging.Counted(12_345).label == "12345"


def test_a_list_in_memory_is_counted_exactly() -> None:
    assert paging.count_of(list(range(50)), exact_up_to=BOUND) == paging.Counted(50)


def test_a_list_that_can_match_nothing_counts_zero(rows: list[Integration]) -> None:
    # A filter the ORM knows matches nothing sends no query, so there is no plan to read.
    assert paging.count_of(Integration.objects.none(), exact_up_to=BOUND) == paging.Counted(0)
    assert paging.count_of(Integration.objects.filter(pk__in=[]), exact_up_to=BOUND) == paging.Counted(0)


def test_up_to_the_bound_the_count_is_exact(rows: list[Integration]) -> None:
    counted = paging.count_of(Integration.objects.order_by("pk"), exact_up_to=ROWS)
    assert counted == paging.Counted(ROWS)


def test_beyond_the_bound_postgresql_estimates_and_sqlite_counts(rows: list[Integration]) -> None:
    counted = paging.count_of(Integration.objects.order_by("pk"), exact_up_to=BOUND)
    if estimating():
        # Never below what the bounded count saw; the planner's figure after ANALYZE.
        assert counted.estimated and counted.value >= BOUND + 1
    else:
        assert counted == paging.Counted(ROWS)


def test_the_estimate_never_decides_whether_a_next_page_exists(
    rows: list[Integration], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A planner far off (a million where a dozen exist): pages still end where the rows end.
    monkeypatch.setattr(paging, "planner_rows", lambda queryset: 1_000_000)
    paginator = paging.EstimatedCountPaginator(Integration.objects.order_by("pk"), 5)
    paginator.exact_up_to = BOUND
    last = paginator.page(3)
    assert [row.name for row in last] == ["Paged 10", "Paged 11"]
    assert not last.has_next() and last.has_previous()
    assert (last.start_index(), last.end_index()) == (11, 12)
    if estimating():
        assert paginator.count_is_estimate and paginator.count_label == "about 1,000,000"
        assert paginator.page(2).has_next()
        with pytest.raises(paging.EmptyPage):
            paginator.page(4)
    else:
        assert not paginator.count_is_estimate and paginator.count == ROWS


def test_a_page_past_the_real_end_shows_the_last_real_page(
    rows: list[Integration], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "planner_rows", lambda queryset: 1_000_000)
    paginator = paging.EstimatedCountPaginator(Integration.objects.order_by("pk"), 5)
    paginator.exact_up_to = BOUND
    page = paginator.get_page(40)
    assert page.number == 3 and [row.name for row in page] == ["Paged 10", "Paged 11"]
    # Having seen the end, the list knows its real size.
    assert paginator.count == ROWS and not paginator.count_is_estimate
    assert paginator.get_page("x").number == 1


def _list_page(client: Any) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/inventory/")
    assert response.status_code == 200
    return response.content.decode(), len(queries.captured_queries)


def test_the_inventory_page_says_about_when_it_estimates(
    rows: list[Integration],
    reviewer: User,
    web_as: Callable[[User], Any],
    low_bound: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(paging, "planner_rows", lambda queryset: 12_345)
    client = web_as(reviewer)
    client.get("/inventory/")  # warm up (roles, sessions)
    html, _queries = _list_page(client)
    if estimating():
        assert "about 12,000 integrations" in html
        assert "Page 1 of about 480 (about 12,000 in all)" in html
    else:
        assert f"{ROWS} integrations" in html and "about 12,000" not in html
    assert 'href="?page=2"' not in html  # 12 rows fit one page of 25: no next page, whatever the estimate


def test_the_inventory_page_counts_exactly_below_the_bound(
    rows: list[Integration], reviewer: User, web_as: Callable[[User], Any]
) -> None:
    html, _queries = _list_page(web_as(reviewer))
    assert f"{ROWS} integrations" in html and "about 1" not in html


def test_the_inventory_page_runs_fixed_queries_whatever_the_rows(
    owner: User,
    reviewer: User,
    web_as: Callable[[User], Any],
    low_bound: int,
    django_assert_num_queries: Any,
) -> None:
    client = web_as(reviewer)
    Integration.objects.bulk_create(
        [Integration(name=f"Few {index}", kind="agent", purpose="P", business_owner=owner) for index in range(8)]
    )
    client.get("/inventory/")
    _html, few = _list_page(client)
    Integration.objects.bulk_create(
        [Integration(name=f"Many {index}", kind="agent", purpose="P", business_owner=owner) for index in range(40)]
    )
    with django_assert_num_queries(few):
        assert client.get("/inventory/").status_code == 200


def test_the_api_says_whether_its_count_is_an_estimate(
    rows: list[Integration],
    reviewer: User,
    api_as: Callable[[User], Any],
    low_bound: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(paging, "planner_rows", lambda queryset: 12_345)
    api = api_as(reviewer)
    first = api.get("/api/v1/integrations/", {"page_size": 5}).json()
    assert list(first) == ["count", "count_is_estimate", "next", "previous", "results"]
    assert first["count_is_estimate"] is estimating()
    assert first["count"] == (12_000 if estimating() else ROWS)
    last = api.get("/api/v1/integrations/", {"page_size": 5, "page": 3}).json()
    assert len(last["results"]) == 2 and last["next"] is None and "page=2" in last["previous"]
    # Past the real end it is a 404, as for any list, even where the estimate promised more.
    assert api.get("/api/v1/integrations/", {"page_size": 5, "page": 4}).status_code == 404


def test_an_exact_api_count_says_so(rows: list[Integration], reviewer: User, api_as: Callable[[User], Any]) -> None:
    body = api_as(reviewer).get("/api/v1/grants/").json()
    assert body["count"] == 0 and body["count_is_estimate"] is False


def test_the_api_list_runs_fixed_queries_on_the_estimate_path(
    owner: User,
    reviewer: User,
    api_as: Callable[[User], Any],
    low_bound: int,
    django_assert_num_queries: Any,
) -> None:
    api = api_as(reviewer)
    Integration.objects.bulk_create(
        [Integration(name=f"Few {index}", kind="agent", purpose="P", business_owner=owner) for index in range(8)]
    )
    api.get("/api/v1/integrations/")
    with CaptureQueriesContext(connection) as few:
        api.get("/api/v1/integrations/")
    Integration.objects.bulk_create(
        [Integration(name=f"Many {index}", kind="agent", purpose="P", business_owner=owner) for index in range(60)]
    )
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(api.get("/api/v1/integrations/").json()["results"]) == 50


def test_the_schema_documents_the_estimate_flag(api_as: Callable[[User], Any], reviewer: User) -> None:
    schema = api_as(reviewer).get("/api/v1/schema/", {"format": "json"}).json()
    page = schema["components"]["schemas"]["PaginatedIntegrationList"]
    assert page["properties"]["count_is_estimate"]["type"] == "boolean"
    assert "count_is_estimate" in page["required"]
    assert "estimate" in page["properties"]["count"]["description"]


def _counts_issued(queries: CaptureQueriesContext) -> int:
    return sum("COUNT(" in query["sql"].upper() for query in queries.captured_queries)


def test_a_short_list_is_counted_exactly_whatever_the_planner_expects(
    rows: list[Integration], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The planner's estimate of a list filtered by what its reader may see (an OR of subqueries)
    # can be a share of the whole table: trusting it would tell a reader with three rows how many
    # everyone else has. The bounded count always comes first; the planner is not even asked.
    def refuse(queryset: Any) -> int:
        raise AssertionError("the planner was asked about a list within the bound")

    monkeypatch.setattr(paging, "planner_rows", refuse)
    few = Integration.objects.filter(name__in=["Paged 00", "Paged 01", "Paged 02"])
    with CaptureQueriesContext(connection) as queries:
        counted = paging.count_of(few.order_by("pk"), exact_up_to=BOUND)
    assert counted == paging.Counted(3) and _counts_issued(queries) == 1


def test_beyond_the_bound_the_estimate_is_never_below_what_was_counted(
    rows: list[Integration], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "planner_rows", lambda queryset: 1)
    counted = paging.count_of(Integration.objects.order_by("pk"), exact_up_to=BOUND)
    if estimating():
        assert counted == paging.Counted(BOUND + 1, estimated=True)
    else:
        assert counted == paging.Counted(ROWS)


def test_an_exact_count_never_asks_the_planner(rows: list[Integration], monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(queryset: Any) -> int:
        raise AssertionError("the planner was asked for an exact count")

    monkeypatch.setattr(paging, "planner_rows", refuse)
    assert paging.count_of(Integration.objects.all(), exact_up_to=paging.MAX_EXACT) == paging.Counted(ROWS)


def test_a_list_not_narrowed_to_its_reader_takes_a_far_estimate_without_counting(
    rows: list[Integration], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A broad word search checks every row it counts: beyond five times the bound the planner's
    # figure is taken as it is.
    monkeypatch.setattr(paging, "planner_rows", lambda queryset: 5 * BOUND + 1)
    with CaptureQueriesContext(connection) as queries:
        counted = paging.count_of(Integration.objects.order_by("pk"), exact_up_to=BOUND, estimate_first=True)
    if estimating():
        assert counted == paging.Counted(5 * BOUND + 1, estimated=True) and _counts_issued(queries) == 0
    else:
        assert counted == paging.Counted(ROWS) and _counts_issued(queries) == 1


def test_an_estimate_near_the_bound_is_still_counted_first(
    rows: list[Integration], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "planner_rows", lambda queryset: 5 * BOUND)
    with CaptureQueriesContext(connection) as queries:
        counted = paging.count_of(Integration.objects.order_by("pk"), exact_up_to=BOUND, estimate_first=True)
    assert _counts_issued(queries) == 1
    assert counted.estimated is estimating() and counted.value >= BOUND + 1


def test_only_a_list_not_narrowed_to_its_reader_takes_the_estimate_first(
    rows: list[Integration],
    owner: User,
    reviewer: User,
    web_as: Callable[[User], Any],
    api_as: Callable[[User], Any],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Within the bound the owner's dozen is counted, whatever the planner expects of the list
    # narrowed to them; the reviewer's list (everything) takes a far estimate as it is.
    settings.PAGING_EXACT_COUNT_UP_TO = 2 * ROWS
    monkeypatch.setattr(paging, "planner_rows", lambda queryset: 1_000_000)
    for user, expected in ((owner, ROWS), (reviewer, 1_000_000 if estimating() else ROWS)):
        client = web_as(user)
        client.get("/inventory/")
        html, _queries = _list_page(client)
        assert (f"about {expected:,} integrations" if expected != ROWS else f"{ROWS} integrations") in html
        body = api_as(user).get("/api/v1/integrations/").json()
        assert body["count"] == expected and body["count_is_estimate"] is (expected != ROWS)
