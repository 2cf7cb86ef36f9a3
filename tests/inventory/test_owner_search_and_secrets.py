"""The integration form as a business user meets it: owners are chosen in a search field (their
colleagues suggested, others found by typing), never from a list of every account; and a value
refused because it looks like a secret is not sent back in the re-rendered page, while
everything else typed is kept."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance.models import User
from governance.roles import Role
from inventory.models import Integration, OwnershipTransfer, Scope

pytestmark = pytest.mark.django_db

GITHUB_TOKEN = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"


def _form(owner: User, catalog: dict[str, Scope], **over: Any) -> dict[str, Any]:
    return {
        "name": "Deal desk copilot",
        "kind": "agent",
        "purpose": "Prepares deal summaries.",
        "vendor": "Acme AI",
        "environment": "production",
        "autonomy": "human_in_loop",
        "business_owner": owner.username,
        "requested_scopes": [str(catalog["msgraph:Mail.Read"].pk)],
        "cred-TOTAL_FORMS": "2",
        "cred-INITIAL_FORMS": "0",
        "cred-0-type": "api_key",
        "cred-0-identifier": GITHUB_TOKEN,
        "cred-1-type": "oauth_client",
        "cred-1-identifier": "deal-desk-client",
        "action": "draft",
        **over,
    }


def test_a_refused_secret_looking_credential_is_not_sent_back(
    owner: User, web_as: Any, catalog: dict[str, Scope]
) -> None:
    response = web_as(owner).post(reverse("inventory:create"), _form(owner, catalog))
    assert response.status_code == 400
    html = response.content.decode()
    assert GITHUB_TOKEN not in html
    assert 'id="id_cred-0-identifier-error"' in html and "GitHub token" in html
    # Everything else typed is kept: the other credential, its type, the rest of the form.
    assert 'value="deal-desk-client"' in html and 'value="api_key" selected' in html
    assert 'value="Deal desk copilot"' in html and 'value="Acme AI"' in html
    assert not Integration.objects.exists()


def test_any_refused_secret_looking_field_is_blanked_and_only_that_one(
    owner: User, web_as: Any, catalog: dict[str, Scope]
) -> None:
    data = _form(owner, catalog, vendor=AWS_KEY, ticket_ref="CHG0042", **{"cred-0-identifier": "deal-desk-key"})
    html = web_as(owner).post(reverse("inventory:create"), data).content.decode()
    assert AWS_KEY not in html and 'id="id_vendor-error"' in html
    assert 'value="CHG0042"' in html and 'value="deal-desk-key"' in html


def test_owners_are_chosen_in_a_search_field_not_from_every_account(
    make_user: Any, web_as: Any, catalog: dict[str, Scope]
) -> None:
    manager = make_user("mark", Role.BUSINESS_USER)
    alice = make_user("alice", Role.BUSINESS_USER, manager=manager)
    make_user("bob", Role.BUSINESS_USER, manager=manager)  # a peer: same manager
    strangers = [make_user(f"stranger{n:02}", Role.BUSINESS_USER) for n in range(30)]
    html = web_as(alice).get(reverse("inventory:create")).content.decode()
    assert '<select name="business_owner"' not in html and '<select name="backup_owner"' not in html
    for field in ("business_owner", "technical_owner", "backup_owner"):
        assert f'name="{field}"' in html and f'<label for="id_{field}">' in html
    assert 'list="people-options"' in html and 'value="alice"' in html  # prefilled with you
    # The suggestions are her colleagues, not the directory.
    assert '<option value="mark">' in html and '<option value="bob">' in html
    assert not any(s.username in html for s in strangers)


def test_the_people_search_answers_a_few_matches_with_names_only(make_user: Any, auditor: User, client: Any) -> None:
    alice = make_user("alice", Role.BUSINESS_USER)
    for n in range(15):
        make_user(f"dev{n:02}", Role.BUSINESS_USER)
    make_user("devbot", Role.BUSINESS_USER, is_service_account=True)
    make_user("devgone", Role.BUSINESS_USER, is_active=False)
    client.force_login(alice)
    found = client.get(reverse("inventory:people"), {"q": "dev"}).json()["results"]
    assert len(found) == 10 and all(set(p) == {"username", "label"} for p in found)
    assert not {"devbot", "devgone"} & {p["username"] for p in found}
    assert client.get(reverse("inventory:people"), {"q": "d"}).json()["results"] == []
    client.force_login(auditor)  # read-only: names nobody
    assert client.get(reverse("inventory:people"), {"q": "dev"}).json()["results"] == []
    client.logout()
    assert client.get(reverse("inventory:people"), {"q": "dev"}).status_code == 302


def test_the_people_search_runs_a_fixed_number_of_queries(make_user: Any, client: Any) -> None:
    alice = make_user("alice", Role.BUSINESS_USER)
    client.force_login(alice)

    def queries(q: str) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            found = client.get(reverse("inventory:people"), {"q": q}).json()["results"]
        return len(found), len(captured)

    make_user("zed00", Role.BUSINESS_USER)
    one, few = queries("zed")
    for n in range(1, 12):
        make_user(f"zed{n:02}", Role.BUSINESS_USER)
    many, more = queries("zed")
    assert (one, many) == (1, 10) and few == more


def test_an_unknown_username_is_an_error_next_to_the_field(owner: User, web_as: Any, catalog: dict[str, Scope]) -> None:
    data = _form(owner, catalog, backup_owner="nobody", **{"cred-0-identifier": "deal-desk-key"})
    response = web_as(owner).post(reverse("inventory:create"), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_backup_owner-error"' in html and "No active person has the username" in html
    assert 'id="id_backup_owner"' in html and 'aria-invalid="true"' in html


def test_a_transfer_is_proposed_by_username_from_the_page(
    owner: User, make_user: Any, make_integration: Any, web_as: Any
) -> None:
    heir = make_user("heir", Role.BUSINESS_USER)
    integ = make_integration(owner)
    page = web_as(owner).get(reverse("inventory:detail", args=[integ.pk])).content.decode()
    assert '<select name="to_user"' not in page and 'list="people-options"' in page
    response = web_as(owner).post(
        reverse("inventory:transfer-propose", args=[integ.pk]), {"to_user": "heir", "role": "business_owner"}
    )
    assert response.status_code == 302
    assert OwnershipTransfer.objects.get().to_user == heir
