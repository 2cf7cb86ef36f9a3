"""The inventory pages: registration form (errors next to fields, nothing typed lost), list
(filters, fixed queries, CSV), detail, catalog, home panels."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory.models import Integration, Scope

pytestmark = pytest.mark.django_db


def _form_data(catalog: dict[str, Scope], **over: Any) -> dict[str, Any]:
    data = {
        "name": "Deal desk copilot",
        "kind": "agent",
        "purpose": "Prepares deal summaries.",
        "vendor": "",
        "environment": "production",
        "ticket_ref": "",
        "tags": "sales, pilot",
        "business_owner": "",
        "technical_owner": "",
        "backup_owner": "",
        "autonomy": "human_in_loop",
        "workload_identity": "",
        "requested_scopes": [str(catalog["msgraph:Mail.Read"].pk)],
        "data_classifications": ["confidential"],
        "cred-TOTAL_FORMS": "1",
        "cred-INITIAL_FORMS": "0",
        "cred-MIN_NUM_FORMS": "0",
        "cred-MAX_NUM_FORMS": "1000",
        "cred-0-type": "api_key",
        "cred-0-identifier": "deal-desk-key-01",
        "cred-0-created_at": "",
        "cred-0-expires_at": "",
        "cred-0-last_rotated_at": "",
        "action": "draft",
    }
    data.update(over)
    return data


def test_validation_errors_keep_every_input(owner: Any, web_as: Any, catalog: dict[str, Scope]) -> None:
    client = web_as(owner)
    data = _form_data(
        catalog,
        business_owner=owner.username,
        kind="",
        **{"cred-0-identifier": "ghp_16C7e42F292c6912E7710c838347Ae178B4a"},
    )
    response = client.post(reverse("inventory:create"), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'value="Deal desk copilot"' in html
    assert "Prepares deal summaries." in html
    assert f'value="{catalog["msgraph:Mail.Read"].pk}" id="scope-{catalog["msgraph:Mail.Read"].pk}" checked' in html
    assert 'value="confidential"' in html and "checked" in html
    # The refused secret is neither stored nor sent back in the page; the rest is kept.
    assert "ghp_16C7e42F292c6912E7710c838347Ae178B4a" not in html
    assert 'value="api_key" selected' in html
    assert 'id="id_cred-0-identifier-error"' in html and "GitHub token" in html
    assert 'id="id_kind-error"' in html
    assert 'aria-invalid="true"' in html
    assert not Integration.objects.exists()


def test_owner_saves_a_draft_then_submits(owner: Any, web_as: Any, catalog: dict[str, Scope]) -> None:
    client = web_as(owner)
    response = client.post(reverse("inventory:create"), _form_data(catalog, business_owner=owner.username))
    assert response.status_code == 302
    integ = Integration.objects.get()
    assert integ.status == "draft" and integ.tags == ["sales", "pilot"]
    assert list(integ.credentials.values_list("identifier", flat=True)) == ["deal-desk-key-01"]
    client.post(reverse("inventory:submit", args=[integ.pk]))
    integ.refresh_from_db()
    assert integ.status == "pending"
    page = client.get(reverse("inventory:detail", args=[integ.pk])).content.decode()
    assert "Pending approval" in page and "confidential_data" in page


def test_form_submit_button_registers_pending(owner: Any, web_as: Any, catalog: dict[str, Scope]) -> None:
    response = web_as(owner).post(
        reverse("inventory:create"), _form_data(catalog, business_owner=owner.username, action="submit")
    )
    assert response.status_code == 302
    assert Integration.objects.get().status == "pending"


def test_list_page_runs_fixed_queries_at_5_and_50(
    owner: Any, reviewer: Any, make_integration: Any, web_as: Any
) -> None:
    client = web_as(reviewer)
    for n in range(5):
        make_integration(owner, name=f"I{n:02}", credentials=[{"type": "api_key", "identifier": f"k{n}"}])
    client.get(reverse("inventory:list"))
    with CaptureQueriesContext(connection) as small:
        response = client.get(reverse("inventory:list"), {"page_size": 50})
    assert response.content.decode().count('href="/inventory/') >= 5
    for n in range(5, 50):
        make_integration(owner, name=f"I{n:02}", credentials=[{"type": "api_key", "identifier": f"k{n}"}])
    with CaptureQueriesContext(connection) as large:
        response = client.get(reverse("inventory:list"))
    assert "I24" in response.content.decode()
    assert len(large.captured_queries) == len(small.captured_queries), [q["sql"] for q in large.captured_queries]


def test_list_page_filters_and_csv(owner: Any, outsider: Any, make_integration: Any, web_as: Any) -> None:
    make_integration(owner, name="Alpha", data_classifications=["restricted"])
    make_integration(owner, name="Beta", scopes=("hrdb:admin",))
    make_integration(outsider, name="Gamma")
    client = web_as(owner)
    html = client.get(reverse("inventory:list"), {"data_classification": "restricted"}).content.decode()
    assert "Alpha" in html and "Beta" not in html and "Gamma" not in html
    html = client.get(reverse("inventory:list"), {"scope": "hrdb:admin"}).content.decode()
    assert "Beta" in html and "Alpha" not in html
    response = client.get(reverse("inventory:list"), {"format": "csv"})
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0].startswith("id,name,kind")
    assert "Alpha" in body and "Beta" in body and "Gamma" not in body


def test_detail_shows_chain_both_ways_and_timeline(owner: Any, make_integration: Any, web_as: Any) -> None:
    hr = make_integration(owner, name="HR flow", scopes=("hrdb:compensation.read",))
    assistant = make_integration(owner, name="Assistant", invokes=[hr])
    html = web_as(owner).get(reverse("inventory:detail", args=[assistant.pk])).content.decode()
    assert "HR flow" in html and "hrdb:compensation.read" in html and "chain_reaches_sensitive_data" in html
    assert "integration.registered" in html
    html = web_as(owner).get(reverse("inventory:detail", args=[hr.pk])).content.decode()
    assert "Assistant" in html  # what calls it


def test_iam_admin_keeps_the_catalog_in_the_portal(iam_admin: Any, owner: Any, web_as: Any, catalog: Any) -> None:
    client = web_as(owner)
    assert client.get(reverse("inventory:catalog")).status_code == 200
    assert client.get(reverse("inventory:system-create")).status_code == 403
    client = web_as(iam_admin)
    r = client.post(reverse("inventory:system-create"), {"code": "slack", "name": "Slack", "description": ""})
    assert r.status_code == 302
    from inventory.models import ResourceSystem

    slack = ResourceSystem.objects.get(code="slack")
    r = client.post(
        reverse("inventory:scope-create", args=[slack.pk]),
        {"name": "chat:write", "description": "Post", "sensitivity": "medium", "access": "write", "is_active": "on"},
    )
    assert r.status_code == 302
    assert "slack:chat:write" in client.get(reverse("inventory:catalog")).content.decode()


def test_a_catalog_change_the_service_refuses_comes_back_next_to_the_field_input_kept(
    iam_admin: Any, web_as: Any, catalog: dict[str, Scope]
) -> None:
    msgraph = catalog["msgraph:User.Read"].system
    response = web_as(iam_admin).post(
        reverse("inventory:system-edit", args=[msgraph.pk]),
        {"code": "graph", "name": "Graph renamed", "description": "Typed here"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="id_code-error"' in html and "cannot change" in html
    assert 'value="graph"' in html and 'value="Graph renamed"' in html and "Typed here" in html
    msgraph.refresh_from_db()
    assert (msgraph.code, msgraph.name) == ("msgraph", "Microsoft Graph")


def test_who_may_not_save_a_form_gets_a_403_whatever_they_post(
    owner: Any, reviewer: Any, make_integration: Any, web_as: Any, catalog: dict[str, Scope]
) -> None:
    integ = make_integration(owner)
    client = web_as(reviewer)
    edit = reverse("inventory:edit", args=[integ.pk])
    valid = _form_data(catalog, business_owner=owner.username, name="Renamed")
    assert client.post(edit, valid).status_code == 403  # refused by the service
    assert client.post(edit, {**valid, "kind": ""}).status_code == 403  # an invalid form is not shown either
    integ.refresh_from_db()
    assert integ.name == "Notes bot"
    owner_client = web_as(owner)
    system = {"code": "crm", "name": "CRM", "description": ""}
    assert owner_client.post(reverse("inventory:system-create"), system).status_code == 403
    assert owner_client.post(reverse("inventory:system-create"), {**system, "code": ""}).status_code == 403
    scope = {"name": "read", "description": "", "sensitivity": "low", "access": "read", "is_active": "on"}
    msgraph = catalog["msgraph:User.Read"].system
    assert owner_client.post(reverse("inventory:scope-create", args=[msgraph.pk]), scope).status_code == 403
    from inventory.models import ResourceSystem

    assert not ResourceSystem.objects.filter(code="crm").exists()
    assert not Scope.objects.filter(code="msgraph:read").exists()


def test_home_shows_my_integrations_and_drafts(owner: Any, make_integration: Any, web_as: Any) -> None:
    make_integration(owner, name="My draft")
    html = web_as(owner).get("/").content.decode()
    assert "Your AI integrations" in html and "My draft" in html


def test_suspend_from_the_page_needs_a_reason(owner: Any, make_integration: Any, web_as: Any) -> None:
    integ = make_integration(owner, submit=True)
    client = web_as(owner)
    client.post(reverse("inventory:suspend", args=[integ.pk]), {"reason": ""})
    integ.refresh_from_db()
    assert integ.status == "pending"
    client.post(reverse("inventory:suspend", args=[integ.pk]), {"reason": "Vendor breach"})
    integ.refresh_from_db()
    assert integ.status == "suspended"


def test_iam_admin_edits_anyones_integration_from_the_page(
    owner: Any, iam_admin: Any, make_integration: Any, web_as: Any, catalog: Any
) -> None:
    integ = make_integration(owner)
    client = web_as(iam_admin)
    assert client.get(reverse("inventory:edit", args=[integ.pk])).status_code == 200
    data = _form_data(
        catalog,
        business_owner=owner.username,
        name="Renamed by IAM",
        **{"requested_scopes": [str(catalog["msgraph:User.Read"].pk)]},
    )
    assert client.post(reverse("inventory:edit", args=[integ.pk]), data).status_code == 302
    integ.refresh_from_db()
    assert integ.name == "Renamed by IAM"
    from governance.models import AuditEvent

    event = AuditEvent.objects.get(action="integration.changed", target_id=str(integ.pk))
    assert event.after is not None
    assert event.actor_username == "admin" and event.after["name"] == "Renamed by IAM"


def test_orphan_work_list_and_transfer_pages_are_hidden_from_others(
    owner: Any, outsider: Any, make_user: Any, make_integration: Any, web_as: Any
) -> None:
    from inventory import services

    heir = make_user("heir", "business_user")
    integ = make_integration(owner)
    t = services.ownership_transfer_propose(actor=owner, integration=integ, to_user=heir)
    assert web_as(outsider).get(reverse("inventory:orphans")).status_code == 404
    assert web_as(outsider).get(reverse("inventory:transfer", args=[t.pk])).status_code == 404
    assert web_as(outsider).post(reverse("inventory:transfer", args=[t.pk]), {"decision": "accept"}).status_code == 404
    page = web_as(heir).get(reverse("inventory:transfer", args=[t.pk])).content.decode()
    assert "Accept" in page
    home = web_as(heir).get("/").content.decode()
    assert "Waiting for your answer" in home


def test_the_csv_export_lists_rows_in_the_pages_order_ties_included(
    owner: Any, make_integration: Any, web_as: Any
) -> None:
    # Equal sort values are broken by id in the sort's own direction, on the page and in the file.
    made = [make_integration(owner, name=f"Tie {n}") for n in range(4)]
    client = web_as(owner)
    for ordering in ("status", "-status"):
        html = client.get(reverse("inventory:list"), {"ordering": ordering}).content.decode()
        on_page = sorted(made, key=lambda integration: html.index(f"Tie {made.index(integration)}"))
        response = client.get(reverse("inventory:list"), {"ordering": ordering, "format": "csv"})
        lines = b"".join(response.streaming_content).decode().splitlines()[1:]
        in_file = [int(line.split(",")[0]) for line in lines]
        assert in_file == [integration.pk for integration in on_page]
        assert in_file == sorted(in_file, reverse=ordering.startswith("-"))
