"""The reviewer's page: nothing is chosen for the reviewer, the recommendation is a hint beside
each item, accepting the recommendations is an explicit action (audited as such), a submit
records only the items given a decision and says how many remain, and a refused submit shows the
page again with every choice kept."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.campaigns.models import ItemStatus, ReviewItem
from governance.models import AuditEvent
from governance.roles import Role


@pytest.fixture
def review(
    make_user: Any, make_integration: Any, make_grant: Any, catalog: Any, make_definition: Any, launched: Any
) -> dict[str, Any]:
    """alice reviews three grants of her integration: read (low; certify recommended), write
    (high) and admin (critical), whose never-rotated credential makes revoke the advice."""
    alice = make_user("alice", Role.BUSINESS_USER)
    tech = make_user("tech", Role.BUSINESS_USER)
    bot = make_integration(alice, technical_owner=tech)
    grants = {name: make_grant(bot, catalog[name]) for name in ("read", "write", "admin")}
    campaign = launched(make_definition())
    items = {name: ReviewItem.objects.get(campaign=campaign, grant=grant) for name, grant in grants.items()}
    return {"alice": alice, "campaign": campaign, "items": items, "bot": bot}


def _post(client: Any, **values: Any) -> Any:
    return client.post("/campaigns/review/decide/", values)


def _shown(review: dict[str, Any]) -> list[int]:
    return [item.pk for item in review["items"].values()]


def test_no_decision_is_chosen_for_the_reviewer_and_the_recommendation_is_a_hint(review: Any, web_as: Any) -> None:
    html = web_as(review["alice"]).get("/campaigns/review/").content.decode()
    radios = re.findall(r'<input type="radio"[^>]*>', html)
    assert len(radios) == 2 * 3 + 2  # two choices per item, two for the ticked items
    assert not [radio for radio in radios if "checked" in radio]
    write = review["items"]["write"].pk
    assert f'id="rec-{write}"><strong>Recommendation: revoke</strong> — ' in html
    assert "Accept the recommendations for the ticked items" in html
    assert "Accept the recommendations for all 3 items on this page" in html


def test_a_submit_records_only_the_items_given_a_decision_and_says_how_many_remain(review: Any, web_as: Any) -> None:
    client = web_as(review["alice"])
    read = review["items"]["read"].pk
    response = _post(client, action="each", shown=_shown(review), **{f"decision-{read}": "certify"})
    assert response.status_code == 302
    statuses = {name: ReviewItem.objects.get(pk=item.pk).status for name, item in review["items"].items()}
    assert statuses == {"read": ItemStatus.CERTIFIED, "write": ItemStatus.OPEN, "admin": ItemStatus.OPEN}
    page = client.get(response["Location"]).content.decode()
    assert "1 item decided. 2 items still wait for your decision." in page


def test_a_refused_submit_shows_the_page_again_with_every_choice_kept(review: Any, web_as: Any) -> None:
    client = web_as(review["alice"])
    read, write, admin = (review["items"][name].pk for name in ("read", "write", "admin"))
    response = _post(
        client,
        action="each",
        next=f"/campaigns/review/?campaign={review['campaign'].pk}",
        shown=_shown(review),
        items=[admin],
        decision="revoke",
        comment="for the ticked ones",
        **{f"decision-{read}": "certify", f"decision-{write}": "revoke", f"comment-{admin}": "still thinking"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    # The certify was recorded; the revoke without a reason was not, and its choice is still made.
    assert ReviewItem.objects.get(pk=read).status == ItemStatus.CERTIFIED
    assert ReviewItem.objects.get(pk=write).status == ItemStatus.OPEN
    assert f'name="decision-{write}" value="revoke" checked' in html
    assert f'id="ce-{write}">Give a reason to revoke.</p>' in html
    assert ">still thinking</textarea>" in html and ">for the ticked ones</textarea>" in html
    assert f'name="items" value="{admin}" checked' in html
    assert 'name="decision" value="revoke" checked' in html
    assert f"item-{read}" not in html  # decided: no longer on the page
    # The next submit returns to the page the reviewer came from, never to the post's address.
    assert f'name="next" value="/campaigns/review/?campaign={review["campaign"].pk}"' in html
    assert "1 item decided. 2 items still wait for your decision." in html


def test_a_submit_with_nothing_chosen_says_so_and_keeps_what_was_typed(review: Any, web_as: Any) -> None:
    client = web_as(review["alice"])
    write = review["items"]["write"].pk
    response = _post(client, action="each", shown=_shown(review), **{f"comment-{write}": "a draft reason"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing was decided" in html and ">a draft reason</textarea>" in html
    assert ReviewItem.objects.filter(status=ItemStatus.OPEN).count() == 3


def test_accepting_the_recommendations_of_the_ticked_items_decides_them_as_advised_and_audits_it(
    review: Any, web_as: Any
) -> None:
    client = web_as(review["alice"])
    read, write = review["items"]["read"].pk, review["items"]["write"].pk
    # A choice made for another item is not recorded by this button.
    admin = review["items"]["admin"].pk
    response = _post(
        client, action="accept-ticked", shown=_shown(review), items=[read, write], **{f"decision-{admin}": "certify"}
    )
    assert response.status_code == 302
    assert ReviewItem.objects.get(pk=read).status == ItemStatus.CERTIFIED
    revoked = ReviewItem.objects.get(pk=write)
    assert revoked.status == ItemStatus.REVOKED
    assert revoked.comment.startswith("Accepted recommendation: Sensitive access with a credential not rotated")
    assert ReviewItem.objects.get(pk=admin).status == ItemStatus.OPEN
    events = AuditEvent.objects.filter(action="review_item.decided").order_by("pk")
    assert [event.target_id for event in events] == [str(read), str(write)]
    assert all((event.after or {})["accepted_recommendation"] is True for event in events)
    assert all(event.reason.startswith("Accepted recommendation: ") for event in events)
    assert all(event.actor_username == "alice" for event in events)
    assert "2 items decided as recommended. 1 item still waits" in client.get(response["Location"]).content.decode()


def test_accepting_the_recommendations_of_the_page_decides_every_item_shown(review: Any, web_as: Any) -> None:
    response = _post(web_as(review["alice"]), action="accept-page", shown=_shown(review))
    assert response.status_code == 302
    statuses = {name: ReviewItem.objects.get(pk=item.pk).status for name, item in review["items"].items()}
    assert statuses == {"read": ItemStatus.CERTIFIED, "write": ItemStatus.REVOKED, "admin": ItemStatus.REVOKED}


def test_accepting_with_nothing_ticked_says_so(review: Any, web_as: Any) -> None:
    response = _post(web_as(review["alice"]), action="accept-ticked", shown=_shown(review))
    assert response.status_code == 200 and "Tick at least one item first." in response.content.decode()
    assert ReviewItem.objects.filter(status=ItemStatus.OPEN).count() == 3


def test_an_outsider_cannot_accept_recommendations_of_items_they_do_not_see(
    review: Any, web_as: Any, outsider: Any
) -> None:
    client = web_as(outsider)
    for action in ("accept-ticked", "accept-page", "each"):
        response = _post(
            client,
            action=action,
            shown=_shown(review),
            items=_shown(review),
            **{f"decision-{_shown(review)[0]}": "certify"},
        )
        assert response.status_code == 404
    assert ReviewItem.objects.filter(status=ItemStatus.OPEN).count() == 3
    assert not AuditEvent.objects.filter(action="review_item.decided").exists()


def test_the_review_page_and_its_refused_submit_run_a_fixed_number_of_queries(
    review: Any, web_as: Any, make_integration: Any, make_grant: Any, catalog: Any, make_definition: Any, launched: Any
) -> None:
    client = web_as(review["alice"])

    def count(send: Any) -> int:
        send()
        with CaptureQueriesContext(connection) as queries:
            send()
        return len(queries)

    def refused(campaign_id: int) -> Any:
        shown = list(ReviewItem.objects.filter(campaign_id=campaign_id).values_list("pk", flat=True))
        response = _post(client, action="accept-ticked", shown=shown)
        assert response.status_code == 200
        return response

    small = review["campaign"].pk
    page_small = count(lambda: client.get(f"/campaigns/review/?campaign={small}"))
    refused_small = count(lambda: refused(small))
    for _ in range(8):
        other = make_integration(review["alice"], technical_owner=review["bot"].technical_owner)
        for name in ("read", "write", "admin"):
            make_grant(other, catalog[name])
    big = launched(make_definition(name="big")).pk
    assert ReviewItem.objects.filter(campaign_id=big).count() == 27
    assert count(lambda: client.get(f"/campaigns/review/?campaign={big}")) == page_small
    assert count(lambda: refused(big)) == refused_small
