"""The catalog's runtime settings: a scope's just-in-time eligibility (page and API), a resource
system's token audience (unique) and signing algorithm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse

from governance.exceptions import NotAllowed, ValidationFailed
from governance.models import AuditEvent, User
from inventory import services
from inventory.models import ResourceSystem, Scope

pytestmark = pytest.mark.django_db


def test_iam_admin_marks_a_scope_jit_eligible_on_the_form(
    iam_admin: User, owner: User, web_as: Any, catalog: dict[str, Scope]
) -> None:
    scope = catalog["msgraph:Mail.Read"]
    client = web_as(iam_admin)
    response = client.post(
        reverse("inventory:scope-edit", args=[scope.pk]),
        {"description": "Read mail", "sensitivity": "high", "access": "read", "is_active": "on", "jit_eligible": "on"},
    )
    assert response.status_code == 302
    scope.refresh_from_db()
    assert scope.jit_eligible
    event = AuditEvent.objects.filter(action="scope.changed").latest("id")
    assert (event.before or {})["jit_eligible"] is False and (event.after or {})["jit_eligible"] is True
    assert "JIT eligible" in web_as(owner).get(reverse("inventory:catalog")).content.decode()


def test_scope_api_reads_and_changes_jit_eligibility(
    iam_admin: User, owner: User, api_as: Callable[[User], Any], api_client: Any, catalog: dict[str, Scope]
) -> None:
    url = "/api/v1/scopes/msgraph:Mail.Read/"
    assert api_as(owner).get(url).json()["jit_eligible"] is False
    response = api_as(iam_admin).patch(url, {"jit_eligible": True}, format="json")
    assert response.status_code == 200 and response.json()["jit_eligible"] is True
    assert response.json()["sensitivity"] == "high", "a partial change keeps the rest"
    assert api_as(owner).patch(url, {"jit_eligible": False}, format="json").status_code == 403
    assert api_client.patch(url, {"jit_eligible": False}, format="json").status_code in (401, 403)
    assert api_as(iam_admin).patch("/api/v1/scopes/nope:x/", {"jit_eligible": True}, format="json").status_code == 404
    bad = api_as(iam_admin).patch(url, {"jit_eligible": "yes"}, format="json")
    assert bad.status_code == 400 and "jit_eligible" in bad.json()["errors"]
    assert api_as(iam_admin).put(url, {"jit_eligible": True}, format="json").status_code == 405
    assert Scope.objects.get(code="msgraph:Mail.Read").jit_eligible


def test_system_form_sets_audience_and_algorithm(iam_admin: User, web_as: Any, catalog: dict[str, Scope]) -> None:
    graph = ResourceSystem.objects.get(code="msgraph")
    client = web_as(iam_admin)
    response = client.post(
        reverse("inventory:system-edit", args=[graph.pk]),
        {
            "code": "msgraph",
            "name": "Microsoft Graph",
            "audience": " https://graph.example.com ",
            "token_algorithm": "RS256",
        },
    )
    assert response.status_code == 302
    graph.refresh_from_db()
    assert (graph.audience, graph.token_algorithm, graph.token_audience) == (
        "https://graph.example.com",
        "RS256",
        "https://graph.example.com",
    )
    page = client.get(reverse("inventory:catalog")).content.decode()
    assert "https://graph.example.com" in page and "urn:ai-governance:system:hrdb" in page
    form = client.get(reverse("inventory:system-edit", args=[graph.pk])).content.decode()
    assert 'value="https://graph.example.com"' in form


def test_an_audience_names_one_system(iam_admin: User, web_as: Any, catalog: dict[str, Scope]) -> None:
    graph = ResourceSystem.objects.get(code="msgraph")
    hr = ResourceSystem.objects.get(code="hrdb")
    services.resource_system_save(actor=iam_admin, system=graph, values={"audience": "https://api.example.com"})
    with pytest.raises(ValidationFailed) as taken:
        services.resource_system_save(actor=iam_admin, system=hr, values={"audience": "https://api.example.com"})
    assert taken.value.errors["audience"] == ["Microsoft Graph already uses this audience."]
    # Another system's default audience is taken too, and the portal's own is no system's.
    with pytest.raises(ValidationFailed, match="HR database already uses"):
        services.resource_system_save(
            actor=iam_admin, system=graph, values={"audience": "urn:ai-governance:system:hrdb"}
        )
    with pytest.raises(ValidationFailed, match="token endpoint"):
        services.resource_system_save(actor=iam_admin, system=hr, values={"audience": settings.RUNTIME_TOKEN_AUDIENCE})
    # A new system whose default audience another system took explicitly.
    services.resource_system_save(actor=iam_admin, system=hr, values={"audience": "urn:ai-governance:system:crm"})
    with pytest.raises(ValidationFailed, match="HR database already uses"):
        services.resource_system_save(actor=iam_admin, values={"code": "crm", "name": "CRM"})
    # Saving a system again with its own audience is fine.
    services.resource_system_save(actor=iam_admin, system=graph, values={"audience": "https://api.example.com"})
    response = web_as(iam_admin).post(
        reverse("inventory:system-edit", args=[hr.pk]),
        {"code": "hrdb", "name": "HR database", "audience": "https://api.example.com", "token_algorithm": "ES256"},
    )
    assert response.status_code == 200 and "already uses this audience" in response.content.decode()


def test_algorithm_is_one_the_portal_signs_and_only_iam_admins_change_it(
    iam_admin: User, owner: User, catalog: dict[str, Scope]
) -> None:
    graph = ResourceSystem.objects.get(code="msgraph")
    with pytest.raises(ValidationFailed) as refused:
        services.resource_system_save(actor=iam_admin, system=graph, values={"token_algorithm": "HS256"})
    assert "token_algorithm" in refused.value.errors
    with pytest.raises(NotAllowed):
        services.resource_system_save(actor=owner, system=graph, values={"token_algorithm": "RS256"})
    graph.refresh_from_db()
    assert graph.token_algorithm == "ES256"
