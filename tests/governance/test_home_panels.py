"""What each role's home page answers ("what needs me now"), the personal API tokens made on it,
and the fixed number of queries of every home whatever the amount of work waiting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from approvals import services as approval_services
from approvals.models import AccessRequest, RequestStatus, StepAssignment
from governance.models import ApiToken, AuditEvent
from governance.services import api_token_issue, hash_token_key
from governance.services.tokens import PERSONAL_TOKENS_MAX
from inventory.models import Integration
from tests.governance.home_support import grant_expiring, person, register, seed_org

pytestmark = pytest.mark.django_db


@pytest.fixture
def org(roles: None) -> None:
    """The demo people, the demo scope catalog and the default workflows, without the demo's
    integrations (each test registers its own: much faster than the whole demo)."""
    seed_org()


def _home(client: Any, username: str) -> str:
    client.force_login(person(username))
    response = client.get("/")
    assert response.status_code == 200
    return str(response.content.decode())


def _panel(html: str, key: str) -> str:
    """The HTML of one home panel (up to the next panel)."""
    start = html.index(f'aria-labelledby="panel-{key}"')
    end = html.find('<section class="panel"', start)
    return html[start : end if end != -1 else len(html)]


# --- Business users: drafts once, theirs apart from their reports', what expires --------------


def test_alices_home_lists_each_draft_once(client: Any, org: None) -> None:
    alice = person("alice")
    drafts = [register(alice, name, submit=False) for name in ("Lead enrichment", "Clause checker")]
    register(alice, "Notes summariser", submit=True)
    panel = _panel(_home(client, "alice"), "inventory-mine")
    for draft in drafts:
        assert panel.count(f">{draft.name}<") == 1, draft.name
    assert panel.count(">Notes summariser<") == 1
    assert panel.index("Drafts to finish") < panel.index("Lead enrichment") < panel.index(">Yours<")


def test_managers_home_separates_his_own_from_his_reports(client: Any, org: None) -> None:
    mark, alice, bob = person("mark"), person("alice"), person("bob")
    register(mark, "Mark's forecast digest", submit=False)
    for owner, names in ((alice, ["Sales email assistant", "Deal scorer"]), (bob, ["Support triage bot"])):
        for name in names:
            integration = register(owner, name, submit=True)
            Integration.objects.filter(pk=integration.pk).update(backup_owner=mark)
    panel = _panel(_home(client, "mark"), "inventory-mine")
    yours, reports = panel.split("Your reports'</h3>")
    assert "Mark&#x27;s forecast digest" in yours
    for name in ("Sales email assistant", "Support triage bot"):
        assert name not in panel, name
    assert ">Alice Archer</a>: 2 integrations" in reports
    assert "/inventory/?owner=bob" in reports and ">Bob Baker</a>: 1 integration<" in reports


def test_expiring_soon_lists_grants_ending_within_thirty_days(client: Any, org: None) -> None:
    alice = person("alice")
    soon = register(alice, "Ticket digest", submit=True)
    later = register(alice, "Quarterly digest", submit=True)
    grant_expiring(soon, 9)
    grant_expiring(later, 60)
    bobs = register(person("bob"), "Bob's digest", submit=True)
    grant_expiring(bobs, 3)
    panel = _panel(_home(client, "alice"), "approvals-expiring")
    assert "Expiring soon" in panel
    assert "Ticket digest" in panel and f"/approvals/renew/{soon.pk}/" in panel
    assert "Quarterly digest" not in panel and "digest</a>" in panel
    assert "Bob" not in panel


def test_requesters_home_shows_requests_sent_back_first_and_those_decided_lately(client: Any, org: None) -> None:
    alice = person("alice")
    rita = person("rita")
    register(alice, "Sales email assistant", submit=True)
    sent_back = AccessRequest.objects.get(integration=register(alice, "Inbox sorter", submit=True))
    rejected = AccessRequest.objects.get(integration=register(alice, "Deal scorer", submit=True))
    for req, decision, comment in (
        (sent_back, "request_changes", "Say which channels it reads."),
        (rejected, "reject", "Duplicates the forecaster."),
    ):
        step = req.steps.get(status="active")
        approval_services.request_decide(actor=rita, request=req, decision=decision, comment=comment, step_id=step.pk)
    panel = _panel(_home(client, "alice"), "approvals-mine")
    assert panel.index("Inbox sorter") < panel.index("Sales email assistant")
    assert "Changes requested: your turn" in panel
    decided = panel.split("Decided recently</h3>")[1]
    assert "Deal scorer" in decided and "Rejected" in decided and "Duplicates the forecaster." in decided


def test_reviewers_home_shows_what_is_overdue_and_due_soon(client: Any, org: None) -> None:
    rita = person("rita")
    for name in ("Inbox sorter", "Deal scorer", "Ticket digest"):
        register(person("alice"), name, submit=True)
    mine = StepAssignment.objects.filter(user=rita, is_open=True).order_by("id")
    assert mine.count() == 3
    first, second = list(mine[:2])
    StepAssignment.objects.filter(pk=first.pk).update(due_at=timezone.now() - timedelta(hours=3))
    StepAssignment.objects.filter(pk=second.pk).update(due_at=timezone.now() + timedelta(hours=5))
    panel = _panel(_home(client, "rita"), "approvals-queue")
    assert "Waiting for your decision" in panel
    assert "1</strong> overdue" in panel and "1</strong> due within 24 hours" in panel
    assert "Overdue</strong> since" in panel
    assert f"/approvals/requests/{first.step.request_id}/" in panel
    assert "manage.py" not in _home(client, "rita")


def test_business_user_with_nothing_to_decide_gets_no_queue_panel(client: Any, org: None) -> None:
    assert 'aria-labelledby="panel-approvals-queue"' not in _home(client, "bob")


# --- Personal API tokens ----------------------------------------------------------------------


def test_a_token_made_on_the_home_page_is_shown_once_stored_hashed_audited_and_works(client: Any, people: None) -> None:
    rita = person("rita")
    client.force_login(rita)
    response = client.post("/account/api-tokens/", {"name": "Queue script", "expires_days": "30"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(user=rita, name="Queue script")
    html = response.content.decode()
    key = html.split('id="new-token" value="')[1].split('"')[0]
    assert key.startswith(token.prefix) and token.key_hash == hash_token_key(key)
    assert key not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    assert token.expires_at is not None and 29 <= (token.expires_at - timezone.now()).days <= 30
    event = AuditEvent.objects.get(action="api_token.issued", target_id=str(token.pk))
    assert event.actor_username == "rita"
    home = client.get("/").content.decode()
    assert token.prefix in home and key not in home
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/integrations/").status_code == 200


def test_a_token_needs_a_name_and_an_offered_lifetime(client: Any, people: None) -> None:
    client.force_login(person("alice"))
    for data in ({"name": " ", "expires_days": "30"}, {"name": "x", "expires_days": "0"}, {"name": "x"}):
        response = client.post("/account/api-tokens/", data, follow=True)
        assert response.redirect_chain[-1][0] == "/#panel-my-api-tokens"
    assert not ApiToken.objects.filter(user__username="alice").exists()
    assert (
        "Give the token a name"
        in client.post("/account/api-tokens/", {"name": "", "expires_days": "30"}, follow=True).content.decode()
    )


def test_a_person_holds_a_handful_of_usable_tokens_at_most(client: Any, people: None) -> None:
    alice = person("alice")
    for index in range(PERSONAL_TOKENS_MAX):
        api_token_issue(actor=alice, user=alice, name=f"t{index}")
    client.force_login(alice)
    response = client.post("/account/api-tokens/", {"name": "one more", "expires_days": "30"}, follow=True)
    assert "revoke one you no longer need" in response.content.decode()
    assert ApiToken.objects.filter(user=alice).count() == PERSONAL_TOKENS_MAX


def test_owner_revokes_their_token_and_it_stops_working(client: Any, people: None) -> None:
    alice = person("alice")
    token, key = api_token_issue(actor=alice, user=alice, name="laptop")
    client.force_login(alice)
    response = client.post(f"/account/api-tokens/{token.pk}/revoke/", follow=True)
    assert "revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="api_token.revoked", actor_username="alice").exists()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/integrations/").status_code == 401


def test_another_persons_token_cannot_be_revoked(client: Any, people: None) -> None:
    alice = person("alice")
    token, _key = api_token_issue(actor=alice, user=alice, name="laptop")
    for username in ("bob", "ivan"):
        client.force_login(person(username))
        assert client.post(f"/account/api-tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_token_pages_refuse_the_signed_out_the_auditor_and_a_get(client: Any, people: None) -> None:
    response = client.post("/account/api-tokens/", {"name": "x", "expires_days": "30"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(person("audrey"))
    assert client.post("/account/api-tokens/", {"name": "x", "expires_days": "30"}).status_code == 403
    assert "Create token" not in client.get("/").content.decode()
    client.force_login(person("alice"))
    assert client.get("/account/api-tokens/").status_code == 405
    assert not ApiToken.objects.exists()


# --- A fixed number of queries for every home ------------------------------------------------


def _home_queries(client: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/")
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _grow(round_name: str, count: int) -> None:
    """More of everything a home lists: drafts, integrations with grants ending soon, requests
    decided and sent back, steps waiting for the reviewers, their decisions, tokens."""
    alice, bob, rita = person("alice"), person("bob"), person("rita")
    for index in range(count):
        tag = f"{round_name}{index}"
        register(alice, f"Draft {tag}", submit=False)
        grant_expiring(register(alice, f"Expiring {tag}", submit=True), 5 + index)
        for owner in (alice, bob):
            req = AccessRequest.objects.get(integration=register(owner, f"Asked {owner.username} {tag}", submit=True))
            if index % 2:
                step = req.steps.get(status="active")
                approval_services.request_decide(
                    actor=rita, request=req, decision="reject", comment="Not needed.", step_id=step.pk
                )
        for holder in (alice, rita, person("ivan")):
            api_token_issue(actor=holder, user=holder, name=f"token {tag}")


def test_every_roles_home_runs_the_same_queries_for_one_item_as_for_many(client: Any, demo_org: None) -> None:
    homes = ("alice", "bob", "mark", "rita", "omar", "ivan", "audrey")
    _grow("a", 1)
    small = {}
    for username in homes:
        client.force_login(person(username))
        small[username] = _home_queries(client)
    _grow("b", 6)
    StepAssignment.objects.filter(is_open=True).update(due_at=timezone.now() - timedelta(hours=1))
    assert AccessRequest.objects.filter(status=RequestStatus.REJECTED).count() >= 3
    for username in homes:
        client.force_login(person(username))
        assert _home_queries(client) == small[username], username
