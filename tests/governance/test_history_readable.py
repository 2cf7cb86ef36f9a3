"""Histories and the audit trail read as a product: values as people read them, one entry per
change, every object named and linked for those who may open it, filters as real controls."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.models import AccessRequest, RequestType
from governance.actors import Actor
from governance.audit import audit_record
from governance.history import LONG_TEXT, history_readable
from governance.models import AuditEvent, User
from governance.roles import Role
from inventory import services
from inventory.models import Integration, Scope
from inventory.selectors import integration_timeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def scope(make_user: Callable[..., User]) -> Scope:
    keeper = make_user("catalog-keeper", is_active=False)
    actor = Actor.system(on_behalf_of=keeper)
    system = services.resource_system_save(actor=actor, values={"code": "msgraph", "name": "Microsoft Graph"})
    return services.scope_save(actor=actor, system=system, values={"name": "User.Read", "sensitivity": "low"})


@pytest.fixture
def register(scope: Scope) -> Callable[..., Integration]:
    def make(owner: User, name: str = "Slack summariser", **values: Any) -> Integration:
        data: dict[str, Any] = {
            "name": name,
            "kind": "chatbot",
            "purpose": "Summarises channels.",
            "business_owner": owner,
            "autonomy": "suggest_only",
            "requested_scopes": [scope],
            **values,
        }
        return services.integration_register(actor=owner, values=data)

    return make


def _entries(html: str) -> list[str]:
    return re.findall(r'<li class="history-entry" data-action="([^"]+)"', html)


def test_values_read_as_people_read_them(owner: User, make_user: Callable[..., User]) -> None:
    backup = make_user("raj", Role.BUSINESS_USER, display_name="Raj Rao")
    at = timezone.now()
    long_purpose = "Reads every channel. " * 20
    entries = [
        {
            "at": at,
            "who": "owner",
            "source": "history",
            "action": "changed",
            "reason": "",
            "changes": [
                {"field": "data_classifications", "old": [], "new": ["confidential", "restricted"]},
                {"field": "acts_for_users", "old": False, "new": True},
                {"field": "backup_owner", "old": None, "new": backup.pk},
                {"field": "autonomy", "old": "suggest_only", "new": "autonomous"},
                {"field": "purpose", "old": "Short.", "new": long_purpose},
                {"field": "created_at", "old": None, "new": "2025-03-04T10:20:00+00:00"},
                {"field": "updated_at", "old": None, "new": "2025-03-04T10:20:00+00:00"},
            ],
        }
    ]
    [entry] = history_readable(entries, model=Integration)
    shown = {change.label: change for change in entry.changes}

    def before_after(label: str) -> tuple[str | None, str]:
        change = shown[label]
        return (change.old.text if change.old else None, change.new.text)

    assert before_after("Data classifications") == ("—", "Confidential, Restricted")
    assert before_after("Acts for its users") == ("No", "Yes")
    assert shown["Backup owner"].new.text == "Raj Rao"
    assert shown["Autonomy"].new.text == "Autonomous"
    purpose = shown["Purpose"].new
    assert len(purpose.text) <= LONG_TEXT + 1 and purpose.text.endswith("…") and purpose.full == long_purpose
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", shown["Created at"].new.text)
    assert "Updated at" not in shown  # changes on every save, says nothing
    assert entry.action == "Changed" and entry.who == "owner"


def test_the_integration_page_shows_one_entry_per_change_in_words(
    owner: User, register: Callable[..., Integration], web_as: Callable[[User], Any]
) -> None:
    integration = register(owner)
    services.integration_update(
        actor=owner,
        integration=integration,
        values={"data_classifications": ["confidential"], "acts_for_users": True},
        reason="Now reads private channels",
    )
    html = web_as(owner).get(reverse("inventory:detail", args=[integration.pk])).content.decode()
    timeline = html[html.index('id="h-timeline"') :]
    timeline = timeline[: timeline.index("</section>")]
    assert _entries(timeline) == ["integration.changed", "integration.registered"]
    assert "Confidential" in timeline and "[&#x27;confidential&#x27;]" not in timeline
    assert "['confidential']" not in timeline and "True" not in timeline
    assert "Now reads private channels" in timeline
    # The API keeps both records, raw, as its contract says.
    assert {entry["source"] for entry in integration_timeline(integration)} == {"history", "audit"}


def test_the_timeline_reads_in_a_fixed_number_of_queries(
    owner: User, register: Callable[..., Integration], web_as: Callable[[User], Any]
) -> None:
    integration = register(owner)
    client = web_as(owner)
    url = reverse("inventory:detail", args=[integration.pk])

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    services.integration_update(actor=owner, integration=integration, values={"purpose": "Version 1."})
    few = count()
    for number in range(2, 9):
        services.integration_update(actor=owner, integration=integration, values={"purpose": f"Version {number}."})
    assert count() == few


def test_audit_targets_are_named_and_linked_for_those_who_may_open_them(
    owner: User, auditor: User, register: Callable[..., Integration], web_as: Callable[[User], Any]
) -> None:
    integration = register(owner)
    html = web_as(auditor).get("/audit/", {"action": "integration.registered"}).content.decode()
    link = f'<a href="{reverse("inventory:detail", args=[integration.pk])}">Slack summariser</a>'
    assert link in html
    assert "inventory.integration #" not in html


def test_an_outsider_sees_the_recorded_name_of_a_target_they_may_not_open(
    owner: User, outsider: User, register: Callable[..., Integration], web_as: Callable[[User], Any]
) -> None:
    integration = register(owner)
    with transaction.atomic():
        audit_record(actor=outsider, action="integration.looked_at", target=integration, owner=outsider)
    html = web_as(outsider).get("/audit/").content.decode()
    row = html[html.index('data-action="integration.looked_at"') :]
    row = row[: row.index("</tr>")]
    assert "Slack summariser" in row
    assert reverse("inventory:detail", args=[integration.pk]) not in html


def test_a_grant_names_the_access_request_it_came_from(
    owner: User, outsider: User, scope: Scope, register: Callable[..., Integration], web_as: Callable[[User], Any]
) -> None:
    integration = register(owner)
    request = AccessRequest.objects.create(
        type=RequestType.REGISTRATION, integration=integration, requester=owner, risk_tier="low"
    )
    services.grant_create_many(
        actor=owner,
        integration=integration,
        scopes=[scope],
        source_type="approvals.accessrequest",
        source_id=str(request.pk),
        approvers=[owner],
        expires_at=None,
    )
    html = web_as(owner).get(reverse("inventory:detail", args=[integration.pk])).content.decode()
    url = reverse("approvals:request-detail", args=[request.pk])
    assert f'<a href="{url}">Access request #{request.pk} — Slack summariser</a>' in html
    assert "approvals.accessrequest #" not in html


def test_filters_are_date_pickers_and_lists_of_choices(
    owner: User, auditor: User, register: Callable[..., Integration], web_as: Callable[[User], Any]
) -> None:
    register(owner)
    client = web_as(auditor)
    html = client.get("/audit/").content.decode()
    assert re.search(r'<label for="id_since">From</label>\s*<input type="date" name="since"', html)
    assert re.search(r'<label for="id_until">To</label>\s*<input type="date" name="until"', html)
    assert '<select name="action"' in html and '<option value="integration.registered">Integration: registered' in html
    assert '<select name="target_type"' in html and '<option value="inventory.integration">Integration</option>' in html
    assert 'list="audit-people"' in html and '<option value="owner">' in html

    today = timezone.localdate()
    listed = client.get("/audit/", {"since": today.isoformat(), "until": today.isoformat()}).content.decode()
    assert 'data-action="integration.registered"' in listed
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    assert 'data-action="integration.registered"' not in client.get("/audit/", {"since": tomorrow}).content.decode()
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    assert 'data-action="integration.registered"' not in client.get("/audit/", {"until": yesterday}).content.decode()


def test_a_filter_it_cannot_read_lists_nothing_and_says_why(auditor: User, web_as: Callable[[User], Any]) -> None:
    with transaction.atomic():
        audit_record(actor=auditor, action="thing.done", target=auditor, owner=auditor)
    html = web_as(auditor).get("/audit/", {"since": "not-a-date", "action": "no.such"}).content.decode()
    assert 'role="alert"' in html and "From" in html and "Event type" in html
    assert 'data-action="thing.done"' not in html


def test_the_audit_page_names_targets_in_a_fixed_number_of_queries(
    owner: User, auditor: User, register: Callable[..., Integration], web_as: Callable[[User], Any]
) -> None:
    client = web_as(auditor)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/audit/").status_code == 200
        return len(ctx.captured_queries)

    first = register(owner, name="Bot 0")
    services.integration_update(actor=owner, integration=first, values={"backup_owner": auditor})
    few = count()
    for number in range(1, 8):
        bot = register(owner, name=f"Bot {number}")
        services.integration_update(actor=owner, integration=bot, values={"backup_owner": auditor})
    assert AuditEvent.objects.count() >= 16
    assert count() == few


def test_the_home_panel_names_and_links_the_latest_targets(
    owner: User, auditor: User, register: Callable[..., Integration], web_as: Callable[[User], Any]
) -> None:
    integration = register(owner)
    html = web_as(auditor).get("/").content.decode()
    assert f'<a href="{reverse("inventory:detail", args=[integration.pk])}">Slack summariser</a>' in html
    assert "<strong>Registered</strong>" in html
