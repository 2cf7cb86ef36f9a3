"""An error response means nothing changed: every write request — API,
form or any other page — is one transaction, and a 4xx or 5xx rolls all of it back, including
the emails and background tasks it would have announced. A retried request with the same
Idempotency-Key after a refusal creates nothing either."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from django.urls import reverse
from django_q.models import OrmQ

from governance.models import ApiToken, AuditEvent, OutboundEmail, User
from governance.roles import Role
from inventory import services
from inventory.models import Integration, OwnershipTransfer, Scope
from tests.inventory.conftest import form_data

pytestmark = pytest.mark.django_db

REGISTRATION = {"name": "Deal desk copilot", "kind": "agent", "purpose": "Prepares deal summaries."}


def _nothing_registered() -> None:
    assert not Integration.objects.exists()
    assert not OwnershipTransfer.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="integration.").exists()
    assert not OutboundEmail.objects.exists()


def test_a_refused_submission_at_registration_leaves_no_draft(
    owner: User, make_user: Any, token_client: Any, catalog: dict[str, Scope]
) -> None:
    bob = make_user("bob", Role.BUSINESS_USER)
    # Submitting needs a scope: the registration is refused as a whole, the proposal to bob too.
    response = token_client(owner).post(
        "/api/v1/integrations/", {**REGISTRATION, "backup_owner": bob.username, "submit": True}, format="json"
    )
    assert response.status_code in (400, 422), response.content  # input refused as invalid or unprocessable
    assert response["Content-Type"] == "application/problem+json"
    assert "requested_scopes" in response.json()["errors"]
    _nothing_registered()


@pytest.mark.django_db(transaction=True)
def test_the_same_key_sent_three_times_after_a_refusal_creates_nothing(
    owner: User, make_user: Any, token_client: Any, catalog: dict[str, Scope]
) -> None:
    """Real commits (a transactional test): the key's claim commits on its own, the request's
    writes with its answer; a refused request keeps neither, so the fixed request still runs."""
    bob = make_user("bob", Role.BUSINESS_USER)
    client = token_client(owner)
    body = {**REGISTRATION, "business_owner": bob.username, "submit": True}
    for _ in range(3):
        response = client.post("/api/v1/integrations/", body, format="json", HTTP_IDEMPOTENCY_KEY="CHG0042")
        assert response.status_code in (400, 422), response.content
    _nothing_registered()
    assert not OrmQ.objects.exists()  # no delivery task was enqueued for the rolled-back emails
    fixed = {**body, "requested_scopes": ["msgraph:User.Read"]}
    first = client.post("/api/v1/integrations/", fixed, format="json", HTTP_IDEMPOTENCY_KEY="CHG0043")
    again = client.post("/api/v1/integrations/", fixed, format="json", HTTP_IDEMPOTENCY_KEY="CHG0043")
    assert first.status_code == again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert Integration.objects.count() == 1 and OwnershipTransfer.objects.count() == 1


def test_a_change_refused_half_way_changes_nothing(
    owner: User, make_user: Any, make_integration: Any, api_as: Any
) -> None:
    """The name change is applied before the owner proposal is found to conflict: the 409 takes
    the name change back with it."""
    bob, carol = make_user("bob", Role.BUSINESS_USER), make_user("carol", Role.BUSINESS_USER)
    integ = make_integration(owner)
    services.ownership_transfer_propose(actor=owner, integration=integ, to_user=carol, role="backup_owner")
    response = api_as(owner).patch(
        f"/api/v1/integrations/{integ.pk}/", {"name": "Renamed", "backup_owner": bob.username}, format="json"
    )
    assert response.status_code == 409, response.content
    assert "backup_owner" in response.json()["errors"]
    integ.refresh_from_db()
    assert integ.name == "Notes bot"
    assert not AuditEvent.objects.filter(action="integration.changed").exists()
    assert list(OwnershipTransfer.objects.values_list("to_user__username", flat=True)) == ["carol"]


def _owner_as_the_form_shows_it(page: Any) -> str:
    """The business owner field's value as the page renders it (sent back unchanged)."""
    return str(page.context["form"]["business_owner"].value())


def test_the_registration_form_refused_at_submission_leaves_no_draft(
    owner: User, web_as: Any, catalog: dict[str, Scope]
) -> None:
    client = web_as(owner)
    business_owner = _owner_as_the_form_shows_it(client.get(reverse("inventory:create")))
    data = form_data(business_owner, action="submit")  # without a scope: refused by integration_submit
    response = client.post(reverse("inventory:create"), data)
    assert response.status_code == 400
    assert "Pick at least one scope" in response.content.decode()
    _nothing_registered()


def test_the_edit_form_refused_at_submission_keeps_the_old_values(
    owner: User, web_as: Any, make_integration: Any
) -> None:
    integ = make_integration(owner, scopes=())
    client = web_as(owner)
    page = client.get(reverse("inventory:edit", args=[integ.pk]))
    data = form_data(_owner_as_the_form_shows_it(page), name="Renamed draft", action="submit")
    response = client.post(reverse("inventory:edit", args=[integ.pk]), data)
    assert "Pick at least one scope" in response.content.decode()
    assert response.status_code == 400
    integ.refresh_from_db()
    assert integ.name == "Notes bot" and integ.status == "draft"
    assert not AuditEvent.objects.filter(action="integration.changed").exists()


@override_settings(ROOT_URLCONF="tests.governance.urls_writes", DEBUG=False)
def test_a_server_error_after_a_committed_service_rolls_it_back(owner: User, api_as: Any) -> None:
    client = api_as(owner)
    client.raise_request_exception = False
    response = client.post("/api/v1/test-write-bug/", {}, format="json")
    assert response.status_code == 500 and response["Content-Type"] == "application/problem+json"
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.filter(action="api_token.issued").exists()


@override_settings(ROOT_URLCONF="tests.governance.urls_writes", DEBUG=False)
def test_any_error_response_after_a_write_rolls_it_back(owner: User, api_as: Any, web_as: Any) -> None:
    assert api_as(owner).post("/api/v1/test-write-refuse/", {}, format="json").status_code == 403
    assert web_as(owner).post("/test-write-refuse/").status_code == 400
    assert not ApiToken.objects.exists()
    # A success commits as before.
    assert web_as(owner).post("/test-write-redirect/").status_code == 302
    assert ApiToken.objects.count() == 1
    # Sign-in paths are left out: a lockout answers 429, yet its counters and audit must stay.
    assert web_as(owner).post("/accounts/login/test-refusal/").status_code == 429
    assert ApiToken.objects.count() == 2
