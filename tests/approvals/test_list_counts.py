"""The request list and the reviewer queue when they hold many rows: counted exactly up to a bound
and estimated beyond it on PostgreSQL ("about 12,000"), exact on SQLite, and a fixed number of
queries however many rows there are, on the estimate path too. The bound is set low here so that
a dozen requests take that path."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.models import StepAssignment
from benchmarks._approvals_data import pending_requests_bulk
from governance import paging, portal
from governance.models import User
from inventory.models import Scope

BOUND = 5


@pytest.fixture
def low_bound(settings: Any) -> int:
    settings.PAGING_EXACT_COUNT_UP_TO = BOUND
    return BOUND


@pytest.fixture
def pending(owner: User, reviewer: User, catalog: dict[str, Scope]) -> Callable[[int], None]:
    """Add ``n`` requests waiting for ``reviewer`` (written in bulk), with the table statistics
    PostgreSQL's planner estimates from."""

    def add(n: int) -> None:
        pending_requests_bulk(n=n, owner=owner, reviewer=reviewer, scopes=[catalog["files"], catalog["mail"]])
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE approvals_accessrequest")
                cursor.execute("ANALYZE approvals_stepassignment")

    return add


def estimating() -> bool:
    return connection.vendor == "postgresql"


def _request_links(html: str) -> list[str]:
    """The requests a page of the list links to, in order."""
    return re.findall(r'href="/approvals/requests/(\d+)/"', html)


def test_the_request_list_counts_exactly_within_the_bound(
    pending: Callable[[int], None], iam_admin: User, web_as: Callable[[User], Any]
) -> None:
    pending(3)
    html = web_as(iam_admin).get("/approvals/requests/").content.decode()
    assert '<p id="request-count">3 requests</p>' in html and "about" not in html.split('id="request-count"')[1][:40]


def test_the_request_list_says_about_when_it_estimates(
    pending: Callable[[int], None],
    iam_admin: User,
    web_as: Callable[[User], Any],
    low_bound: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(paging, "planner_rows", lambda queryset: 70_123)
    pending(12)
    html = web_as(iam_admin).get("/approvals/requests/").content.decode()
    if estimating():
        assert '<p id="request-count">about 70,000 requests</p>' in html
    else:
        assert '<p id="request-count">12 requests</p>' in html
    # Twelve rows fit one page of 50: no next page, whatever the estimate says.
    assert "page=2" not in html


def test_the_request_list_pages_through_an_estimated_list(
    pending: Callable[[int], None], iam_admin: User, web_as: Callable[[User], Any], low_bound: int
) -> None:
    pending(55)
    client = web_as(iam_admin)
    first = client.get("/approvals/requests/").content.decode()
    assert 'href="?page=2" rel="next"' in first
    second = client.get("/approvals/requests/?page=2").content.decode()
    assert len(_request_links(second)) == 5 and 'rel="next"' not in second
    # Past the real end: the last real page.
    assert _request_links(client.get("/approvals/requests/?page=9").content.decode()) == _request_links(second)


@pytest.mark.parametrize("who", ["iam_admin", "owner"])
def test_the_request_list_runs_fixed_queries_whatever_the_rows(
    who: str,
    request: pytest.FixtureRequest,
    pending: Callable[[int], None],
    web_as: Callable[[User], Any],
    low_bound: int,
    django_assert_num_queries: Any,
) -> None:
    client = web_as(request.getfixturevalue(who))
    pending(8)
    client.get("/approvals/requests/")  # warm the session and content types
    with CaptureQueriesContext(connection) as few:
        assert client.get("/approvals/requests/").status_code == 200
    pending(60)
    with django_assert_num_queries(len(few)):
        assert client.get("/approvals/requests/?status=in_review").status_code == 200


QUEUE_PAGES = [
    "/approvals/queue/?view=cards",
    "/approvals/queue/?view=table&sort=risk",
    "/approvals/queue/?view=table&sort=-name",
    "/approvals/queue/?tier=low&overdue=1",
    "/approvals/queue/?type=registration&sort=requested",
]


@pytest.mark.parametrize("path", QUEUE_PAGES)
def test_the_queue_runs_fixed_queries_on_the_estimate_path(
    path: str,
    pending: Callable[[int], None],
    reviewer: User,
    web_as: Callable[[User], Any],
    low_bound: int,
    django_assert_num_queries: Any,
) -> None:
    client = web_as(reviewer)
    pending(24)
    client.get(path)  # warm the session and content types
    with CaptureQueriesContext(connection) as few:
        assert client.get(path).status_code == 200
    pending(60)
    with django_assert_num_queries(len(few)):
        response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    items = html.count('class="queue-row"') + html.count('class="panel queue-item"')
    if "overdue" not in path:
        assert items == 25  # a full page
    assert html.count("data-decision-form") == items  # each item with its form


def test_each_queue_item_carries_the_decision_form_of_its_step(
    pending: Callable[[int], None], reviewer: User, web_as: Callable[[User], Any]
) -> None:
    pending(4)
    html = web_as(reviewer).get("/approvals/queue/?view=table").content.decode()
    step_ids = StepAssignment.objects.filter(user=reviewer).values_list("step_id", flat=True)
    assert all(f'id="d{pk}-comment"' in html and f'action="/approvals/steps/{pk}/decide/"' in html for pk in step_ids)


def test_the_nav_badge_counts_up_to_its_cap_and_says_more_beyond(
    pending: Callable[[int], None], reviewer: User, web_as: Callable[[User], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = web_as(reviewer)
    pending(3)
    monkeypatch.setattr(portal, "BADGE_COUNT_UP_TO", 3)
    html = client.get("/inventory/").content.decode()
    assert 'aria-label="3 waiting">3</span>' in html
    pending(1)
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/inventory/").content.decode()
    assert 'aria-label="more than 3 waiting">3+</span>' in html
    # The badge's count reads at most one row past the cap: a LIMIT in the counting query.
    counts = [
        query["sql"]
        for query in queries.captured_queries
        if "approvals_stepassignment" in query["sql"] and "COUNT(" in query["sql"].upper()
    ]
    assert counts and all("LIMIT 4" in sql for sql in counts)
