"""``/api/v1/token-events/``: the token log, read-only, with the activity page's visibility and
filters, newest first, in a fixed number of queries, documented in the schema."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import User
from inventory.models import Integration
from tests.runtime.activity_support import make_integration, token_event

__all__ = ["make_integration"]  # the fixture, for pytest

pytestmark = pytest.mark.django_db

URL = "/api/v1/token-events/"


def _jtis(client: APIClient, **params: Any) -> list[str]:
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return [row["jti"] for row in response.json()["results"]]


def test_anonymous_caller_gets_a_401_problem(api_client: APIClient) -> None:
    response = api_client.get(URL)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")


def test_token_authenticated_auditor_reads_the_log(
    token_client: Callable[[User], APIClient], auditor: User, owner: User, make_integration: Callable[..., Integration]
) -> None:
    token_event(make_integration(owner), jti="jti-seen")
    assert _jtis(token_client(auditor)) == ["jti-seen"]


def test_an_event_shows_every_recorded_field(
    api_as: Callable[[User], APIClient],
    reviewer: User,
    owner: User,
    make_user: Callable[..., User],
    make_integration: Callable[..., Integration],
) -> None:
    bot = make_integration(owner, name="Mail triage")
    event = token_event(bot, acting_for=make_user("carol"), task="Sort the inbox", grant_ids=[7])
    body = api_as(reviewer).get(f"{URL}{event.pk}/").json()
    assert body["integration"] == bot.pk and body["integration_name"] == "Mail triage"
    assert body["owner"] == "owner" and body["acting_for"] == "carol"
    assert body["outcome"] == "issued" and body["jti"] == event.jti and body["task"] == "Sort the inbox"
    assert body["scopes_requested"] == ["crm:read"] and body["scopes_granted"] == ["crm:read"]
    assert body["chain"] == [bot.pk] and body["grant_ids"] == [7] and body["batch"] is None
    assert body["workload_subject"] == event.workload_subject and body["digest"] == event.digest
    assert body["expires_at"] is not None


def test_a_refusal_without_an_integration_names_nobody(api_as: Callable[[User], APIClient], iam_admin: User) -> None:
    event = token_event(None, outcome="refused", error="invalid_grant", reason="Unknown issuer.")
    body = api_as(iam_admin).get(f"{URL}{event.pk}/").json()
    assert body["integration"] is None and body["integration_name"] is None and body["owner"] is None
    assert (body["error"], body["reason"], body["jti"], body["expires_at"]) == (
        "invalid_grant",
        "Unknown issuer.",
        "",
        None,
    )


def test_business_user_lists_only_their_integrations_events_and_gets_404_for_others(
    api_as: Callable[[User], APIClient],
    owner: User,
    outsider: User,
    make_integration: Callable[..., Integration],
) -> None:
    token_event(make_integration(owner, name="Mine"), jti="jti-mine")
    theirs = token_event(make_integration(outsider, name="Theirs"), jti="jti-theirs")
    nobody = token_event(None, outcome="refused")
    client = api_as(owner)
    assert _jtis(client) == ["jti-mine"]
    for hidden in (theirs, nobody):
        response = client.get(f"{URL}{hidden.pk}/")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/problem+json")


def test_newest_first(
    api_as: Callable[[User], APIClient], reviewer: User, owner: User, make_integration: Callable[..., Integration]
) -> None:
    bot = make_integration(owner)
    now = timezone.now()
    token_event(bot, jti="jti-middle", at=now - timedelta(minutes=5))
    token_event(bot, jti="jti-newest", at=now)
    token_event(bot, jti="jti-oldest", at=now - timedelta(minutes=9))
    assert _jtis(api_as(reviewer)) == ["jti-newest", "jti-middle", "jti-oldest"]


def test_filters_integration_owner_outcome_error_since_until(
    api_as: Callable[[User], APIClient],
    reviewer: User,
    owner: User,
    outsider: User,
    make_integration: Callable[..., Integration],
) -> None:
    now = timezone.now()
    first = make_integration(owner, name="First")
    second = make_integration(outsider, name="Second")
    token_event(first, jti="jti-first", at=now - timedelta(hours=3))
    token_event(second, jti="jti-second", at=now - timedelta(hours=1))
    refusal = token_event(first, outcome="refused", error="access_denied", reason="Overdue.", at=now)
    client = api_as(reviewer)
    assert _jtis(client, integration=first.pk) == ["", "jti-first"]
    assert _jtis(client, owner="outsider") == ["jti-second"]
    assert _jtis(client, outcome="issued") == ["jti-second", "jti-first"]
    refused = client.get(URL, {"outcome": "refused", "error": "access_denied"}).json()["results"]
    assert [row["id"] for row in refused] == [refusal.pk]
    assert _jtis(client, error="invalid_scope") == []
    window = {"since": (now - timedelta(hours=2)).isoformat(), "until": (now - timedelta(minutes=1)).isoformat()}
    assert _jtis(client, **window) == ["jti-second"]
    assert _jtis(client, jti="jti-first") == ["jti-first"]


@pytest.mark.parametrize(
    ("param", "value"),
    [("since", "last tuesday"), ("until", "2026-13-01T00:00:00Z"), ("integration", "abc"), ("outcome", "maybe")],
)
def test_a_malformed_filter_is_a_400_problem_naming_it(
    api_as: Callable[[User], APIClient], reviewer: User, param: str, value: str
) -> None:
    response = api_as(reviewer).get(URL, {param: value})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert param in response.json()["errors"]


def test_the_log_cannot_be_written_through_the_api(
    api_as: Callable[[User], APIClient], iam_admin: User, owner: User, make_integration: Callable[..., Integration]
) -> None:
    event = token_event(make_integration(owner))
    client = api_as(iam_admin)
    assert client.post(URL, {"outcome": "issued"}).status_code == 405
    assert client.patch(f"{URL}{event.pk}/", {"reason": "edited"}).status_code == 405
    assert client.delete(f"{URL}{event.pk}/").status_code == 405


def test_list_runs_the_same_queries_for_one_row_and_a_full_page(
    api_as: Callable[[User], APIClient],
    reviewer: User,
    owner: User,
    make_user: Callable[..., User],
    make_integration: Callable[..., Integration],
) -> None:
    bot = make_integration(owner)
    for n in range(25):
        other = make_integration(make_user(f"owner{n}"), name=f"Bot {n}")
        token_event(other, acting_for=make_user())
        token_event(bot, acting_for=make_user())
        token_event(None, outcome="refused")
    for user in (reviewer, owner):
        client = api_as(user)
        client.get(URL, {"page_size": 1})  # once-per-process caches warm
        counts = []
        for size in (1, 200):
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(URL, {"page_size": size})
            assert response.status_code == 200
            counts.append(len(ctx.captured_queries))
        assert counts[0] == counts[1], (user.username, counts)
        assert len(response.json()["results"]) == (75 if user == reviewer else 25)


def test_schema_documents_the_endpoint_and_its_filters(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    listing = paths["/api/v1/token-events/"]["get"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert {"integration", "owner", "outcome", "error", "since", "until", "page", "page_size"} <= names
    assert {"400", "401", "403", "404", "429"} <= set(listing["responses"])
    assert "get" in paths["/api/v1/token-events/{id}/"]
    assert set(paths["/api/v1/token-events/"]) == {"get"}
