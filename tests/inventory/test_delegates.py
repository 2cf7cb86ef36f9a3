"""Co-owners and delegates of one integration: an owner names a colleague who may then see,
change and renew that one integration, on the pages and the API alike (one visibility gate and
one permission gate reading the guardian object permission); only owners and IAM admins name or
remove them; every change is audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from governance.exceptions import NotAllowed, Unprocessable
from governance.models import AuditEvent
from governance.roles import Role
from inventory import permissions, selectors, services
from inventory.models import IntegrationUserObjectPermission

pytestmark = pytest.mark.django_db


@pytest.fixture
def colleague(make_user: Any) -> Any:
    return make_user("carol", Role.BUSINESS_USER)


def test_a_co_owner_sees_and_changes_that_one_integration_on_pages_and_api(
    owner: Any, colleague: Any, make_integration: Any, api_as: Any, web_as: Any
) -> None:
    shared = make_integration(owner, name="Shared bot")
    other = make_integration(owner, name="Private bot")
    api = api_as(colleague)
    assert api.get(f"/api/v1/integrations/{shared.pk}/").status_code == 404
    services.integration_delegate_add(actor=owner, integration=shared, person=colleague, reason="covering leave")
    assert IntegrationUserObjectPermission.objects.filter(
        user=colleague, content_object=shared, permission__codename="act_on_integration"
    ).exists()
    assert list(selectors.integrations_for(colleague)) == [shared]
    assert api.get(f"/api/v1/integrations/{other.pk}/").status_code == 404
    assert [row["id"] for row in api.get("/api/v1/integrations/").json()["results"]] == [shared.pk]
    assert (
        api.patch(f"/api/v1/integrations/{shared.pk}/", {"purpose": "Drafts notes."}, format="json").status_code == 200
    )
    shared.refresh_from_db()
    assert shared.purpose == "Drafts notes."
    page = web_as(colleague).get(reverse("inventory:detail", args=[shared.pk]))
    assert page.status_code == 200 and "Co-owners and delegates" in page.content.decode()
    event = AuditEvent.objects.get(action="integration.delegate_added", target_id=str(shared.pk))
    assert (
        event.actor_username == "owner"
        and (event.after or {}).get("delegate") == "carol"
        and event.reason == "covering leave"
    )


def test_only_owners_and_iam_admins_name_or_remove_co_owners(
    owner: Any, colleague: Any, outsider: Any, iam_admin: Any, make_integration: Any
) -> None:
    integration = make_integration(owner)
    with pytest.raises(NotAllowed):
        services.integration_delegate_add(actor=outsider, integration=integration, person=colleague)
    services.integration_delegate_add(actor=iam_admin, integration=integration, person=colleague)
    assert permissions.can_edit(colleague, integration)
    assert not permissions.can_manage_delegates(colleague, integration)
    with pytest.raises(NotAllowed):
        services.integration_delegate_add(actor=colleague, integration=integration, person=outsider)
    with pytest.raises(Unprocessable):
        services.integration_delegate_add(actor=owner, integration=integration, person=colleague)
    with pytest.raises(Unprocessable):
        services.integration_delegate_add(actor=owner, integration=integration, person=owner)


def test_removing_a_co_owner_hides_the_integration_again_and_is_audited(
    owner: Any, colleague: Any, make_integration: Any, api_as: Any
) -> None:
    integration = make_integration(owner)
    services.integration_delegate_add(actor=owner, integration=integration, person=colleague)
    services.integration_delegate_remove(actor=owner, integration=integration, person=colleague, reason="back")
    assert api_as(colleague).get(f"/api/v1/integrations/{integration.pk}/").status_code == 404
    assert not permissions.can_edit(colleague, integration)
    assert AuditEvent.objects.filter(action="integration.delegate_removed", target_id=str(integration.pk)).count() == 1
    with pytest.raises(Unprocessable):
        services.integration_delegate_remove(actor=owner, integration=integration, person=colleague)


def test_an_auditor_cannot_be_made_a_co_owner(owner: Any, auditor: Any, make_integration: Any) -> None:
    integration = make_integration(owner)
    with pytest.raises(Unprocessable):
        services.integration_delegate_add(actor=owner, integration=integration, person=auditor)
    assert not IntegrationUserObjectPermission.objects.exists()


def test_the_owner_adds_and_removes_a_co_owner_on_the_integration_page(
    owner: Any, colleague: Any, make_integration: Any, web_as: Any
) -> None:
    integration = make_integration(owner)
    client = web_as(owner)
    page = client.get(reverse("inventory:detail", args=[integration.pk])).content.decode()
    assert 'name="delegate-person"' in page
    response = client.post(
        reverse("inventory:delegate-add", args=[integration.pk]),
        {"delegate-person": "carol", "delegate-reason": "holiday cover"},
    )
    assert response.status_code == 302
    assert list(selectors.integration_delegates(integration)) == [colleague]
    client.post(reverse("inventory:delegate-remove", args=[integration.pk, colleague.pk]))
    assert list(selectors.integration_delegates(integration)) == []


def test_outsiders_get_404_on_the_co_owner_endpoints(
    owner: Any, colleague: Any, outsider: Any, make_integration: Any, web_as: Any
) -> None:
    integration = make_integration(owner)
    services.integration_delegate_add(actor=owner, integration=integration, person=colleague)
    client = web_as(outsider)
    add = client.post(reverse("inventory:delegate-add", args=[integration.pk]), {"delegate-person": "outsider"})
    remove = client.post(reverse("inventory:delegate-remove", args=[integration.pk, colleague.pk]))
    assert (add.status_code, remove.status_code) == (404, 404)
    assert list(selectors.integration_delegates(integration)) == [colleague]


def test_a_co_owner_who_tries_to_name_another_gets_403(
    owner: Any, colleague: Any, outsider: Any, make_integration: Any, web_as: Any
) -> None:
    integration = make_integration(owner)
    services.integration_delegate_add(actor=owner, integration=integration, person=colleague)
    response = web_as(colleague).post(
        reverse("inventory:delegate-add", args=[integration.pk]), {"delegate-person": "outsider"}
    )
    assert response.status_code == 403
    assert list(selectors.integration_delegates(integration)) == [colleague]
