"""The decisions page: the decision log for IAM admins, reviewers and auditors (anyone else is
answered 404), filterable, in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance.models import User
from inventory.models import Grant, Integration
from runtime.models import PolicyDecision, PolicyStatus, PolicyVersion
from runtime.policy import entities, pdp
from runtime.policy.source import text_sha256
from tests.runtime.policy.support import WEEKDAY_MORNING, PolicyWorld, build_policy_world

pytestmark = pytest.mark.django_db

URL = reverse("runtime:decisions")
PAUSE_ALL = '\n@id("pause-everything")\n@description("Pause.")\nforbid (principal, action, resource);\n'


@pytest.fixture
def world(owner: User) -> PolicyWorld:
    return build_policy_world(owner)


def decide(
    world: PolicyWorld,
    scope: str = "read",
    *,
    point: str = "api",
    trace: str = "",
    integration: Integration | None = None,
    **values: Any,
) -> PolicyDecision:
    """One decision as the decision API or the token endpoint makes it."""
    request = world.request(scope, **values)
    if integration is not None:
        loaded = entities.load_integrations([integration.pk], WEEKDAY_MORNING)[integration.pk]
        request = pdp.PolicyRequest(integration=loaded, action=request.action, scope=request.scope, at=request.at)
    [outcome] = pdp.decide([request], point=point, trace=trace)
    return PolicyDecision.objects.get(decision_id=outcome.decision_id)


def add_version(number: int, status: str, extra: str = PAUSE_ALL) -> PolicyVersion:
    """A version that also forbids everything (so it disagrees with every allow)."""
    if status == PolicyStatus.ENFORCED:
        PolicyVersion.objects.filter(status=PolicyStatus.ENFORCED).update(status=PolicyStatus.RETIRED)
    text = PolicyVersion.objects.get(number=1).cedar_text + extra
    return PolicyVersion.objects.create(
        number=number, title=status, cedar_text=text, sha256=text_sha256(text), status=status
    )


def listed(client: Any, **params: Any) -> list[str]:
    """The decision ids the page lists for these filters, newest first."""
    response = client.get(URL, params)
    assert response.status_code == 200
    return [row.decision_id for row in response.context["page"].object_list]


# --- Who sees it ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["reviewer", "auditor", "iam_admin"])
def test_reviewers_auditors_and_iam_admins_read_the_log(
    role: str, world: PolicyWorld, web_as: Callable[[User], Any], request: pytest.FixtureRequest
) -> None:
    add_version(2, PolicyStatus.SHADOW)
    row = decide(world, trace="req-42")

    response = web_as(request.getfixturevalue(role)).get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="{reverse("inventory:detail", args=[world.integration.pk])}">Support agent</a>' in page
    assert f"<td>{world.owner.username}</td>" in page
    assert "<code>exchange_token</code>" in page and "<code>Scope::&quot;crm:read&quot;</code>" in page
    assert '<span class="ok">Allow</span>' in page and "<code>permit-within-active-grants</code>" in page
    assert f'href="{reverse("runtime:policy-detail", args=[row.policy_version_id])}">v1</a>' in page
    assert 'v2: <strong class="warn">deny</strong> <code>pause-everything</code>' in page
    assert f"{row.latency_us} µs" in page and "<code>req-42</code>" in page


@pytest.mark.parametrize("who", ["owner", "outsider"])
def test_business_users_get_404(
    who: str, world: PolicyWorld, web_as: Callable[[User], Any], request: pytest.FixtureRequest
) -> None:
    decide(world)
    assert web_as(request.getfixturevalue(who)).get(URL).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client: Any) -> None:
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_activity_page_links_to_it_for_those_who_may_read_it(
    web_as: Callable[[User], Any], auditor: User, owner: User
) -> None:
    assert f'href="{URL}"' in web_as(auditor).get(reverse("runtime:activity")).content.decode()
    assert f'href="{URL}"' not in web_as(owner).get(reverse("runtime:activity")).content.decode()


# --- Filters ----------------------------------------------------------------------------------------


def test_filters_by_integration_decision_action_and_point(
    world: PolicyWorld, web_as: Callable[[User], Any], reviewer: User, owner: User
) -> None:
    other = Integration.objects.create(
        name="Other agent", kind="agent", purpose="Other.", business_owner=owner, status="active"
    )
    Grant.objects.create(integration=other, scope=world.scopes["read"], source_type="tests", source_id="2")
    allowed = decide(world)
    denied = decide(world, "admin", point="token_exchange")
    used = decide(world, action="use_scope")
    elsewhere = decide(world, integration=other)
    client = web_as(reviewer)

    assert listed(client, integration=other.pk) == [elsewhere.decision_id]
    assert listed(client, integration=999_999) == []
    assert listed(client, decision="deny") == [denied.decision_id]
    assert listed(client, action="use_scope") == [used.decision_id]
    assert listed(client, point="token_exchange") == [denied.decision_id]
    assert listed(client, decision="allow", action="exchange_token", point="api") == [
        elsewhere.decision_id,
        allowed.decision_id,
    ]


def test_filters_by_version_and_by_shadow_disagreement(
    world: PolicyWorld, web_as: Callable[[User], Any], auditor: User
) -> None:
    before = decide(world)  # v1 enforced, no shadow
    add_version(2, PolicyStatus.SHADOW)
    disagreeing = decide(world)  # v1 allows, v2 would deny
    agreeing = decide(world, "admin")  # both deny
    add_version(3, PolicyStatus.ENFORCED, extra="")  # v3 enforced (= v1's text), v2 still in shadow
    by_v3 = decide(world, "admin")
    client = web_as(auditor)

    assert listed(client, version=3) == [by_v3.decision_id]
    assert listed(client, version=1) == [agreeing.decision_id, disagreeing.decision_id, before.decision_id]
    assert listed(client, shadow_disagrees="true") == [disagreeing.decision_id]
    assert listed(client, shadow_disagrees="false") == [by_v3.decision_id, agreeing.decision_id, before.decision_id]


def test_filters_by_date_range(world: PolicyWorld, web_as: Callable[[User], Any], iam_admin: User) -> None:
    early = decide(world, at=WEEKDAY_MORNING)
    late = decide(world, at=WEEKDAY_MORNING + timedelta(hours=3))
    client = web_as(iam_admin)
    middle = (WEEKDAY_MORNING + timedelta(hours=1)).isoformat()

    assert listed(client, since=middle) == [late.decision_id]
    assert listed(client, until=middle) == [early.decision_id]
    assert listed(client) == [late.decision_id, early.decision_id]


def test_a_malformed_filter_is_named_on_the_page(web_as: Callable[[User], Any], reviewer: User) -> None:
    response = web_as(reviewer).get(URL, {"shadow_disagrees": "maybe", "version": "-2"})
    assert response.status_code == 200
    assert set(response.context["filter"].errors) == {"shadow_disagrees", "version"}


# --- Queries -----------------------------------------------------------------------------------------


def page_queries(client: Any) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    assert response.status_code == 200
    return len(queries)


def test_the_page_runs_a_fixed_number_of_queries(
    world: PolicyWorld, web_as: Callable[[User], Any], reviewer: User, make_user: Callable[..., User]
) -> None:
    client = web_as(reviewer)
    decide(world)
    few = page_queries(client)

    add_version(2, PolicyStatus.SHADOW)
    for number in range(8):
        other = Integration.objects.create(
            name=f"Agent {number}", kind="agent", purpose="More.", business_owner=make_user(), status="active"
        )
        decide(world, "admin", integration=other, point="token_exchange", trace=f"t{number}")
        decide(world, at=WEEKDAY_MORNING + timedelta(minutes=number))
    add_version(3, PolicyStatus.ENFORCED, extra="")
    decide(world)

    assert PolicyDecision.objects.count() == 18
    assert page_queries(client) == few
