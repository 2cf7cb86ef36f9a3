"""``POST /api/v1/policies/{id}/replays/`` and ``/api/v1/policy-replays/``: IAM admins start a
replay (queued, audited), its report reads back through the API once the task has run; the limit
is checked against its published bounds; reviewers and auditors read, anyone else sees nothing;
the list filters by version and runs a fixed number of queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import django_q.conf
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from governance.models import AuditEvent, User
from governance.roles import Role
from runtime.models import PolicyReplay, PolicyVersion, ReplayStatus
from runtime.policy import pdp
from runtime.policy import replay as engine
from runtime.services import policies
from runtime.services.replays import replay_start
from runtime.tasks import policy_replay_run
from tests.runtime.policy.support import build_policy_world
from tests.runtime.policy.versions_support import replayed, shipped

pytestmark = pytest.mark.django_db

REPLAYS = "/api/v1/policy-replays/"
Client = Callable[[User], APIClient]

FORBID_WRITE = """
@id("forbid-crm-write")
@description("Nobody writes to the CRM while it migrates.")
forbid (principal, action, resource is Scope) when { resource.code == "crm:write" };
"""


def start_url(version: PolicyVersion, path: str = "replays") -> str:
    return f"/api/v1/policies/{version.pk}/{path}/"


def detail_url(replay: PolicyReplay | int) -> str:
    return f"{REPLAYS}{replay if isinstance(replay, int) else replay.pk}/"


def candidate(author: User, text: str | None = None, title: str = "No CRM writes") -> PolicyVersion:
    return policies.policy_draft_create(
        actor=author, title=title, cedar_text=text or shipped().cedar_text + FORBID_WRITE, based_on=shipped()
    )


@pytest.fixture
def decision_log(owner: User) -> None:
    """Four allows (three reads, one write), then one more write allowed and a deny on admin."""
    world = build_policy_world(owner)
    pdp.decide([world.request("read")] * 3 + [world.request("write")] * 2, point="api")
    pdp.decide([world.request("admin")], point="api")


def test_an_admin_starts_a_replay_queued_and_audited(api_as: Client, iam_admin: User) -> None:
    version = candidate(iam_admin)
    response = api_as(iam_admin).post(start_url(version), {"limit": 500})
    assert response.status_code == 201, response.content
    body = response.json()
    replay = PolicyReplay.objects.get()
    assert body["id"] == replay.pk and body["status"] == "queued" and body["limit"] == 500
    assert (body["candidate"], body["candidate_number"]) == (version.pk, version.number)
    assert body["candidate_sha256"] == version.sha256 and body["requested_by"] == "admin"
    assert body["fresh"] is False and (body["total"], body["processed"]) == (0, 0)
    assert (body["counts"], body["breakdown"], body["examples"], body["error"]) == ({}, {}, [], "")
    event = AuditEvent.objects.get(action="policy_replay.started")
    assert event.target_id == str(replay.pk) and (event.after or {})["limit"] == 500


def test_the_report_reads_back_once_the_task_has_run(
    api_as: Client,
    iam_admin: User,
    decision_log: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    monkeypatch.setattr(django_q.conf.Conf, "SYNC", True)
    version = candidate(iam_admin)
    client = api_as(iam_admin)
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(start_url(version), {})
    assert started.status_code == 201 and started.json()["status"] == "queued"
    report = client.get(detail_url(started.json()["id"])).json()
    assert (report["status"], report["total"], report["processed"], report["error"]) == ("done", 6, 6, "")
    assert report["counts"] == {"unchanged": 4, "allow_to_deny": 2, "deny_to_allow": 0, "errors": 0, "not_replayed": 0}
    assert report["breakdown"]["policy"] == {
        "forbid-crm-write": {
            "description": "Nobody writes to the CRM while it migrates.",
            "allow_to_deny": 2,
            "deny_to_allow": 0,
        }
    }
    assert list(report["breakdown"]["owner"].values()) == [
        {"username": "owner", "allow_to_deny": 2, "deny_to_allow": 0}
    ]
    assert [example["change"] for example in report["examples"]] == ["allow_to_deny"] * 2
    assert report["examples"][0]["new_reasons"] == ["forbid-crm-write"]
    assert report["fresh"] is True and report["finished_at"] is not None
    # The version's own page of the API says the same.
    assert client.get(f"/api/v1/policies/{version.pk}/").json()["replays"][0]["fresh"] is True


def test_without_a_limit_the_default_applies(api_as: Client, iam_admin: User, settings: Any) -> None:
    settings.RUNTIME_REPLAY_DEFAULT_LIMIT = 7
    response = api_as(iam_admin).post(start_url(candidate(iam_admin)))
    assert response.status_code == 201 and response.json()["limit"] == 7


def test_the_largest_limit_is_accepted(api_as: Client, iam_admin: User) -> None:
    response = api_as(iam_admin).post(start_url(candidate(iam_admin)), {"limit": settings.RUNTIME_REPLAY_MAX_LIMIT})
    assert response.status_code == 201 and response.json()["limit"] == settings.RUNTIME_REPLAY_MAX_LIMIT


@pytest.mark.parametrize("limit", [0, -1, settings.RUNTIME_REPLAY_MAX_LIMIT + 1, "100", True, None, 1.5, 2**70])
def test_a_limit_outside_its_bounds_is_a_400_naming_it(api_as: Client, iam_admin: User, limit: Any) -> None:
    response = api_as(iam_admin).post(start_url(candidate(iam_admin)), {"limit": limit})
    assert response.status_code == 400 and response["Content-Type"].startswith("application/problem+json")
    assert list(response.json()["errors"]) == ["limit"]
    assert not PolicyReplay.objects.exists() and not AuditEvent.objects.filter(action="policy_replay.started")


def test_a_version_that_no_longer_validates_is_a_422_naming_its_text(api_as: Client, iam_admin: User) -> None:
    version = candidate(iam_admin)
    # As if the schema had moved under the stored text (a save never stores an invalid one).
    PolicyVersion.objects.filter(pk=version.pk).update(cedar_text="forbid (principal, action, resource)")
    response = api_as(iam_admin).post(start_url(version), {"limit": 10})
    assert response.status_code == 422 and "cedar_text" in response.json()["errors"]
    assert not PolicyReplay.objects.exists()


def test_a_failed_run_shows_its_error(api_as: Client, iam_admin: User, reviewer: User) -> None:
    version = candidate(iam_admin)
    replay_id = api_as(iam_admin).post(start_url(version), {}).json()["id"]
    PolicyVersion.objects.filter(pk=version.pk).update(cedar_text="forbid (principal, action, resource)")
    assert policy_replay_run(replay_id) == "failed"
    report = api_as(reviewer).get(detail_url(replay_id)).json()
    assert report["status"] == "failed" and "does not validate" in report["error"] and report["fresh"] is False


def test_an_edit_after_the_run_makes_the_report_stale(api_as: Client, iam_admin: User) -> None:
    version = candidate(iam_admin)
    replay = replayed(version, iam_admin)
    client = api_as(iam_admin)
    assert client.get(detail_url(replay)).json()["fresh"] is True
    policies.policy_draft_update(
        actor=iam_admin, version=version, title=version.title, cedar_text=version.cedar_text + "\n// edited\n"
    )
    assert client.get(detail_url(replay)).json()["fresh"] is False
    assert client.get(REPLAYS).json()["results"][0]["fresh"] is False


def test_a_second_delivery_of_the_task_beside_the_first_leaves_one_consistent_report(
    iam_admin: User, decision_log: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = candidate(iam_admin)
    replay = replay_start(actor=iam_admin, version=version)
    real = engine.replay
    after_each_chunk: list[tuple[str, int, int]] = []

    def first_delivery(loaded: Any, **kwargs: Any) -> Any:
        on_progress = kwargs.pop("on_progress")

        def progress(done: int) -> None:
            if not after_each_chunk:
                # The queue hands the task out again while this run is still going; that one ends first.
                monkeypatch.setattr(engine, "replay", real)
                assert policy_replay_run(replay.pk) == "done"
            on_progress(done)
            row = PolicyReplay.objects.values_list("status", "processed", "total").get(pk=replay.pk)
            after_each_chunk.append(row)

        return real(loaded, on_progress=progress, **{**kwargs, "chunk_size": 1})

    monkeypatch.setattr(engine, "replay", first_delivery)
    assert policy_replay_run(replay.pk) == "done"
    # The straggler wrote nothing over the finished report: it reads "6 of 6" all along.
    assert after_each_chunk == [("done", 6, 6)] * 6
    assert AuditEvent.objects.filter(action="policy_replay.finished").count() == 1
    assert policy_replay_run(replay.pk) == "skipped"


def test_the_path_the_contract_first_named_starts_a_replay_too(api_as: Client, iam_admin: User) -> None:
    response = api_as(iam_admin).post(start_url(candidate(iam_admin), "replay"), {"limit": 3})
    assert response.status_code == 201 and response.json()["limit"] == 3


# --- Who may ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.AUDITOR])
def test_reviewers_and_auditors_read_replays_but_cannot_start_one(
    api_as: Client, make_user: Callable[..., User], iam_admin: User, role: str
) -> None:
    version = candidate(iam_admin)
    replay = replayed(version, iam_admin)
    client = api_as(make_user("reader", role))
    for path in ("replays", "replay"):
        refused = client.post(start_url(version, path), {"limit": 10})
        assert refused.status_code == 403 and refused["Content-Type"].startswith("application/problem+json")
    # Refused before the body is read: a bad limit is still a 403.
    assert client.post(start_url(version), {"limit": 0}).status_code == 403
    assert [row["id"] for row in client.get(REPLAYS).json()["results"]] == [replay.pk]
    detail = client.get(detail_url(replay))
    assert detail.status_code == 200 and detail.json()["candidate_number"] == version.number
    assert PolicyReplay.objects.count() == 1


@pytest.mark.parametrize("who", ["owner", "outsider"])
def test_business_users_see_no_replay_and_no_version(
    api_as: Client, iam_admin: User, decision_log: None, request: pytest.FixtureRequest, who: str
) -> None:
    version = candidate(iam_admin)
    replay = replayed(version, iam_admin)
    client = api_as(request.getfixturevalue(who))
    listed = client.get(REPLAYS)
    assert listed.status_code == 200 and listed.json()["results"] == []
    assert client.get(REPLAYS, {"candidate": version.pk}).json()["results"] == []
    hidden = client.get(detail_url(replay))
    assert hidden.status_code == 404 and hidden["Content-Type"].startswith("application/problem+json")
    for path in ("replays", "replay"):
        assert client.post(start_url(version, path), {"limit": 10}).status_code == 404
    assert PolicyReplay.objects.count() == 1


def test_anonymous_callers_are_refused(api_client: APIClient, iam_admin: User) -> None:
    version = candidate(iam_admin)
    replay = replayed(version, iam_admin)
    for response in (
        api_client.get(REPLAYS),
        api_client.get(detail_url(replay)),
        api_client.post(start_url(version), {"limit": 10}, format="json"),
    ):
        assert response.status_code == 401
        assert response["Content-Type"].startswith("application/problem+json")
    assert PolicyReplay.objects.count() == 1


def test_an_unknown_version_or_replay_is_a_404(api_as: Client, iam_admin: User) -> None:
    client = api_as(iam_admin)
    assert client.post("/api/v1/policies/999999/replays/", {"limit": 10}).status_code == 404
    assert client.get(detail_url(999999)).status_code == 404


# --- The list -------------------------------------------------------------------------------------


def test_the_list_is_newest_first_and_filters_by_version_and_status(
    api_as: Client, iam_admin: User, reviewer: User
) -> None:
    first, second = candidate(iam_admin), candidate(iam_admin, title="Another")
    old = replayed(first, iam_admin)
    failed = PolicyReplay.objects.create(
        candidate=first, candidate_sha256=first.sha256, requested_by=iam_admin, status=ReplayStatus.FAILED
    )
    other = replayed(second, iam_admin)
    client = api_as(reviewer)
    assert [row["id"] for row in client.get(REPLAYS).json()["results"]] == [other.pk, failed.pk, old.pk]
    of_first = client.get(REPLAYS, {"candidate": first.pk}).json()["results"]
    assert [row["id"] for row in of_first] == [failed.pk, old.pk]
    assert {row["candidate_number"] for row in of_first} == {first.number}
    done = client.get(REPLAYS, {"candidate": str(first.pk), "status": "done"}).json()["results"]
    assert [row["id"] for row in done] == [old.pk]
    assert client.get(REPLAYS, {"candidate": 999999}).json()["results"] == []
    bad_filters: list[dict[str, str | int]] = [{"candidate": "abc"}, {"candidate": 0}, {"status": "bogus"}]
    for bad in bad_filters:
        response = client.get(REPLAYS, bad)
        assert response.status_code == 400 and list(response.json()["errors"]) == list(bad)


def test_the_list_runs_the_same_queries_for_one_row_and_many(
    api_as: Client, make_user: Callable[..., User], reviewer: User
) -> None:
    client = api_as(reviewer)
    client.get(REPLAYS)  # once-per-process caches warm
    counts = []
    for size in (1, 6):
        while PolicyReplay.objects.count() < size:
            author = make_user(None, Role.IAM_ADMIN)
            replayed(candidate(author, title=f"Draft by {author.username}"), author)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(REPLAYS)
        assert response.status_code == 200 and len(response.json()["results"]) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]
