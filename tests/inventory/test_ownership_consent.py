"""Ownership is accountability, so it takes consent: a business user who names someone else as
business, technical or backup owner proposes the role to them (an ownership transfer, with an
email) and it is theirs once they accept; the answer says what waits. IAM admins name business
users directly (audited); reviewers and auditors are always asked. Never a 500, never a partial
write."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from governance.models import AuditEvent, OutboundEmail, User
from governance.roles import Pool, Role
from inventory import services
from inventory.models import Integration, OwnershipTransfer
from tests.inventory.conftest import form_data

pytestmark = pytest.mark.django_db

BODY = {
    "name": "Deal desk copilot",
    "kind": "agent",
    "purpose": "Prepares deal summaries.",
    "requested_scopes": ["msgraph:User.Read"],
}


@pytest.fixture
def bob(make_user: Any) -> User:
    return make_user("bob", Role.BUSINESS_USER)


def _waiting(integration_id: int) -> list[tuple[str, str]]:
    return sorted(
        OwnershipTransfer.objects.filter(integration_id=integration_id, status="proposed").values_list(
            "role", "to_user__username"
        )
    )


def test_registering_for_someone_else_asks_them_and_keeps_you_owner_meanwhile(
    owner: User, bob: User, api_as: Any, catalog: Any
) -> None:
    response = api_as(owner).post("/api/v1/integrations/", {**BODY, "business_owner": "bob"}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["business_owner"] == "owner"
    assert [(t["role"], t["to_user"]) for t in data["pending_transfers"]] == [("business_owner", "bob")]
    assert _waiting(data["id"]) == [("business_owner", "bob")]
    email = OutboundEmail.objects.get(recipient=bob)
    assert "asked to own Deal desk copilot" in email.subject
    # Bob accepts: now the role is his.
    transfer = OwnershipTransfer.objects.get()
    accepted = api_as(bob).post(f"/api/v1/ownership-transfers/{transfer.pk}/accept/", {}, format="json")
    assert accepted.status_code == 200
    assert Integration.objects.get().business_owner == bob


def test_registering_and_submitting_for_someone_else_submits_once(
    owner: User, bob: User, api_as: Any, catalog: Any
) -> None:
    response = api_as(owner).post(
        "/api/v1/integrations/", {**BODY, "business_owner": "bob", "submit": True}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending"
    assert Integration.objects.count() == 1


def test_handing_the_integration_wholly_to_another_user_waits_for_their_consent(
    owner: User, bob: User, api_as: Any, make_integration: Any
) -> None:
    integ = make_integration(owner)
    # Naming yourself applies at once.
    mine = api_as(owner).patch(f"/api/v1/integrations/{integ.pk}/", {"technical_owner": "owner"}, format="json")
    assert mine.status_code == 200 and mine.json()["technical_owner"] == "owner"
    response = api_as(owner).patch(
        f"/api/v1/integrations/{integ.pk}/",
        {"business_owner": "bob", "technical_owner": "bob", "backup_owner": "bob"},
        format="json",
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["business_owner"], data["technical_owner"], data["backup_owner"]) == ("owner", "owner", None)
    assert {t["role"] for t in data["pending_transfers"]} == {"business_owner", "technical_owner", "backup_owner"}
    integ.refresh_from_db()
    assert integ.business_owner == integ.technical_owner == owner and integ.backup_owner is None
    # Asking again for what already waits changes nothing.
    again = api_as(owner).patch(f"/api/v1/integrations/{integ.pk}/", {"business_owner": "bob"}, format="json")
    assert again.status_code == 200 and OwnershipTransfer.objects.count() == 3
    for transfer in OwnershipTransfer.objects.all():
        services.ownership_transfer_accept(actor=bob, transfer=transfer)
    integ.refresh_from_db()
    assert integ.business_owner == integ.technical_owner == integ.backup_owner == bob


@pytest.mark.parametrize("role_names", [(Role.REVIEWER, Pool.IAM_REVIEWERS), (Role.AUDITOR,)])
def test_iam_admins_name_business_users_directly_but_reviewers_and_auditors_are_asked(
    role_names: tuple[str, ...],
    owner: User,
    bob: User,
    iam_admin: User,
    make_user: Any,
    api_as: Any,
    make_integration: Any,
) -> None:
    make_user("named", *role_names)
    integ = make_integration(owner)
    # A business user: directly, audited as the admin's change.
    direct = api_as(iam_admin).patch(f"/api/v1/integrations/{integ.pk}/", {"technical_owner": "bob"}, format="json")
    assert direct.status_code == 200 and direct.json()["technical_owner"] == "bob"
    event = AuditEvent.objects.get(action="integration.changed", target_id=str(integ.pk))
    assert event.actor_username == "admin" and event.after == {"technical_owner": "bob"}
    # A reviewer or an auditor: asked, even by an IAM admin.
    response = api_as(iam_admin).patch(f"/api/v1/integrations/{integ.pk}/", {"backup_owner": "named"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["backup_owner"] is None
    assert _waiting(integ.pk) == [("backup_owner", "named")]


def test_a_role_waiting_for_someone_else_is_a_409_naming_the_field(
    owner: User, bob: User, make_user: Any, api_as: Any, make_integration: Any
) -> None:
    carol = make_user("carol", Role.BUSINESS_USER)
    integ = make_integration(owner)
    services.ownership_transfer_propose(actor=owner, integration=integ, to_user=carol, role="technical_owner")
    response = api_as(owner).patch(f"/api/v1/integrations/{integ.pk}/", {"technical_owner": "bob"}, format="json")
    assert response.status_code == 409 and response["Content-Type"] == "application/problem+json"
    assert "technical_owner" in response.json()["errors"]
    assert _waiting(integ.pk) == [("technical_owner", "carol")]


def test_a_service_account_cannot_register_for_someone_else(
    bob: User, make_user: Any, token_client: Any, catalog: Any
) -> None:
    robot = make_user("servicenow", Role.BUSINESS_USER, is_service_account=True)
    response = token_client(robot).post("/api/v1/integrations/", {**BODY, "business_owner": "bob"}, format="json")
    assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
    assert "business_owner" in response.json()["errors"]
    assert not Integration.objects.exists() and not OwnershipTransfer.objects.exists()


def test_the_registration_form_asks_the_named_colleagues_and_says_so(
    owner: User, bob: User, web_as: Any, catalog: Any
) -> None:
    client = web_as(owner)
    data = form_data("owner", technical_owner="bob")
    response = client.post(reverse("inventory:create"), data, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "bob was asked to become the technical owner" in html
    integ = Integration.objects.get()
    assert integ.technical_owner is None and _waiting(integ.pk) == [("technical_owner", "bob")]
