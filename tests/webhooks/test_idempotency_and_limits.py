"""Idempotency-Key on creating POSTs (any app's, through the middleware) and rate limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from governance.models import IdempotencyRecord
from governance.webhooks.models import WebhookSubscription
from inventory.models import Integration

pytestmark = pytest.mark.django_db

BODY = {"name": "Jira", "target_url": "https://jira.example.com/hook", "event_types": ["integration.*"]}
INTEGRATION = {"name": "Ticket bot", "kind": "agent", "purpose": "Answers tickets", "ticket_ref": "CHG1"}


def test_repeated_idempotency_key_returns_the_first_response_and_creates_nothing(token_client, iam_admin):
    client = token_client(iam_admin)
    first = client.post("/api/v1/webhooks/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/webhooks/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert WebhookSubscription.objects.count() == 1


def test_integration_registration_with_the_same_key_registers_once(token_client, owner):
    client = token_client(owner)
    first = client.post("/api/v1/integrations/", INTEGRATION, format="json", HTTP_IDEMPOTENCY_KEY="CHG1")
    again = client.post("/api/v1/integrations/", INTEGRATION, format="json", HTTP_IDEMPOTENCY_KEY="CHG1")
    assert first.status_code == again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert Integration.objects.filter(ticket_ref="CHG1").count() == 1


def test_same_key_with_another_body_is_a_422_problem(token_client, iam_admin):
    client = token_client(iam_admin)
    assert client.post("/api/v1/webhooks/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1").status_code == 201
    other = client.post("/api/v1/webhooks/", {**BODY, "name": "Other"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 422 and other["Content-Type"] == "application/problem+json"
    assert "Idempotency-Key" in other.json()["errors"]
    assert WebhookSubscription.objects.count() == 1


def test_keys_are_per_caller_and_expire_after_a_day(token_client, iam_admin, make_user):
    from governance.roles import Role

    other_admin = make_user("admin2", Role.IAM_ADMIN)
    assert (
        token_client(iam_admin).post("/api/v1/webhooks/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code
        == 201
    )
    assert (
        token_client(other_admin).post("/api/v1/webhooks/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code
        == 201
    )
    client = token_client(iam_admin)
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert client.post("/api/v1/webhooks/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    assert WebhookSubscription.objects.count() == 3


def test_a_refused_request_is_not_remembered_so_the_fixed_one_can_reuse_the_key(token_client, iam_admin):
    client = token_client(iam_admin)
    bad = client.post(
        "/api/v1/webhooks/", {**BODY, "event_types": ["bogus.*"]}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert bad.status_code == 400
    assert (
        client.post(
            "/api/v1/webhooks/", {**BODY, "event_types": ["bogus.*"]}, format="json", HTTP_IDEMPOTENCY_KEY="k"
        ).status_code
        == 400
    )
    assert not IdempotencyRecord.objects.exists()
    # Had the 400 been remembered, the corrected body under the same key would be a 422.
    fixed = client.post("/api/v1/webhooks/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed
    assert WebhookSubscription.objects.count() == 1


@pytest.mark.parametrize("header", ["Token", "Token ", "Token  "], ids=["bare", "one-space", "two-spaces"])
def test_a_token_header_without_a_key_is_a_401_not_a_500(header, iam_admin):
    from rest_framework.test import APIClient

    client = APIClient()
    client.raise_request_exception = False
    answer = client.post("/api/v1/webhooks/", BODY, format="json", HTTP_AUTHORIZATION=header, HTTP_IDEMPOTENCY_KEY="k")
    assert answer.status_code == 401
    assert not IdempotencyRecord.objects.exists() and not WebhookSubscription.objects.exists()


def test_a_token_after_a_tab_still_gets_the_key_checked(token_client, iam_admin):
    # Authentication splits "Token<TAB>key" on any whitespace, so the key must apply there too.
    client = token_client(iam_admin)
    key = client._credentials["HTTP_AUTHORIZATION"].split(" ", 1)[1]
    client.credentials(HTTP_AUTHORIZATION=f"Token\t{key}")
    first = client.post("/api/v1/webhooks/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="tab")
    again = client.post("/api/v1/webhooks/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="tab")
    assert first.status_code == again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert WebhookSubscription.objects.count() == 1


def test_a_key_still_in_progress_answers_409(token_client, iam_admin):
    client = token_client(iam_admin)
    # What a concurrent request sees while the first holds the key (the unique constraint).
    first = client.post("/api/v1/webhooks/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert first.status_code == 201
    IdempotencyRecord.objects.update(status="in_progress", response_body="")
    busy = client.post("/api/v1/webhooks/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert busy.status_code == 409 and busy["Retry-After"]
    assert WebhookSubscription.objects.count() == 1


def test_the_change_and_the_remembered_response_commit_together(token_client, owner, monkeypatch):
    from django.db.models.query import QuerySet

    real_update = QuerySet.update

    def dies_before_remembering(self, **values):  # the worker dies between the change and the record
        if self.model is IdempotencyRecord and values.get("status") == "done":
            raise RuntimeError("worker died")
        return real_update(self, **values)

    monkeypatch.setattr(QuerySet, "update", dies_before_remembering)
    client = token_client(owner)
    client.raise_request_exception = False
    failed = client.post("/api/v1/integrations/", INTEGRATION, format="json", HTTP_IDEMPOTENCY_KEY="CHG1")
    assert failed.status_code == 500
    assert not Integration.objects.filter(ticket_ref="CHG1").exists()  # rolled back with the record
    assert not IdempotencyRecord.objects.exists()  # the key is free again
    monkeypatch.undo()
    retried = client.post("/api/v1/integrations/", INTEGRATION, format="json", HTTP_IDEMPOTENCY_KEY="CHG1")
    assert retried.status_code == 201
    assert Integration.objects.filter(ticket_ref="CHG1").count() == 1


def test_a_burst_past_the_token_limit_gets_429_with_retry_after(token_client, owner, settings):
    settings.API_RATE_LIMITS = {"token": "5/min", "user": "100/min", "anon": "10/min"}
    client = token_client(owner)
    codes = [client.get("/api/v1/scopes/").status_code for _ in range(6)]
    assert codes[:5] == [200] * 5 and codes[5] == 429
    limited = client.get("/api/v1/scopes/")
    assert limited["Content-Type"] == "application/problem+json" and int(limited["Retry-After"]) > 0
    assert limited.json()["status"] == 429
    # Another token of the same user has its own token budget (the user limit is higher).
    assert token_client(owner).get("/api/v1/scopes/").status_code == 200


def test_the_user_limit_counts_all_of_a_users_tokens_together(token_client, owner, settings):
    settings.API_RATE_LIMITS = {"token": "100/min", "user": "4/min", "anon": "10/min"}
    codes = [token_client(owner).get("/api/v1/scopes/").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]


def test_limits_reset_after_the_window(token_client, owner, settings):
    settings.API_RATE_LIMITS = {"token": "2/min", "user": "100/min", "anon": "10/min"}
    client = token_client(owner)
    now = timezone.now()
    with time_machine.travel(now, tick=False) as clock:
        assert [client.get("/api/v1/scopes/").status_code for _ in range(3)] == [200, 200, 429]
        clock.move_to(now + timedelta(seconds=61))
        assert client.get("/api/v1/scopes/").status_code == 200
