"""The reviewer queue at scale, without a browser: the table view (remembered for the next visit),
server-side sorting from a fixed list with a stable order, bulk approval that refuses an empty
selection and sums up what it did, the bulk box only where something may be bulk-approved, and a
fixed number of queries in both views however long the queue."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals import services
from approvals.models import Decision, RequestStatus, StepStatus
from benchmarks._approvals_data import pending_requests_bulk
from governance.models import AuditEvent

pytestmark = pytest.mark.django_db


def _row_names(html: str) -> list[str]:
    """The subjects of the table's rows, in page order."""
    return re.findall(r'class="row-toggle"[^>]*>([^<]+)</button>', html)


def _active_step(req):  # noqa: ANN001, ANN202
    return req.steps.get(status=StepStatus.ACTIVE)


def test_table_view_shows_one_row_per_item_with_its_key_facts(web_as, reviewer, owner, make_integration, submit):
    submit(make_integration("Slack summariser", tier="medium"))
    submit(make_integration("Mail sorter", tier="low"))
    html = web_as(reviewer).get("/approvals/queue/?view=table").content.decode()
    assert sorted(_row_names(html)) == ["Mail sorter", "Slack summariser"]
    assert html.count('class="queue-row"') == 2
    assert 'aria-expanded="true" aria-controls="detail-' in html  # details shown until the script runs
    assert "New registration" in html and "Medium</span> 30" in html and "owner" in html
    assert 'aria-current="page">Table</a>' in html
    assert html.count("data-decision-form") == 2  # each row's details hold the decision form


def test_the_chosen_view_is_remembered_for_the_next_visit(web_as, reviewer, make_integration, submit):
    submit(make_integration())
    client = web_as(reviewer)
    assert 'id="queue-list"' in client.get("/approvals/queue/").content.decode()
    client.get("/approvals/queue/?view=table")
    assert 'id="queue-table"' in client.get("/approvals/queue/").content.decode()
    client.get("/approvals/queue/?view=cards")
    assert 'id="queue-list"' in client.get("/approvals/queue/").content.decode()
    assert 'id="queue-list"' in client.get("/approvals/queue/?view=<script>").content.decode()


def test_sort_orders_by_name_risk_requested_and_due(web_as, reviewer, make_integration, submit):
    submit(make_integration("beta bot", tier="critical"))
    submit(make_integration("Alpha bot", tier="low"))
    submit(make_integration("Gamma bot", tier="high"))
    client = web_as(reviewer)
    assert _row_names(client.get("/approvals/queue/?view=table&sort=name").content.decode()) == [
        "Alpha bot",
        "beta bot",
        "Gamma bot",
    ]
    assert _row_names(client.get("/approvals/queue/?view=table&sort=-name").content.decode())[0] == "Gamma bot"
    assert _row_names(client.get("/approvals/queue/?view=table&sort=risk").content.decode()) == [
        "beta bot",
        "Gamma bot",
        "Alpha bot",
    ]
    assert _row_names(client.get("/approvals/queue/?view=table&sort=-risk").content.decode())[0] == "Alpha bot"
    assert _row_names(client.get("/approvals/queue/?view=table&sort=-requested").content.decode())[0] == "Gamma bot"


def test_equal_sort_keys_keep_the_order_of_arrival_and_unknown_keys_fall_back_to_due(
    web_as, reviewer, make_integration, submit
):
    for name in ("Twin", "Twin", "Twin"):
        submit(make_integration(name, tier="low"))
    client = web_as(reviewer)
    html = client.get("/approvals/queue/?view=table&sort=risk").content.decode()
    pks = [int(pk) for pk in re.findall(r'class="queue-row" id="row-(\d+)"', html)]
    assert pks == sorted(pks)
    fallback = client.get("/approvals/queue/?view=table&sort=step__request__requester__password")
    assert fallback.status_code == 200 and 'aria-sort="ascending"><a href="?view=table&amp;sort=-due"' in (
        fallback.content.decode()
    )


def test_headers_tell_their_sort_state_and_link_to_the_other_direction(web_as, reviewer, make_integration, submit):
    submit(make_integration())
    html = web_as(reviewer).get("/approvals/queue/?view=table&sort=risk&tier=low").content.decode()
    assert '<th scope="col" aria-sort="descending"><a href="?view=table&amp;sort=-risk&amp;tier=low">Risk</a>' in html
    assert '<th scope="col" aria-sort="none"><a href="?view=table&amp;sort=due&amp;tier=low">Due</a>' in html


def test_bulk_approve_with_nothing_ticked_is_an_error_and_changes_nothing(web_as, reviewer, make_integration, submit):
    req = submit(make_integration("Low bot", tier="low"))
    events = AuditEvent.objects.count()
    response = web_as(reviewer).post("/approvals/queue/bulk-approve/", {}, follow=True)
    assert "Nothing was approved: tick at least one low-risk item" in response.content.decode()
    req.refresh_from_db()
    assert req.status == RequestStatus.IN_REVIEW and not Decision.objects.exists()
    assert AuditEvent.objects.count() == events


def test_bulk_approve_sums_up_who_was_approved_who_was_not_and_why(
    web_as, reviewer, second_reviewer, make_integration, submit
):
    first = submit(make_integration("Low one", tier="low"))
    gone = submit(make_integration("Low gone", tier="low"))
    submit(make_integration("Still waiting", tier="medium"))
    steps = [_active_step(first).pk, _active_step(gone).pk]
    services.request_decide(actor=second_reviewer, request=gone, decision="approve")
    response = web_as(reviewer).post(
        "/approvals/queue/bulk-approve/", {"steps": steps, "next": "/approvals/queue/?view=table"}, follow=True
    )
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == "/approvals/queue/?view=table"
    assert "Approved 1 low-risk item: Low one. 1 waiting." in html
    assert "Not approved (1): Low gone: " in html


def test_bulk_approve_of_items_no_longer_waiting_says_so(web_as, reviewer, outsider, make_integration, submit):
    req = submit(make_integration("Hidden", tier="low"))
    response = web_as(outsider).post("/approvals/queue/bulk-approve/", {"steps": [_active_step(req).pk]}, follow=True)
    assert "none of the ticked items waits for you" in response.content.decode()
    assert not Decision.objects.exists()


@pytest.mark.parametrize("view", ["cards", "table"])
def test_bulk_box_shows_only_when_an_item_on_the_page_is_low_risk(view, web_as, reviewer, make_integration, submit):
    submit(make_integration("Mid bot", tier="medium"))
    client = web_as(reviewer)
    assert 'id="bulk-form"' not in client.get(f"/approvals/queue/?view={view}").content.decode()
    submit(make_integration("Low bot", tier="low"))
    html = client.get(f"/approvals/queue/?view={view}").content.decode()
    assert 'id="bulk-form"' in html and html.count('form="bulk-form"') == 1


def test_the_table_is_404_for_a_business_user(web_as, outsider):
    assert web_as(outsider).get("/approvals/queue/?view=table&sort=risk").status_code == 404


@pytest.mark.parametrize("view", ["cards", "table"])
@pytest.mark.parametrize("sort", ["due", "risk", "-name"])
def test_queue_runs_a_fixed_number_of_queries_in_both_views(view, sort, web_as, reviewer, owner, catalog):
    client = web_as(reviewer)
    scopes = [catalog["files"], catalog["mail"]]
    path = f"/approvals/queue/?view={view}&sort={sort}"
    pending_requests_bulk(n=1, owner=owner, reviewer=reviewer, scopes=scopes)
    client.get(path)  # warm the session and content types
    with CaptureQueriesContext(connection) as one:
        assert client.get(path).status_code == 200
    pending_requests_bulk(n=60, owner=owner, reviewer=reviewer, scopes=scopes)
    with CaptureQueriesContext(connection) as many:
        response = client.get(path)
    assert response.status_code == 200 and response.content.decode().count("data-decision-form") == 25
    assert len(many) == len(one), [query["sql"][:120] for query in many.captured_queries]
