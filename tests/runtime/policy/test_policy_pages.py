"""The policy pages: who may read them (IAM admins, reviewers, auditors) and who may act (IAM
admins), the draft editor that keeps what was typed and points at each error's line, the diff
against the enforced version, replay reports, and a list page with a fixed number of queries."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.models import User
from governance.roles import Role
from runtime.models import PolicyReplay, PolicyStatus, PolicyVersion
from runtime.policy.source import errors_of
from runtime.services.policies import policy_draft_create
from runtime.services.replays import replay_run, replay_start
from tests.runtime.policy.support import PolicyWorld, build_policy_world

pytestmark = pytest.mark.django_db

LIST = "/runtime/policies/"
NEW = "/runtime/policies/new/"
ADDED_POLICY = """
@id("forbid-crm-write")
@description("Nobody writes to the CRM while it migrates.")
forbid (principal, action, resource is Scope) when { resource.code == "crm:write" };
"""
# A misspelled attribute: it parses, and strict validation refuses it.
TYPO_POLICY = """
@id("forbid-typo")
@description("Has a typo.")
forbid (principal is Integration, action, resource)
when { principal.stauts == "suspended" };
"""
POLICY_FORM = re.compile(r'<form[^>]*action="/runtime/policies/')


def enforced() -> PolicyVersion:
    return PolicyVersion.objects.get(status=PolicyStatus.ENFORCED)


def draft(actor: User, text: str = "", title: str = "Freeze CRM writes") -> PolicyVersion:
    base = enforced()
    return policy_draft_create(actor=actor, title=title, cedar_text=base.cedar_text + text, based_on=base)


def detail_url(version: PolicyVersion) -> str:
    return f"/runtime/policies/{version.pk}/"


def replay_url(replay: PolicyReplay) -> str:
    return f"/runtime/policies/{replay.candidate_id}/replays/{replay.pk}/"


@pytest.fixture
def world(owner: User) -> PolicyWorld:
    return build_policy_world(owner)


@pytest.fixture
def finished_replay(iam_admin: User, world: PolicyWorld) -> PolicyReplay:
    """A draft that forbids CRM writes, replayed over 2 read and 3 write decisions."""
    from runtime.policy import pdp

    pdp.decide([world.request("read")] * 2 + [world.request("write")] * 3, point="api")
    replay = replay_start(actor=iam_admin, version=draft(iam_admin, ADDED_POLICY))
    done = replay_run(replay_id=replay.pk)
    assert done is not None and done.status == "done"
    return done


def pages(replay: PolicyReplay) -> list[str]:
    return [LIST, detail_url(replay.candidate), replay_url(replay)]


# --- Who sees what ---------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client: Any, finished_replay: PolicyReplay) -> None:
    for path in [*pages(finished_replay), NEW]:
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response["Location"], path


@pytest.mark.parametrize("role", ["reviewer", "auditor"])
def test_reviewers_and_auditors_read_every_page_without_any_form(
    web_as: Callable[[User], Any], finished_replay: PolicyReplay, request: pytest.FixtureRequest, role: str
) -> None:
    client = web_as(request.getfixturevalue(role))
    for path in pages(finished_replay):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        assert not POLICY_FORM.search(html), path
        assert "Ask a second IAM admin" not in html and "Save the draft" not in html
    assert client.get(NEW).status_code == 403


def test_iam_admins_get_the_editor_and_the_buttons(
    web_as: Callable[[User], Any], iam_admin: User, finished_replay: PolicyReplay
) -> None:
    client = web_as(iam_admin)
    for path in pages(finished_replay):
        assert client.get(path).status_code == 200, path
    html = client.get(detail_url(finished_replay.candidate)).content.decode()
    assert "Save the draft" in html and "Shadow (log only)" in html and "Retire" in html
    assert "Replay the last N decisions" in html
    assert "New draft from enforced (v1)" in client.get(LIST).content.decode()


def test_business_users_and_people_without_a_role_get_404_everywhere(
    web_as: Callable[[User], Any], owner: User, make_user: Callable[..., User], finished_replay: PolicyReplay
) -> None:
    nobody = make_user("nobody")
    gateway = make_user("gateway", Role.RESOURCE_SERVER)
    version = finished_replay.candidate
    posts = ["tests", "shadow", "retire", "enforce", "replays"]
    for user in (owner, nobody, gateway):
        client = web_as(user)
        for path in [*pages(finished_replay), NEW]:
            assert client.get(path).status_code == 404, (user, path)
        for action in posts:
            assert client.post(f"{detail_url(version)}{action}/").status_code == 404, (user, action)
        assert client.post(detail_url(version), {"title": "x", "cedar_text": "x"}).status_code == 404
        assert client.post(f"{LIST}rollback/").status_code == 404
    version.refresh_from_db()
    assert version.status == PolicyStatus.DRAFT and version.replays.count() == 1


def test_a_reviewer_cannot_move_a_version(
    web_as: Callable[[User], Any], reviewer: User, iam_admin: User, world: PolicyWorld
) -> None:
    version = draft(iam_admin)
    client = web_as(reviewer)
    assert client.post(f"{detail_url(version)}shadow/").status_code == 403
    assert client.post(f"{detail_url(version)}replays/", {"limit": 10}).status_code == 403
    tests_run_at = version.tests_run_at
    assert client.post(f"{detail_url(version)}tests/").status_code == 403
    version.refresh_from_db()
    assert version.status == PolicyStatus.DRAFT and not version.replays.exists()
    assert version.tests_run_at == tests_run_at


# --- The editor ---------------------------------------------------------------------------------------


def test_a_typo_comes_back_with_the_text_kept_and_its_line_and_column(
    web_as: Callable[[User], Any], iam_admin: User, world: PolicyWorld
) -> None:
    version = draft(iam_admin)
    typed = version.cedar_text + TYPO_POLICY
    [error] = errors_of(typed)
    response = web_as(iam_admin).post(detail_url(version), {"title": "With a typo", "cedar_text": typed, "tests": "[]"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "principal.stauts" in html and "With a typo" in html
    assert f"line {error.line}, column {error.column}" in html and "forbid-typo" in html
    # The error stands beside its numbered line.
    assert re.search(rf'id="line-{error.line}" class="has-error"', html)
    version.refresh_from_db()
    assert "stauts" not in version.cedar_text and version.title == "Freeze CRM writes"


def test_tests_that_are_not_json_come_back_with_their_position(
    web_as: Callable[[User], Any], iam_admin: User, world: PolicyWorld
) -> None:
    version = draft(iam_admin)
    response = web_as(iam_admin).post(
        detail_url(version), {"title": "T", "cedar_text": version.cedar_text, "tests": '[{"name": }]'}
    )
    assert response.status_code == 400
    assert "Not valid JSON: line 1, column 11" in response.content.decode()


def test_tests_nested_too_deep_come_back_as_an_error_with_everything_kept(
    web_as: Callable[[User], Any], iam_admin: User, world: PolicyWorld
) -> None:
    version = draft(iam_admin)
    typed = version.cedar_text + ADDED_POLICY
    tests = "[" * 100_000 + "]" * 100_000
    for path in (detail_url(version), NEW):
        response = web_as(iam_admin).post(path, {"title": "Deep tests", "cedar_text": typed, "tests": tests})
        assert response.status_code == 400, path
        html = response.content.decode()
        assert "The tests nest too deeply" in html and "forbid-crm-write" in html and "Deep tests" in html
    assert PolicyVersion.objects.count() == 2


def test_text_nested_too_deep_comes_back_with_its_place_and_the_text_kept(
    web_as: Callable[[User], Any], iam_admin: User, world: PolicyWorld
) -> None:
    version = draft(iam_admin)
    deep = '\n@id("deep")\n@description("Too deep.")\nforbid (principal, action, resource)\nwhen { ' + "(" * 2000
    typed = (version.cedar_text + deep + "true" + ")" * 2000 + " };\n").replace("\n", "\r\n")
    response = web_as(iam_admin).post(detail_url(version), {"title": "Deep", "cedar_text": typed, "tests": "[]"})
    assert response.status_code == 400
    html = response.content.decode()
    when_line = version.cedar_text.count("\n") + 5
    assert f"line {when_line}, column {len('when { ') + 32}" in html and "(" * 2000 in html
    version.refresh_from_db()
    assert "Too deep." not in version.cedar_text and version.title == "Freeze CRM writes"


def test_saving_a_draft_stores_it_and_shows_the_added_line_in_the_diff(
    web_as: Callable[[User], Any], iam_admin: User, world: PolicyWorld
) -> None:
    version = draft(iam_admin)
    client = web_as(iam_admin)
    response = client.post(
        detail_url(version),
        {"title": "Freeze CRM writes", "cedar_text": version.cedar_text + ADDED_POLICY, "tests": "[]"},
    )
    assert response.status_code == 302
    html = client.get(detail_url(version)).content.decode()
    added = (
        '<li class="add"><span class="visually-hidden">added: </span><code>+@id(&quot;forbid-crm-write&quot;)</code>'
    )
    assert added in html
    assert "--- v1 (enforced)" in html


def test_a_new_draft_starts_from_the_enforced_text(
    web_as: Callable[[User], Any], iam_admin: User, world: PolicyWorld
) -> None:
    client = web_as(iam_admin)
    html = client.get(NEW).content.decode()
    assert "permit-within-active-grants" in html
    response = client.post(NEW, {"title": "Stricter", "cedar_text": enforced().cedar_text + ADDED_POLICY, "tests": ""})
    created = PolicyVersion.objects.get(title="Stricter")
    assert response.status_code == 302 and response["Location"] == detail_url(created)
    assert created.status == PolicyStatus.DRAFT and created.based_on == enforced()


def test_the_text_of_an_enforced_version_is_read_only(web_as: Callable[[User], Any], iam_admin: User) -> None:
    html = web_as(iam_admin).get(detail_url(enforced())).content.decode()
    assert "Save the draft" not in html and "<textarea" not in html.split('id="h-text"')[1].split("</section>")[0]
    assert "This is the enforced version." in html


# --- Actions and blockers --------------------------------------------------------------------------------


def test_the_enforcement_button_is_hidden_while_blocked(
    web_as: Callable[[User], Any], iam_admin: User, world: PolicyWorld
) -> None:
    version = draft(iam_admin, ADDED_POLICY)
    html = web_as(iam_admin).get(detail_url(version)).content.decode()
    assert "Ask a second IAM admin to enforce" not in html
    assert "No replay of this exact text has finished" in html


def test_a_fresh_replay_unblocks_the_enforcement_button(
    web_as: Callable[[User], Any], iam_admin: User, finished_replay: PolicyReplay
) -> None:
    html = web_as(iam_admin).get(detail_url(finished_replay.candidate)).content.decode()
    assert "Ask a second IAM admin to enforce" in html and "It cannot be put forward" not in html
    assert "fresh: it speaks for the text as it stands" in html


def test_shadow_and_retire_buttons_move_the_version(
    web_as: Callable[[User], Any], iam_admin: User, world: PolicyWorld
) -> None:
    version = draft(iam_admin, ADDED_POLICY)
    client = web_as(iam_admin)
    assert client.post(f"{detail_url(version)}shadow/").status_code == 302
    version.refresh_from_db()
    assert version.status == PolicyStatus.SHADOW
    html = client.get(detail_url(version)).content.decode()
    assert "Shadow (log only)</button>" not in html and "Save the draft" not in html
    client.post(f"{detail_url(version)}retire/")
    version.refresh_from_db()
    assert version.status == PolicyStatus.RETIRED


def test_a_refused_enforcement_request_keeps_the_justification(
    web_as: Callable[[User], Any], iam_admin: User, world: PolicyWorld
) -> None:
    version = draft(iam_admin, ADDED_POLICY)
    response = web_as(iam_admin).post(f"{detail_url(version)}enforce/", {"justification": "CRM migration week"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "CRM migration week" in html and "No replay of this exact text has finished" in html
    version.refresh_from_db()
    assert version.change_request_id is None


def test_the_replay_form_starts_a_replay_and_refuses_a_bad_limit(
    web_as: Callable[[User], Any], iam_admin: User, world: PolicyWorld
) -> None:
    version = draft(iam_admin, ADDED_POLICY)
    client = web_as(iam_admin)
    response = client.post(f"{detail_url(version)}replays/", {"limit": 0})
    assert response.status_code == 400 and "greater than or equal to 1" in response.content.decode()
    assert not version.replays.exists()
    response = client.post(f"{detail_url(version)}replays/", {"limit": 500})
    replay = version.replays.get()
    assert response.status_code == 302 and response["Location"] == replay_url(replay)
    assert replay.limit == 500


# --- Replay reports --------------------------------------------------------------------------------------


def test_the_replay_report_shows_counts_breakdowns_and_examples(
    web_as: Callable[[User], Any], iam_admin: User, finished_replay: PolicyReplay, world: PolicyWorld
) -> None:
    html = web_as(iam_admin).get(replay_url(finished_replay)).content.decode()
    assert "<strong>3</strong> allow → deny" in html and "<strong>2</strong> unchanged" in html
    assert "<code>forbid-crm-write</code>" in html and "Nobody writes to the CRM" in html
    assert f'href="/inventory/{world.integration.pk}/"' in html and "Support agent" in html
    assert "owner" in html and "permit-within-active-grants" in html
    assert 'http-equiv="refresh"' not in html


def test_a_running_replay_refreshes_itself(web_as: Callable[[User], Any], iam_admin: User, world: PolicyWorld) -> None:
    replay = replay_start(actor=iam_admin, version=draft(iam_admin, ADDED_POLICY))
    html = web_as(iam_admin).get(replay_url(replay)).content.decode()
    assert 'http-equiv="refresh" content="3"' in html and "Queued" in html


def test_a_replay_of_another_version_is_not_found_under_this_one(
    web_as: Callable[[User], Any], iam_admin: User, finished_replay: PolicyReplay
) -> None:
    other = enforced()
    assert web_as(iam_admin).get(f"/runtime/policies/{other.pk}/replays/{finished_replay.pk}/").status_code == 404


# --- The list -------------------------------------------------------------------------------------------


def _queries(client: Any, path: str) -> int:
    client.get(path)  # once-per-process caches warm
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_the_list_shows_every_version_in_a_fixed_number_of_queries(
    web_as: Callable[[User], Any], iam_admin: User, world: PolicyWorld
) -> None:
    client = web_as(iam_admin)
    one = _queries(client, LIST)
    for number in range(4):
        draft(iam_admin, title=f"Draft {number}")
    assert _queries(client, LIST) == one
    html = client.get(LIST).content.decode()
    assert all(f"Draft {number}" in html for number in range(4)) and ">admin, " in html


# --- Enforcing and rolling back through the pages ----------------------------------------------------------


@pytest.fixture
def second_admin(make_user: Callable[..., User]) -> User:
    return make_user("second-admin", Role.IAM_ADMIN)


def test_asking_for_enforcement_then_rolling_back_from_the_list(
    web_as: Callable[[User], Any],
    iam_admin: User,
    second_admin: User,
    reviewer: User,
    finished_replay: PolicyReplay,
) -> None:
    from approvals.models import AccessRequest
    from approvals.services import default_workflows_ensure, request_decide

    default_workflows_ensure()
    version = finished_replay.candidate
    client = web_as(iam_admin)
    response = client.post(f"{detail_url(version)}enforce/", {"justification": "CRM migration week"})
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.change_request_id is not None
    html = client.get(LIST).content.decode()
    assert f'href="/approvals/requests/{version.change_request_id}/">#{version.change_request_id}</a>' in html
    assert '<span class="badge-status">open</span>' in html
    # Nothing was enforced before v1: no rollback is offered yet.
    assert "Roll back to" not in html

    pending = AccessRequest.objects.get(pk=version.change_request_id)
    request_decide(actor=second_admin, request=pending, decision="approve")
    assert enforced() == version
    assert "Roll back to v1</button>" in web_as(iam_admin).get(LIST).content.decode()
    assert "Roll back to" not in web_as(reviewer).get(LIST).content.decode()
    response = web_as(iam_admin).post(f"{LIST}rollback/", {"justification": "The migration slipped"})
    assert response.status_code == 302
    rollback = AccessRequest.objects.filter(type="policy_change").latest("pk")
    assert rollback.payload["action"] == "rollback" and rollback.justification == "The migration slipped"


def test_a_refused_rollback_shows_why_and_keeps_the_justification(
    web_as: Callable[[User], Any], iam_admin: User
) -> None:
    response = web_as(iam_admin).post(f"{LIST}rollback/", {"justification": "Back to the old rules"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Back to the old rules" in html and "nothing to roll back to" in html


def test_the_navigation_offers_the_policy_pages_to_those_who_may_read_them(
    client: Any, iam_admin: User, auditor: User, owner: User
) -> None:
    for person, shown in ((iam_admin, True), (auditor, True), (owner, False)):
        client.force_login(person)
        assert ('href="/runtime/policies/"' in client.get("/").content.decode()) is shown, person.username
