"""An integration's external app ids (how the identity providers name it), set through the
registration, the change form and the API, and what discovery shows on the integration's page:
the apps found at the providers and the findings' history in its timeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from governance.audit import audit_record
from governance.exceptions import Conflict, NotAllowed, ValidationFailed
from governance.models import AuditEvent, User
from inventory import services
from inventory.discovery.models import DiscoveredApp, DiscoveredConsent, Finding
from inventory.discovery.section import finding_url
from inventory.models import ExternalAppId, Integration

PROBLEM = "application/problem+json"
GOOGLE_CLIENT = "1234-abc.apps.googleusercontent.com"


@pytest.fixture
def register(db: Any) -> Callable[..., Integration]:
    def make(owner: User, name: str = "Meeting notes", ids: list[tuple[str, str]] | None = None) -> Integration:
        values: dict[str, Any] = {"name": name, "kind": "chatbot", "purpose": "Summarises meetings."}
        if ids is not None:
            values["external_app_ids"] = ids
        return services.integration_register(actor=owner, values={**values, "business_owner": owner})

    return make


def pairs(integration: Integration) -> list[tuple[str, str]]:
    return list(ExternalAppId.objects.filter(integration=integration).values_list("source", "app_key"))


def changes_of(integration: Integration) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action="integration.external_app_ids_changed", target_id=str(integration.pk)
        ).order_by("id")
    )


# --- The service ------------------------------------------------------------------------------


def test_an_owner_replaces_the_set_and_each_change_is_audited_with_before_and_after(
    owner: User, register: Callable[..., Integration]
) -> None:
    integration = register(owner)
    services.external_app_ids_set(actor=owner, integration=integration, ids=[("google", GOOGLE_CLIENT)])
    rows = services.external_app_ids_set(
        actor=owner, integration=integration, ids=[("slack", " A0123SLACK "), ("google", GOOGLE_CLIENT)]
    )
    assert [(row.source, row.app_key) for row in rows] == [("slack", "A0123SLACK"), ("google", GOOGLE_CLIENT)]
    assert sorted(pairs(integration)) == [("google", GOOGLE_CLIENT), ("slack", "A0123SLACK")]
    first, second = changes_of(integration)
    assert first.before == {"external_app_ids": []}
    assert first.after == {"external_app_ids": [f"google: {GOOGLE_CLIENT}"]}
    assert second.before == first.after
    assert second.after == {"external_app_ids": [f"google: {GOOGLE_CLIENT}", "slack: A0123SLACK"]}
    assert second.actor_username == owner.username and second.owner_username == owner.username


def test_the_same_set_again_changes_nothing_and_records_nothing(
    owner: User, register: Callable[..., Integration]
) -> None:
    integration = register(owner, ids=[("okta", "0oa1b2c3d4")])
    before = list(ExternalAppId.objects.filter(integration=integration).values_list("pk", flat=True))
    # Duplicates in the input count once.
    services.external_app_ids_set(actor=owner, integration=integration, ids=[("okta", "0oa1b2c3d4")] * 2)
    assert list(ExternalAppId.objects.filter(integration=integration).values_list("pk", flat=True)) == before
    assert len(changes_of(integration)) == 1  # the registration's


def test_an_app_key_another_integration_holds_is_refused_and_nothing_changes(
    owner: User, make_user: Callable[..., User], register: Callable[..., Integration]
) -> None:
    mine = register(owner, name="Mine", ids=[("slack", "A0001")])
    theirs = register(make_user("colleague", "business_user"), name="Theirs", ids=[("google", GOOGLE_CLIENT)])
    with pytest.raises(ValidationFailed) as refused:
        services.external_app_ids_set(actor=owner, integration=mine, ids=[("github", "42"), ("google", GOOGLE_CLIENT)])
    assert list(refused.value.errors) == ["external_app_ids"]
    # The owner may not see the other integration: it is not named.
    assert refused.value.errors["external_app_ids"] == [
        f"google: {GOOGLE_CLIENT} is already the external app id of another integration."
    ]
    assert pairs(mine) == [("slack", "A0001")] and pairs(theirs) == [("google", GOOGLE_CLIENT)]
    assert len(changes_of(mine)) == 1


def test_an_iam_admin_is_told_which_integration_holds_the_key(
    owner: User, iam_admin: User, register: Callable[..., Integration]
) -> None:
    holder = register(owner, name="Holder", ids=[("entra", "11111111-2222-3333-4444-555555555555")])
    other = register(owner, name="Other")
    with pytest.raises(ValidationFailed) as refused:
        services.external_app_ids_set(
            actor=iam_admin, integration=other, ids=[("entra", "11111111-2222-3333-4444-555555555555")]
        )
    assert f"Holder (#{holder.pk})" in refused.value.errors["external_app_ids"][0]


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (("azure", "abc"), "Unknown source 'azure'"),
        (("google", "   "), "Give the app key Google Workspace shows"),
        (("google", "x" * 201), "at most 200 characters"),
        (("google", "first\nsecond"), "one line"),
        (("slack", "A01\tB02"), "one line"),
        (("slack", "xoxb-1234567890-abcdefghij"), "Slack token"),
    ],
)
def test_a_malformed_pair_is_refused_on_the_field(
    owner: User, register: Callable[..., Integration], pair: tuple[str, str], message: str
) -> None:
    integration = register(owner)
    with pytest.raises(ValidationFailed) as refused:
        services.external_app_ids_set(actor=owner, integration=integration, ids=[("github", "42"), pair])
    assert list(refused.value.errors) == ["external_app_ids"]
    assert message in refused.value.errors["external_app_ids"][0]
    assert refused.value.errors["external_app_ids"][0].startswith("Item 2: ")
    assert pairs(integration) == [] and changes_of(integration) == []


def test_too_many_ids_are_refused(owner: User, register: Callable[..., Integration]) -> None:
    integration = register(owner)
    many = [("github", str(n)) for n in range(services.EXTERNAL_APP_IDS_MAX + 1)]
    with pytest.raises(ValidationFailed, match="At most"):
        services.external_app_ids_set(actor=owner, integration=integration, ids=many)


def test_only_owners_and_iam_admins_set_them_and_a_retired_integration_is_frozen(
    owner: User, outsider: User, reviewer: User, iam_admin: User, register: Callable[..., Integration]
) -> None:
    integration = register(owner)
    for stranger in (outsider, reviewer):
        with pytest.raises(NotAllowed):
            services.external_app_ids_set(actor=stranger, integration=integration, ids=[("github", "7")])
    services.external_app_ids_set(actor=iam_admin, integration=integration, ids=[("github", "7")])
    assert changes_of(integration)[0].actor_username == iam_admin.username
    services.integration_retire(actor=owner, integration=integration, reason="Replaced")
    with pytest.raises(Conflict):
        services.external_app_ids_set(actor=owner, integration=integration, ids=[])
    assert pairs(integration) == [("github", "7")]


def test_registration_records_them_in_its_transaction(owner: User, register: Callable[..., Integration]) -> None:
    integration = register(owner, ids=[("google", GOOGLE_CLIENT), ("github", "42")])
    assert sorted(pairs(integration)) == [("github", "42"), ("google", GOOGLE_CLIENT)]
    actions = list(
        AuditEvent.objects.filter(target_id=str(integration.pk), target_type="inventory.integration")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["integration.registered", "integration.external_app_ids_changed"]
    # A refused id leaves no integration behind.
    with pytest.raises(ValidationFailed):
        register(owner, name="Second", ids=[("google", GOOGLE_CLIENT)])
    assert not Integration.objects.filter(name="Second").exists()


def test_a_change_replaces_them_only_when_given(owner: User, register: Callable[..., Integration]) -> None:
    integration = register(owner, ids=[("github", "42")])
    services.integration_update(actor=owner, integration=integration, values={"vendor": "Acme"})
    assert pairs(integration) == [("github", "42")]
    services.integration_update(
        actor=owner, integration=integration, values={"vendor": "Acme AI", "external_app_ids": [("okta", "0oaX")]}
    )
    assert pairs(integration) == [("okta", "0oaX")]
    services.integration_update(actor=owner, integration=integration, values={"external_app_ids": []})
    assert pairs(integration) == []
    # A refused id undoes the whole change.
    other = register(owner, name="Other", ids=[("slack", "A9")])
    with pytest.raises(ValidationFailed):
        services.integration_update(
            actor=owner, integration=integration, values={"vendor": "Changed", "external_app_ids": [("slack", "A9")]}
        )
    integration.refresh_from_db()
    assert integration.vendor == "Acme AI" and pairs(other) == [("slack", "A9")]


# --- The form ---------------------------------------------------------------------------------


def form_data(owner: User, **over: Any) -> dict[str, Any]:
    return {
        "name": "Deal desk copilot",
        "kind": "agent",
        "purpose": "Prepares deal summaries.",
        "environment": "production",
        "autonomy": "human_in_loop",
        "business_owner": owner.username,
        "cred-TOTAL_FORMS": "0",
        "cred-INITIAL_FORMS": "0",
        "action": "draft",
        **over,
    }


def test_the_registration_form_takes_one_source_and_app_key_per_line(owner: User, web_as: Any) -> None:
    client = web_as(owner)
    typed = f"Google: {GOOGLE_CLIENT}\n\n  slack:A0123SLACK  \n"
    response = client.post(reverse("inventory:create"), form_data(owner, external_app_ids=typed))
    assert response.status_code == 302
    integration = Integration.objects.get(name="Deal desk copilot")
    assert sorted(pairs(integration)) == [("google", GOOGLE_CLIENT), ("slack", "A0123SLACK")]
    page = client.get(reverse("inventory:detail", args=[integration.pk])).content.decode()
    assert f"Google Workspace: <code>{GOOGLE_CLIENT}</code>" in page
    edit = client.get(reverse("inventory:edit", args=[integration.pk])).content.decode()
    assert f"google: {GOOGLE_CLIENT}\nslack: A0123SLACK</textarea>" in edit


def test_a_bad_line_comes_back_beside_the_field_with_the_text_as_typed(owner: User, web_as: Any) -> None:
    typed = f"google: {GOOGLE_CLIENT}\nazure = 42"
    response = web_as(owner).post(reverse("inventory:create"), form_data(owner, external_app_ids=typed))
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_external_app_ids-error"' in page and "Line 2: Write it as source: app key." in page
    assert f"google: {GOOGLE_CLIENT}\nazure = 42</textarea>" in page
    assert not Integration.objects.exists()


def test_a_key_another_integration_holds_comes_back_beside_the_field(
    owner: User, web_as: Any, register: Callable[..., Integration]
) -> None:
    register(owner, name="Holder", ids=[("github", "42")])
    response = web_as(owner).post(reverse("inventory:create"), form_data(owner, external_app_ids="GitHub: 42"))
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_external_app_ids-error"' in page and "github: 42 is already the external app id of Holder" in page
    assert "GitHub: 42</textarea>" in page
    assert not Integration.objects.filter(name="Deal desk copilot").exists()


def test_the_change_form_replaces_them(owner: User, web_as: Any, register: Callable[..., Integration]) -> None:
    integration = register(owner, ids=[("github", "42")])
    data = form_data(owner, name=integration.name, external_app_ids="okta: 0oa1")
    assert web_as(owner).post(reverse("inventory:edit", args=[integration.pk]), data).status_code == 302
    assert pairs(integration) == [("okta", "0oa1")]


# --- The API ----------------------------------------------------------------------------------


def test_the_api_registers_reads_and_replaces_them(owner: User, api_as: Any) -> None:
    api = api_as(owner)
    body = {
        "name": "Notes bot",
        "kind": "chatbot",
        "purpose": "Summarises meetings.",
        "external_app_ids": [{"source": "slack", "app_key": "A0123"}, {"source": "google", "app_key": GOOGLE_CLIENT}],
    }
    created = api.post("/api/v1/integrations/", body, format="json")
    assert created.status_code == 201, created.json()
    expected = [{"source": "google", "app_key": GOOGLE_CLIENT}, {"source": "slack", "app_key": "A0123"}]
    assert created.json()["external_app_ids"] == expected
    url = f"/api/v1/integrations/{created.json()['id']}/"
    assert api.get(url).json()["external_app_ids"] == expected
    changed = api.patch(url, {"external_app_ids": [{"source": "github", "app_key": "42"}]}, format="json")
    assert changed.status_code == 200 and changed.json()["external_app_ids"] == [{"source": "github", "app_key": "42"}]
    assert api.patch(url, {"purpose": "Still notes."}, format="json").json()["external_app_ids"] != []
    assert api.patch(url, {"external_app_ids": []}, format="json").json()["external_app_ids"] == []


@pytest.mark.parametrize(
    "item",
    [
        {"source": "azure", "app_key": "1"},
        {"source": "google", "app_key": ""},
        {"source": "google", "app_key": "a\nb"},
        {"source": "google", "app_key": "x" * 201},
        {"source": "google", "app_key": 42},
        {"source": "google"},
    ],
)
def test_the_api_refuses_a_malformed_id_with_problem_details(owner: User, api_as: Any, item: dict[str, Any]) -> None:
    body = {"name": "Notes bot", "kind": "chatbot", "purpose": "Notes.", "external_app_ids": [item]}
    response = api_as(owner).post("/api/v1/integrations/", body, format="json")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    # The field at fault, down to the item and its key (external_app_ids.0.app_key).
    assert [key.split(".")[0] for key in response.json()["errors"]] == ["external_app_ids"]
    assert not Integration.objects.exists()


def test_the_api_answers_422_for_a_key_another_integration_holds(
    owner: User, api_as: Any, register: Callable[..., Integration]
) -> None:
    holder = register(owner, name="Holder", ids=[("github", "42")])
    other = register(owner, name="Other")
    response = api_as(owner).patch(
        f"/api/v1/integrations/{other.pk}/",
        {"external_app_ids": [{"source": "github", "app_key": "42"}]},
        format="json",
    )
    assert response.status_code == 422 and response["Content-Type"] == PROBLEM
    assert response.json()["errors"] == {
        "external_app_ids": [f"github: 42 is already the external app id of Holder (#{holder.pk})."]
    }
    assert pairs(other) == []


def test_the_schema_documents_the_field_for_reading_and_writing(api_as: Any, iam_admin: User) -> None:
    schema = api_as(iam_admin).get("/api/v1/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    read = components["Integration"]["properties"]["external_app_ids"]
    assert read["readOnly"] is True and read["items"]["$ref"].endswith("/ExternalAppId")
    write = components["PatchedIntegrationWriteRequest"]["properties"]["external_app_ids"]
    assert write["maxItems"] == services.EXTERNAL_APP_IDS_MAX
    item = components[write["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(item["required"]) == {"source", "app_key"}
    assert "pattern" in item["properties"]["app_key"]
    assert "external_app_ids" in components["IntegrationCreateRequest"]["properties"]


def test_the_list_endpoint_reads_them_in_a_fixed_number_of_queries(
    owner: User, reviewer: User, api_as: Any, register: Callable[..., Integration]
) -> None:
    api = api_as(reviewer)

    def add(start: int, count: int) -> None:
        for n in range(start, start + count):
            register(owner, name=f"Bot {n}", ids=[("github", str(n)), ("slack", f"A{n}")])

    add(0, 2)
    api.get("/api/v1/integrations/")  # warm caches (roles)
    with CaptureQueriesContext(connection) as small:
        assert len(api.get("/api/v1/integrations/").json()["results"]) == 2
    add(2, 18)
    with CaptureQueriesContext(connection) as large:
        rows = api.get("/api/v1/integrations/").json()["results"]
    assert len(rows) == 20 and all(len(row["external_app_ids"]) == 2 for row in rows)
    assert len(large.captured_queries) == len(small.captured_queries)


# --- The integration's page: found at the identity providers, and the findings' history ----------


def discovered(integration: Integration | None, app_key: str, **values: Any) -> DiscoveredApp:
    fields: dict[str, Any] = {
        "source": "google",
        "name": f"App {app_key}",
        "people_count": 3,
        "integration": integration,
    }
    return DiscoveredApp.objects.create(app_key=app_key, **{**fields, **values})


def finding(app: DiscoveredApp | None, kind: str, **values: Any) -> Finding:
    fields: dict[str, Any] = {
        "source": app.source if app else "google",
        "app_key": app.app_key if app else "gone-key",
        "title": f"{kind} finding",
        "app": app,
    }
    return Finding.objects.create(kind=kind, **{**fields, **values})


def finding_event(actor: User, target: Finding, action: str, reason: str = "") -> None:
    with transaction.atomic():
        audit_record(actor=actor, action=action, target=target, after={"status": target.status}, reason=reason)


def test_the_section_lists_the_apps_found_and_their_open_findings(
    owner: User, iam_admin: User, web_as: Any, register: Callable[..., Integration]
) -> None:
    integration = register(owner, ids=[("google", GOOGLE_CLIENT), ("entra", "app-guid")])
    by_key = discovered(None, GOOGLE_CLIENT, name="Notes for Google", people_count=12)
    discovered(None, "sp-app-id", source="entra", alt_key="app-guid", name="Notes for Entra")
    discovered(integration, "linked-key", name="Notes linked", admin_consent=True, present=False)
    discovered(None, "unrelated", name="Someone else's app")
    drift = finding(by_key, "drift", integration=integration)
    finding(by_key, "shadow", closed_at=timezone.now(), status="resolved")
    stale = finding(None, "stale", integration=integration, title="Stale id gone-key")
    page = web_as(iam_admin).get(reverse("inventory:detail", args=[integration.pk])).content.decode()
    assert "Found at the identity providers" in page
    for name in ("Notes for Google", "Notes for Entra", "Notes linked"):
        assert name in page
    assert "Someone else" not in page
    assert "<td>12</td>" in page and "Everyone (admin consent), 3" in page and "No longer listed" in page
    assert f'href="{finding_url(drift.pk)}"' in page and f'href="{finding_url(stale.pk)}"' in page
    assert "Stale id gone-key" in page
    assert page.count("Shadow: not registered") == 0  # the closed finding is not listed
    assert finding_url(drift.pk) == f"/discovery/findings/{drift.pk}/"
    # The owner sees the same apps and findings, linked only where they may open the finding:
    # that of an app they consented to.
    own = web_as(owner).get(reverse("inventory:detail", args=[integration.pk])).content.decode()
    assert "Notes for Google" in own and "Drift: scopes beyond its grants" in own
    assert finding_url(drift.pk) not in own and finding_url(stale.pk) not in own
    DiscoveredConsent.objects.create(app=by_key, person_key=owner.email, person=owner)
    own = web_as(owner).get(reverse("inventory:detail", args=[integration.pk])).content.decode()
    assert f'href="{finding_url(drift.pk)}"' in own and finding_url(stale.pk) not in own


def test_no_section_without_external_ids_or_anything_found(
    owner: User, web_as: Any, register: Callable[..., Integration]
) -> None:
    integration = register(owner)
    page = web_as(owner).get(reverse("inventory:detail", args=[integration.pk])).content.decode()
    assert "Found at the identity providers" not in page
    services.external_app_ids_set(actor=owner, integration=integration, ids=[("github", "42")])
    page = web_as(owner).get(reverse("inventory:detail", args=[integration.pk])).content.decode()
    assert "Found at the identity providers" in page and "No import has listed it yet." in page


def test_the_timeline_shows_the_findings_linked_to_the_integration(
    owner: User, iam_admin: User, web_as: Any, api_as: Any, register: Callable[..., Integration]
) -> None:
    integration = register(owner, ids=[("google", GOOGLE_CLIENT)])
    claimed = finding(discovered(None, "claimed-app"), "shadow", integration=integration, status="claimed")
    app_linked = finding(discovered(integration, "app-linked"), "drift")
    unrelated = finding(discovered(None, "other-app"), "shadow")
    finding_event(iam_admin, claimed, "discovery.finding_claimed", reason="Used by sales")
    finding_event(iam_admin, app_linked, "discovery.finding_opened")
    finding_event(iam_admin, unrelated, "discovery.finding_dismissed")
    history = api_as(owner).get(f"/api/v1/integrations/{integration.pk}/history/").json()["results"]
    actions = [entry["action"] for entry in history]
    assert "discovery.finding_claimed" in actions and "discovery.finding_opened" in actions
    assert "discovery.finding_dismissed" not in actions
    claim = next(entry for entry in history if entry["action"] == "discovery.finding_claimed")
    assert claim["reason"] == "Used by sales" and claim["who"] == iam_admin.username
    assert claim["changes"][0] == {"field": "finding", "old": None, "new": f"{claimed} (#{claimed.pk})"}
    assert "integration.external_app_ids_changed" in actions
    page = web_as(owner).get(reverse("inventory:detail", args=[integration.pk])).content.decode()
    assert 'data-action="discovery.finding_claimed"' in page and "Finding claimed" in page
    assert 'data-action="discovery.finding_dismissed"' not in page
    # The change of its external app ids, as people read it.
    assert 'data-action="integration.external_app_ids_changed"' in page and f"google: {GOOGLE_CLIENT}" in page


def test_the_detail_page_runs_the_same_queries_however_much_was_found(
    owner: User, iam_admin: User, web_as: Any, register: Callable[..., Integration]
) -> None:
    client = web_as(iam_admin)

    def grow(integration: Integration, count: int) -> None:
        for n in range(count):
            app = discovered(integration, f"{integration.pk}-{n}", last_seen=timezone.now() - timedelta(days=n))
            found = finding(app, "drift", integration=integration)
            finding_event(iam_admin, found, "discovery.finding_opened")
            finding(None, "stale", app_key=f"stale-{integration.pk}-{n}", integration=integration)

    small_one = register(owner, name="Small", ids=[("github", "1")])
    big_one = register(owner, name="Big", ids=[("github", str(n)) for n in range(2, 12)])
    grow(small_one, 1)
    grow(big_one, 12)
    client.get(reverse("inventory:detail", args=[small_one.pk]))
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("inventory:detail", args=[small_one.pk]))
    with CaptureQueriesContext(connection) as large:
        page = client.get(reverse("inventory:detail", args=[big_one.pk])).content.decode()
    assert page.count('data-action="discovery.finding_opened"') == 12
    assert len(large.captured_queries) == len(small.captured_queries)


def test_the_section_runs_two_queries(owner: User, iam_admin: User, register: Callable[..., Integration]) -> None:
    from django.test import RequestFactory

    from inventory.discovery.section import integration_found
    from inventory.selectors import integration_detail

    integration = register(owner, ids=[("github", "1")])
    for n in range(4):
        finding(discovered(integration, f"k{n}"), "drift", integration=integration)
    request = RequestFactory().get("/")
    request.user = iam_admin
    loaded = integration_detail(iam_admin).get(pk=integration.pk)  # external ids prefetched
    with CaptureQueriesContext(connection) as queries:
        data = integration_found(request, loaded)
    assert data is not None and len(data["rows"]) == 4 and all(len(row.findings) == 1 for row in data["rows"])
    assert len(queries.captured_queries) == 2
