"""Evidence of the runtime's controls, on crafted data: token issuances of the last 30 days by
lifetime and by deciding policy, long-lived credentials still recorded, and policy versions put
in force after a replay or a log-only period.

Integrations are registered through the inventory's services; token events are written as the
token endpoint's log appends them (``tests.runtime.activity_support``); policy versions go
through drafting, replay, the enforcement request and a second IAM admin's approval."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.utils import timezone

from approvals.services import request_decide
from governance.controls.registry import Figure, Status, Threshold, control, evaluate
from governance.models import User
from governance.roles import Role
from inventory import services as inventory_services
from inventory.models import Integration
from runtime.models import PolicyReplay, PolicyVersion, TokenEvent
from runtime.services import policies
from tests.runtime.activity_support import make_integration, token_event
from tests.runtime.policy.versions_support import replayed, stricter_tests, stricter_text

pytestmark = pytest.mark.django_db

__all__ = ["make_integration"]  # a fixture, used by name


def rows(figure: Figure) -> list[dict[str, Any]]:
    """The records behind ``figure``, as the evidence pack reads them."""
    assert figure.records is not None
    return [dict(row) for row in figure.records()]


def figures(control_id: str, thresholds: dict[str, Threshold] | None = None) -> dict[str, Figure]:
    registered = control(control_id)
    assert registered is not None
    return {figure.key: figure for figure in evaluate(registered, thresholds or {}).figures}


@pytest.fixture
def bots(make_integration: Callable[..., Integration], owner: User) -> list[Integration]:
    return [make_integration(owner, name="Notes bot"), make_integration(owner, name="Sales bot")]


def issue(integration: Integration, count: int, *, minutes: int = 10, **fields: Any) -> list[TokenEvent]:
    return [token_event(integration, expires_in=timedelta(minutes=minutes), **fields) for _ in range(count)]


# --- Just-in-time short-lived credentials --------------------------------------------------------


def test_without_issuance_the_share_of_short_lived_tokens_is_not_applicable(bots: list[Integration]) -> None:
    token_event(bots[0], outcome="refused")
    found = figures("jit-credentials")
    assert found["jit-credentials.short_lived"].value is None
    assert found["jit-credentials.short_lived"].status == Status.NOT_APPLICABLE
    assert "No access token was issued in the last 30 days" in found["jit-credentials.short_lived"].detail


def test_tokens_living_longer_than_fifteen_minutes_are_counted_against_the_share(bots: list[Integration]) -> None:
    issue(bots[0], 8, minutes=10)
    issue(bots[0], 1, minutes=15)
    issue(bots[1], 1, minutes=20)
    token_event(bots[1], outcome="refused")  # a refusal issues nothing
    found = figures("jit-credentials")
    short = found["jit-credentials.short_lived"]
    assert short.value == 90.0 and short.status == Status.NOT_MET
    assert short.detail.startswith("9 of 10 access tokens issued in the last 30 days lived 15 minutes or less")
    assert "1 lived longer" in short.detail
    # An organisation content with nine in ten meets it.
    own = figures("jit-credentials", {"jit-credentials.short_lived": Threshold(met=90)})
    assert own["jit-credentials.short_lived"].status == Status.MET


def test_one_long_token_in_two_hundred_is_partly_met_and_every_short_one_met(bots: list[Integration]) -> None:
    issue(bots[0], 199)
    issue(bots[1], 1, minutes=60)
    assert figures("jit-credentials")["jit-credentials.short_lived"].status == Status.PARTLY
    TokenEvent.objects.filter(expires_at__gt=timezone.now() + timedelta(minutes=15)).delete()
    short = figures("jit-credentials")["jit-credentials.short_lived"]
    assert (short.value, short.status) == (100.0, Status.MET)


def test_issuances_older_than_thirty_days_are_left_out(bots: list[Integration]) -> None:
    with time_machine.travel(timezone.now() - timedelta(days=31), tick=False):
        issue(bots[0], 3, minutes=60)
    issue(bots[0], 2)
    short = figures("jit-credentials")["jit-credentials.short_lived"]
    assert short.value == 100.0 and short.detail.startswith("2 of 2")


def test_short_lived_records_are_the_integrations_with_their_counts(bots: list[Integration]) -> None:
    issue(bots[0], 3)
    issue(bots[0], 1, minutes=30)
    issue(bots[1], 2)
    records = rows(figures("jit-credentials")["jit-credentials.short_lived"])
    assert records == [
        {"integration_id": bots[0].pk, "integration": "Notes bot", "issued": 4, "short_lived": 3, "longer": 1},
        {"integration_id": bots[1].pk, "integration": "Sales bot", "issued": 2, "short_lived": 2, "longer": 0},
    ]


def test_issuance_figures_link_to_the_window_s_issuances_on_the_activity_page(
    bots: list[Integration], auditor: User, web_as: Any
) -> None:
    with time_machine.travel(timezone.now() - timedelta(days=31), tick=False):
        [old] = issue(bots[0], 1)
    recent = issue(bots[1], 2)
    token_event(bots[1], outcome="refused", error="invalid_scope")
    found = {**figures("jit-credentials"), **figures("policy-as-code")}
    url = found["jit-credentials.short_lived"].records_url
    assert found["policy-as-code.enforced_decisions"].records_url == url
    parts = urlsplit(url)
    assert parts.path == "/runtime/activity/"
    assert parse_qs(parts.query)["outcome"] == ["issued"]
    page = web_as(auditor).get(url)
    assert page.status_code == 200
    listed = page.context["page"].object_list
    assert {event.pk for event in listed} == {event.pk for event in recent}
    assert old.pk not in {event.pk for event in listed}


@pytest.fixture
def credentials(make_integration: Callable[..., Integration], owner: User, iam_admin: User) -> dict[str, Any]:
    """A key without expiry, a certificate still valid, one expired, a workload identity token,
    and a key on an integration that was retired."""
    now = timezone.now()
    keeping = make_integration(
        owner,
        name="Keeper",
        credentials=[
            {"type": "api_key", "identifier": "key-id-0001"},
            {"type": "certificate", "identifier": "cert-0001", "expires_at": now + timedelta(days=90)},
            {"type": "oauth_client", "identifier": "client-0001", "expires_at": now - timedelta(days=1)},
            {"type": "workload_identity_token", "identifier": "spiffe://example.org/keeper"},
        ],
    )
    gone = make_integration(owner, name="Gone", credentials=[{"type": "api_key", "identifier": "key-id-0002"}])
    inventory_services.integration_retire(actor=iam_admin, integration=gone, reason="Replaced.")
    return {"keeping": keeping, "gone": gone}


def test_long_lived_credentials_still_recorded_are_counted(credentials: dict[str, Any]) -> None:
    found = figures("jit-credentials")
    standing = found["jit-credentials.standing_credentials"]
    assert standing.value == 2
    assert standing.status == Status.PARTLY
    assert standing.detail.startswith("2 long-lived credentials") and "1 have no expiry date" in standing.detail
    records = rows(standing)
    assert [(row["type"], row["identifier"]) for row in records] == [
        ("api_key", "key-id-0001"),
        ("certificate", "cert-0001"),
    ]
    assert {row["integration_id"] for row in records} == {credentials["keeping"].pk}
    own = figures("jit-credentials", {"jit-credentials.standing_credentials": Threshold(met=2)})
    assert own["jit-credentials.standing_credentials"].status == Status.MET


def test_without_long_lived_credentials_the_count_is_met(bots: list[Integration]) -> None:
    standing = figures("jit-credentials")["jit-credentials.standing_credentials"]
    assert (standing.value, standing.status) == (0, Status.MET)
    assert standing.records_url == "/inventory/?evidence=standing_credentials"


def test_the_standing_credentials_link_lists_the_integrations_holding_them(
    credentials: dict[str, Any], auditor: User, web_as: Any
) -> None:
    url = figures("jit-credentials")["jit-credentials.standing_credentials"].records_url
    page = web_as(auditor).get(url)
    assert page.status_code == 200
    assert credentials["keeping"].pk in {integration.pk for integration in page.context["page"].object_list}


# --- Policy as code ------------------------------------------------------------------------------


def test_issuances_without_an_enforced_policy_decision_are_counted(bots: list[Integration]) -> None:
    issue(bots[0], 19, policy_version=1, policy_decisions=["d1"])
    issue(bots[1], 1)  # issued before any policy decided it
    enforced = figures("policy-as-code")["policy-as-code.enforced_decisions"]
    assert enforced.value == 95.0 and enforced.status == Status.NOT_MET
    assert enforced.detail.startswith("19 of 20 access tokens issued in the last 30 days were decided by")
    assert "1 were issued without one" in enforced.detail
    assert rows(enforced) == [
        {
            "integration_id": bots[0].pk,
            "integration": "Notes bot",
            "issued": 19,
            "decided_by_policy": 19,
            "without_policy": 0,
        },
        {
            "integration_id": bots[1].pk,
            "integration": "Sales bot",
            "issued": 1,
            "decided_by_policy": 0,
            "without_policy": 1,
        },
    ]
    own = figures("policy-as-code", {"policy-as-code.enforced_decisions": Threshold(met=95)})
    assert own["policy-as-code.enforced_decisions"].status == Status.MET


@pytest.fixture
def admins(make_user: Callable[..., User], iam_admin: User) -> dict[str, User]:
    return {
        "author": iam_admin,
        "asker": make_user("admin2", Role.IAM_ADMIN),
        "approver": make_user("admin3", Role.IAM_ADMIN),
    }


def put_in_force(admins: dict[str, User], *, title: str, extra: str = "", shadow: bool = False) -> PolicyVersion:
    """Draft, replay (and maybe run log-only), ask, and have a second IAM admin approve."""
    draft = policies.policy_draft_create(
        actor=admins["author"], title=title, cedar_text=stricter_text() + extra, tests=stricter_tests()
    )
    if shadow:
        policies.policy_shadow(actor=admins["author"], version=draft)
    replayed(draft, admins["author"])
    req = policies.policy_enforcement_request(actor=admins["asker"], version=draft, justification="Tighter.")
    request_decide(actor=admins["approver"], request=req, decision="approve")
    draft.refresh_from_db()
    assert draft.status == "enforced"
    return draft


def test_only_the_shipped_version_in_force_is_not_applicable(db: Any) -> None:
    tried = figures("policy-as-code")["policy-as-code.tried_before_enforcing"]
    assert tried.value is None and tried.status == Status.NOT_APPLICABLE
    assert "Only the shipped policy version has been in force. v1 is in force since" in tried.detail


def test_versions_put_in_force_after_a_replay_or_log_only_meet_the_figure(admins: dict[str, User]) -> None:
    first = put_in_force(admins, title="Vendors get no admin scope")
    second = put_in_force(admins, title="Same, noted", extra="\n// reviewed\n", shadow=True)
    tried = figures("policy-as-code")["policy-as-code.tried_before_enforcing"]
    assert (tried.value, tried.status) == (100.0, Status.MET)
    assert tried.detail.startswith("2 of 2 policy versions put in force were first replayed")
    assert "(2) or run log-only (1)" in tried.detail and f"v{second.number} is in force" in tried.detail
    records = rows(tried)
    assert [(row["number"], row["status"], row["replayed"], row["shadowed"]) for row in records] == [
        (first.number, "retired", True, False),
        (second.number, "enforced", True, True),
    ]
    assert records[1]["approved_by__username"] == "admin3"


def test_a_version_in_force_without_replay_or_log_only_is_counted_against(admins: dict[str, User]) -> None:
    put_in_force(admins, title="Vendors get no admin scope")
    unreplayed = put_in_force(admins, title="Same, noted", extra="\n// reviewed\n")
    # As if it had been put in force before replays were required: its replay is gone.
    PolicyReplay.objects.filter(candidate=unreplayed).delete()
    tried = figures("policy-as-code")["policy-as-code.tried_before_enforcing"]
    assert (tried.value, tried.status) == (50.0, Status.NOT_MET)
    own = figures("policy-as-code", {"policy-as-code.tried_before_enforcing": Threshold(met=50)})
    assert own["policy-as-code.tried_before_enforcing"].status == Status.MET


def test_the_policy_versions_figure_links_to_the_policies_page(
    admins: dict[str, User], auditor: User, web_as: Any
) -> None:
    version = put_in_force(admins, title="Vendors get no admin scope")
    url = figures("policy-as-code")["policy-as-code.tried_before_enforcing"].records_url
    assert url == "/runtime/policies/"
    page = web_as(auditor).get(url)
    assert page.status_code == 200 and version.title in page.content.decode()


@pytest.mark.parametrize("count", [1, 60])
def test_runtime_evidence_costs_a_fixed_number_of_queries(
    bots: list[Integration], credentials: dict[str, Any], count: int, django_assert_num_queries: Any
) -> None:
    for integration in bots:
        issue(integration, count, policy_version=1)
    jit, policy = control("jit-credentials"), control("policy-as-code")
    assert jit is not None and policy is not None
    with django_assert_num_queries(2):
        jit.evidence()
    with django_assert_num_queries(3):
        policy.evidence()
