"""The audit trail through the pages and the admin: readable, filterable, and impossible to change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from governance.audit import audit_record
from governance.models import AuditEvent, User

pytestmark = pytest.mark.django_db


def _events(actor: User, n: int, action: str = "thing.done") -> list[AuditEvent]:
    out = []
    for _ in range(n):
        with transaction.atomic():
            out.append(audit_record(actor=actor, action=action, target=actor, owner=actor))
    return out


def test_audit_page_lists_and_filters_events(client: Any, auditor: User, owner: User) -> None:
    _events(owner, 2, "integration.registered")
    _events(owner, 1, "integration.suspended")
    client.force_login(auditor)
    html = client.get("/audit/", {"action": "integration.suspended"}).content.decode()
    assert html.count('data-action="integration.suspended"') == 1
    assert 'data-action="integration.registered"' not in html
    assert '<label for="id_action">Event type</label>' in html


def test_business_user_sees_only_their_own_events_on_the_page(client: Any, owner: User, outsider: User) -> None:
    _events(owner, 1, "mine.done")
    _events(outsider, 1, "theirs.done")
    client.force_login(owner)
    html = client.get("/audit/").content.decode()
    assert "mine.done" in html and "theirs.done" not in html


def test_audit_page_runs_a_fixed_number_of_queries(client: Any, auditor: User, owner: User) -> None:
    client.force_login(auditor)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/audit/").status_code == 200
        return len(ctx.captured_queries)

    _events(owner, 5)
    small = count()
    _events(owner, 45)
    assert count() == small


def test_events_cannot_be_changed_or_deleted_in_the_admin_even_by_a_superuser(
    client: Any, make_user: Callable[..., User], owner: User
) -> None:
    root = make_user("root", is_staff=True, is_superuser=True)
    event = _events(owner, 1)[0]
    client.force_login(root)
    assert client.get(f"/admin/governance/auditevent/{event.pk}/change/").status_code == 200  # read-only view
    assert client.post(f"/admin/governance/auditevent/{event.pk}/change/", {"reason": "edited"}).status_code == 403
    assert client.post(f"/admin/governance/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/governance/auditevent/add/").status_code == 403
    response = client.post(
        "/admin/governance/auditevent/", {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302)
    event.refresh_from_db()
    assert AuditEvent.objects.filter(pk=event.pk).exists() and event.reason == ""


def test_events_cannot_be_changed_through_the_api(make_user: Callable[..., User], owner: User) -> None:
    root = make_user("root", is_staff=True, is_superuser=True)  # itself audited: user.superuser_created
    event = _events(owner, 1)[0]
    events_before = AuditEvent.objects.count()
    client = APIClient()
    client.force_authenticate(root)
    assert client.patch(f"/api/v1/audit-events/{event.pk}/", {"reason": "x"}, format="json").status_code == 405
    assert client.put(f"/api/v1/audit-events/{event.pk}/", {"reason": "x"}, format="json").status_code == 405
    assert client.delete(f"/api/v1/audit-events/{event.pk}/").status_code == 405
    assert client.post("/api/v1/audit-events/", {"action": "forged"}, format="json").status_code == 405
    assert AuditEvent.objects.count() == events_before
