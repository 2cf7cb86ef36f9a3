"""The API base every endpoint stands on: token authentication, problem details, pagination, and
the audit-events endpoint (filters, visibility, fixed query count)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.apps import apps
from django.core.management import call_command
from django.db import connection, models, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from governance.actors import Actor
from governance.api.problems import PROBLEM_CONTENT_TYPE
from governance.audit import audit_record
from governance.models import ApiToken, AuditEvent, User
from governance.services import api_token_revoke, hash_token_key

pytestmark = pytest.mark.django_db

AUDIT_URL = "/api/v1/audit-events/"


def issue_token(username: str, *args: str) -> str:
    """The key exactly as an operator gets it from ``manage.py issue_api_token``."""
    out, err = StringIO(), StringIO()
    call_command("issue_api_token", username, *args, stdout=out, stderr=err)
    assert "shown only once" in err.getvalue()
    return out.getvalue().strip()


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(PROBLEM_CONTENT_TYPE)
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    return body


# --- Tokens -------------------------------------------------------------------------------------


def test_issued_token_authenticates_and_is_recorded_as_used(auditor: User) -> None:
    key = issue_token("auditor", "--name", "ServiceNow")
    response = token_client(key).get(AUDIT_URL)
    assert response.status_code == 200
    token = ApiToken.objects.get(user=auditor)
    assert token.name == "ServiceNow" and token.last_used_at is not None
    assert AuditEvent.objects.filter(action="api_token.issued", target_id=str(token.pk)).exists()


def test_token_is_stored_only_as_a_hash(auditor: User) -> None:
    key = issue_token("auditor")
    token = ApiToken.objects.get(user=auditor)
    assert token.key_hash == hash_token_key(key) and token.prefix == key[:10]
    # The key appears in no text column of any table (tokens, their history, the audit trail...).
    for model in apps.get_models():
        text_fields = [f for f in model._meta.concrete_fields if isinstance(f, models.CharField | models.TextField)]
        for field in text_fields:
            assert not model._default_manager.filter(**{f"{field.attname}__contains": key}).exists(), (
                f"{model._meta.label}.{field.attname} holds the key"
            )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT after FROM {AuditEvent._meta.db_table}")
        assert all(key not in str(row[0]) for row in cursor.fetchall())


def test_expired_token_is_refused_with_a_clear_detail(auditor: User) -> None:
    key = issue_token("auditor", "--expires-days", "1")
    with time_machine.travel(datetime.now(UTC) + timedelta(days=1, minutes=1)):
        body = assert_problem(token_client(key).get(AUDIT_URL), 401)
    assert body["detail"] == "This token has expired."


def test_token_that_never_expires_still_works_years_later(auditor: User) -> None:
    key = issue_token("auditor", "--expires-days", "0")
    with time_machine.travel(datetime.now(UTC) + timedelta(days=3650)):
        assert token_client(key).get(AUDIT_URL).status_code == 200


def test_revoked_token_is_refused(auditor: User, iam_admin: User) -> None:
    key = issue_token("auditor")
    api_token_revoke(actor=iam_admin, token=ApiToken.objects.get(user=auditor), reason="leaked in a ticket")
    body = assert_problem(token_client(key).get(AUDIT_URL), 401)
    assert body["detail"] == "This token was revoked."
    assert AuditEvent.objects.filter(action="api_token.revoked", actor=iam_admin).exists()


def test_token_of_a_deactivated_user_is_refused(auditor: User) -> None:
    key = issue_token("auditor")
    User.objects.filter(pk=auditor.pk).update(is_active=False)
    body = assert_problem(token_client(key).get(AUDIT_URL), 401)
    assert body["detail"] == "The token's user is deactivated."


def test_unknown_and_malformed_tokens_are_refused(auditor: User) -> None:
    assert assert_problem(token_client("gp_not-a-real-key").get(AUDIT_URL), 401)["detail"] == "Invalid token."
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token two parts")
    assert "expected 'Token <key>'" in assert_problem(client.get(AUDIT_URL), 401)["detail"]


def test_issue_api_token_refuses_unknown_and_deactivated_users(make_user: Callable[..., User]) -> None:
    with pytest.raises(Exception, match="No user named 'ghost'"):
        issue_token("ghost")
    make_user("gone", is_active=False)
    with pytest.raises(Exception, match="gone is deactivated"):
        issue_token("gone")


# --- Problem details ------------------------------------------------------------------------------


def test_anonymous_call_is_a_401_problem_with_the_token_challenge() -> None:
    response = APIClient().get(AUDIT_URL)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Token"


def test_invalid_filter_is_a_400_problem_naming_the_field(api_as: Callable[[User], APIClient], auditor: User) -> None:
    body = assert_problem(api_as(auditor).get(AUDIT_URL, {"since": "not-a-date"}), 400)
    assert "since" in body["errors"]


def test_auditor_write_is_a_403_problem(api_as: Callable[[User], APIClient], auditor: User) -> None:
    body = assert_problem(api_as(auditor).post(AUDIT_URL, {}), 403)
    assert "read-only" in body["detail"]


def test_missing_object_is_a_404_problem(api_as: Callable[[User], APIClient], iam_admin: User) -> None:
    assert_problem(api_as(iam_admin).get(f"{AUDIT_URL}999999/"), 404)


def test_unknown_api_path_is_a_404_problem(api_as: Callable[[User], APIClient], iam_admin: User) -> None:
    body = assert_problem(api_as(iam_admin).get("/api/v1/no-such-thing/"), 404)
    assert "/api/v1/no-such-thing/" in body["detail"]
    assert_problem(APIClient().get("/api/v1/no/such/thing"), 404)


@override_settings(DEBUG=True)
def test_unknown_api_path_is_a_problem_even_with_debug_on() -> None:
    assert_problem(APIClient().get("/api/v1/nothing-here/"), 404)


def test_writing_to_a_read_only_endpoint_is_a_405_problem(api_as: Callable[[User], APIClient], iam_admin: User) -> None:
    assert_problem(api_as(iam_admin).post(AUDIT_URL, {}), 405)
    assert_problem(api_as(iam_admin).delete(f"{AUDIT_URL}1/"), 405)


@override_settings(ROOT_URLCONF="tests.governance.urls_boom", DEBUG=False)
def test_unhandled_error_in_the_api_is_a_500_problem(iam_admin: User) -> None:
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(iam_admin)
    response = client.get("/api/v1/test-boom/")
    body = assert_problem(response, 500)
    assert "a bug" not in body["detail"]  # no internals leak
    assert response["X-Request-ID"]


@override_settings(ROOT_URLCONF="tests.governance.urls_boom", DEBUG=False)
def test_unhandled_error_in_a_page_is_the_friendly_500_page(client: Any) -> None:
    client.raise_request_exception = False
    response = client.get("/test-boom/")
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


# --- Pagination, filters, visibility, query count -----------------------------------------------------


def _event(actor: User, action: str, *, target: Any = None, owner: User | None = None) -> AuditEvent:
    with transaction.atomic():
        return audit_record(actor=actor, action=action, target=target or actor, owner=owner)


def test_lists_are_paginated_with_count_next_previous(api_as: Callable[[User], APIClient], auditor: User) -> None:
    for i in range(7):
        _event(auditor, f"thing.done_{i}")
    page1 = api_as(auditor).get(AUDIT_URL, {"page_size": 3}).json()
    assert set(page1) == {"count", "count_is_estimate", "next", "previous", "results"}
    assert page1["count"] == 7 and len(page1["results"]) == 3 and page1["previous"] is None
    assert "page=2" in page1["next"]
    page3 = api_as(auditor).get(AUDIT_URL, {"page_size": 3, "page": 3}).json()
    assert len(page3["results"]) == 1 and page3["next"] is None
    assert [e["id"] for e in page1["results"]] == sorted((e["id"] for e in page1["results"]), reverse=True)
    assert_problem(api_as(auditor).get(AUDIT_URL, {"page": 99}), 404)


def test_audit_event_filters(api_as: Callable[[User], APIClient], auditor: User, owner: User, reviewer: User) -> None:
    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        early = _event(reviewer, "integration.submitted", target=owner, owner=owner)
    with time_machine.travel(start + timedelta(days=2), tick=False):
        middle = _event(owner, "integration.changed", target=reviewer, owner=reviewer)
    with time_machine.travel(start + timedelta(days=4), tick=False), transaction.atomic():
        system = Actor.system(on_behalf_of=owner)
        late = audit_record(actor=system, action="grant.expired", target=reviewer, owner=owner)
    client = api_as(auditor)

    def ids(**params: str) -> set[int]:
        response = client.get(AUDIT_URL, params)
        assert response.status_code == 200, response.content
        return {e["id"] for e in response.json()["results"]}

    assert ids(actor="reviewer") == {early.pk}
    assert ids(owner="owner") == {early.pk, late.pk}
    assert ids(action="integration.changed") == {middle.pk}
    assert ids(target_type="governance.user", target_id=str(reviewer.pk)) == {middle.pk, late.pk}
    assert ids(since=(start + timedelta(days=1)).isoformat()) == {middle.pk, late.pk}
    assert ids(until=(start + timedelta(days=3)).isoformat()) == {early.pk, middle.pk}
    assert ids(actor_kind="system") == {late.pk}
    event = client.get(f"{AUDIT_URL}{late.pk}/").json()
    assert event["actor"] == "system" and event["owner"] == "owner" and event["actor_kind"] == "system"


def test_business_user_sees_only_their_own_events(
    api_as: Callable[[User], APIClient], owner: User, outsider: User, reviewer: User
) -> None:
    acted = _event(owner, "integration.registered")
    accountable = _event(reviewer, "integration.submitted", target=reviewer, owner=owner)
    others = _event(outsider, "integration.registered")
    listed = {e["id"] for e in api_as(owner).get(AUDIT_URL).json()["results"]}
    assert listed == {acted.pk, accountable.pk}
    assert_problem(api_as(owner).get(f"{AUDIT_URL}{others.pk}/"), 404)
    assert api_as(reviewer).get(f"{AUDIT_URL}{others.pk}/").status_code == 200


def _count_queries(client: APIClient) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(AUDIT_URL, {"page_size": 100})
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("username", ["auditor", "owner"])
def test_audit_event_list_runs_a_fixed_number_of_queries(
    username: str, auditor: User, owner: User, reviewer: User, iam_admin: User
) -> None:
    user = User.objects.get(username=username)
    key = issue_token(username)
    actors = [owner, reviewer, iam_admin]

    def add(n: int) -> None:
        for i in range(n):
            _event(actors[i % 3], "thing.done", target=reviewer, owner=owner)

    add(5)
    token_client(key).get(AUDIT_URL)  # first use records last_used_at; measure steady state
    small = _count_queries(token_client(key))
    add(45)
    large = _count_queries(token_client(key))
    assert small == large, (small, large)
    assert large <= 5
    assert user.is_active
