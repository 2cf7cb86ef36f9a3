"""Evidence of the approvals controls, on crafted data: requests approved through as many steps as
their risk requires, decisions that break separation of duties, and steps decided within their
SLA or overdue now.

Requests are opened and decided through the services (``tests.approvals`` fixtures); a decision
that breaks separation of duties cannot be made through them, so those are written to the
database directly, as someone with database access (or a portal before the rule) would have."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.http import QueryDict
from django.utils import timezone

from approvals import services
from approvals.controls import REQUIRED_APPROVING_STEPS, workflow_rows
from approvals.filters import RequestEvidenceFilter
from approvals.models import AccessRequest, Decision, RequestStatus, RequestStep, StepStatus, Workflow
from governance.controls.registry import Figure, Status, Threshold, control, evaluate
from governance.models import User
from governance.roles import Pool, Role
from inventory.models import Integration, Scope
from runtime.services import policies
from tests.approvals.conftest import catalog, make_integration, resource_owner, submit, workflows
from tests.runtime.policy.versions_support import replayed, stricter_tests, stricter_text

pytestmark = pytest.mark.django_db

__all__ = ["catalog", "make_integration", "resource_owner", "submit", "workflows"]  # fixtures, used by name


def rows(figure: Figure) -> list[dict[str, Any]]:
    """The records behind ``figure``, as the evidence pack reads them."""
    assert figure.records is not None
    return [dict(row) for row in figure.records()]


def figures(control_id: str, thresholds: dict[str, Threshold] | None = None) -> dict[str, Figure]:
    registered = control(control_id)
    assert registered is not None
    return {figure.key: figure for figure in evaluate(registered, thresholds or {}).figures}


def linked_ids(url: str) -> set[int]:
    """The requests the figure's link selects: its query string through the request list's filters."""
    query = QueryDict(urlsplit(url).query)
    listed = RequestEvidenceFilter(query, queryset=AccessRequest.objects.all())
    assert listed.is_valid(), listed.errors
    return set(listed.qs.values_list("pk", flat=True))


def approve_all(req: AccessRequest, people: list[User]) -> AccessRequest:
    """Each person in turn approves the step waiting for them, until the request is decided."""
    for person in people:
        services.request_decide(actor=person, request=req, decision="approve", comment="ok")
    req.refresh_from_db()
    return req


@pytest.fixture
def cast(reviewer: User, second_reviewer: User, resource_owner: User, security_reviewer: User) -> dict[str, User]:
    return {"iam": reviewer, "iam2": second_reviewer, "owner": resource_owner, "security": security_reviewer}


# --- Multi-step approval sized to risk -----------------------------------------------------------


def test_the_required_steps_are_those_the_seeded_workflows_run(workflows: None) -> None:
    found = {(row["request_type"], row["risk_tier"]): row for row in workflow_rows()}
    for tier, steps in REQUIRED_APPROVING_STEPS.items():
        assert found[("registration", tier)]["steps_running"] == steps
    assert all(row["meets_requirement"] for row in found.values())
    short = figures("risk-sized-approval")["risk-sized-approval.workflows_short"]
    assert (short.value, short.status) == (0, Status.MET)
    assert short.detail.startswith(f"0 of {Workflow.objects.count()} workflows run fewer steps")


def test_without_approved_request_the_share_is_not_applicable(db: Any) -> None:
    found = figures("risk-sized-approval")
    assert found["risk-sized-approval.sized"].status == Status.NOT_APPLICABLE
    assert found["risk-sized-approval.sized"].detail == "No request was approved in the last 90 days."
    # The migrations seed the default workflows, which run what each tier requires.
    assert found["risk-sized-approval.workflows_short"].status == Status.MET


def test_without_any_workflow_the_workflows_figure_is_not_applicable(db: Any) -> None:
    Workflow.objects.all().delete()  # a flushed database: the defaults come with the first request
    short = figures("risk-sized-approval")["risk-sized-approval.workflows_short"]
    assert (short.value, short.status) == (None, Status.NOT_APPLICABLE)
    assert short.detail.startswith("No workflow is configured yet")


@pytest.fixture
def approved(
    make_integration: Callable[..., Integration],
    submit: Callable[..., AccessRequest],
    catalog: dict[str, Scope],
    cast: dict[str, User],
    iam_admin: User,
) -> dict[str, AccessRequest]:
    """Low (1 step), medium (2) and critical (3, every IAM reviewer) approved as configured; then
    an IAM admin drops the medium workflow's resource-owner step and a medium request passes one."""
    low = approve_all(submit(make_integration("Low bot", tier="low")), [cast["iam"]])
    medium = approve_all(
        submit(make_integration("Medium bot", tier="medium"), scopes=[catalog["hr"]]), [cast["iam"], cast["owner"]]
    )
    critical = approve_all(
        submit(make_integration("Critical bot", tier="critical"), scopes=[catalog["hr"]]),
        [cast["iam"], cast["iam2"], cast["owner"], cast["security"]],
    )
    workflow = Workflow.objects.get(request_type="registration", risk_tier="medium")
    services.workflow_step_delete(actor=iam_admin, step=workflow.steps.get(name="Resource owner"))
    short = approve_all(submit(make_integration("Short bot", tier="medium"), scopes=[catalog["hr"]]), [cast["iam"]])
    requests = {"low": low, "medium": medium, "critical": critical, "short": short}
    assert {req.status for req in requests.values()} == {RequestStatus.APPROVED}
    return requests


def test_a_request_approved_through_fewer_steps_than_its_tier_requires_is_counted(
    approved: dict[str, AccessRequest],
) -> None:
    found = figures("risk-sized-approval")
    sized = found["risk-sized-approval.sized"]
    assert (sized.value, sized.status) == (75.0, Status.NOT_MET)
    assert sized.detail.startswith("3 of 4 requests approved in the last 90 days passed the approving steps")
    assert sized.detail.endswith("; 1 passed fewer.")
    by_request = {row["request_id"]: row for row in rows(sized)}
    assert {pk: (row["approving_steps"], row["required_steps"]) for pk, row in by_request.items()} == {
        approved["low"].pk: (1, 1),
        approved["medium"].pk: (2, 2),
        approved["critical"].pk: (3, 3),
        approved["short"].pk: (1, 2),
    }
    assert by_request[approved["short"].pk]["meets_requirement"] is False
    assert by_request[approved["short"].pk]["about"] == "Short bot"
    workflows_short = found["risk-sized-approval.workflows_short"]
    assert (workflows_short.value, workflows_short.status) == (1, Status.NOT_MET)
    assert "Scope expansion" not in workflows_short.detail and "(1 of 2)" in workflows_short.detail
    assert [row["name"] for row in rows(workflows_short) if not row["meets_requirement"]] == [
        "New registration — Medium risk"
    ]
    # An organisation that accepts one request in four short of its steps meets it.
    own = figures("risk-sized-approval", {"risk-sized-approval.sized": Threshold(met=75)})
    assert own["risk-sized-approval.sized"].status == Status.MET


def test_requests_approved_before_the_window_are_left_out(
    make_integration: Callable[..., Integration], submit: Callable[..., AccessRequest], cast: dict[str, User]
) -> None:
    with time_machine.travel(timezone.now() - timedelta(days=91), tick=False):
        approve_all(submit(make_integration("Old bot", tier="low")), [cast["iam"]])
    sized = figures("risk-sized-approval")["risk-sized-approval.sized"]
    assert sized.value is None and rows(sized) == []
    assert linked_ids(sized.records_url) == set()


def test_the_sized_share_links_to_exactly_the_approved_requests_of_the_window(
    approved: dict[str, AccessRequest],
    make_integration: Callable[..., Integration],
    submit: Callable[..., AccessRequest],
    auditor: User,
    web_as: Any,
    api_as: Any,
) -> None:
    waiting = submit(make_integration("Waiting bot", tier="low"))
    url = figures("risk-sized-approval")["risk-sized-approval.sized"].records_url
    parts = urlsplit(url)
    assert parts.path == "/approvals/requests/" and parse_qs(parts.query)["status"] == ["approved"]
    expected = {req.pk for req in approved.values()}
    assert linked_ids(url) == expected
    api = api_as(auditor).get(f"/api/v1/access-requests/?{parts.query}")
    assert api.status_code == 200
    assert {item["id"] for item in api.json()["results"]} == expected
    page = web_as(auditor).get(url)
    assert page.status_code == 200
    listed = {req.pk for req in page.context["page"].object_list}
    assert expected <= listed and waiting.pk not in listed


def test_the_workflows_figure_links_to_the_workflows_page(workflows: None, auditor: User, web_as: Any) -> None:
    url = figures("risk-sized-approval")["risk-sized-approval.workflows_short"].records_url
    assert url == "/approvals/workflows/"
    page = web_as(auditor).get(url)
    assert page.status_code == 200 and "Medium risk" in page.content.decode()


# --- Separation of duties ------------------------------------------------------------------------


def craft_decision(step: RequestStep, reviewer: User, **extra: Any) -> Decision:
    """A decision the services would refuse, written to the database directly."""
    return Decision.objects.create(step=step, request=step.request, reviewer=reviewer, decision="approve", **extra)


def active_step(req: AccessRequest) -> RequestStep:
    req.refresh_from_db()
    return req.steps.get(round=req.round, status=StepStatus.ACTIVE)


@pytest.fixture
def conflicts(
    make_integration: Callable[..., Integration],
    submit: Callable[..., AccessRequest],
    catalog: dict[str, Scope],
    cast: dict[str, User],
    make_user: Callable[..., User],
    owner: User,
    iam_admin: User,
) -> dict[str, Decision]:
    """One decision of each kind separation of duties refuses, beside lawful ones."""
    tech = make_user("tech", Role.REVIEWER, Pool.IAM_REVIEWERS)
    requester = make_user("asker", Role.REVIEWER, Pool.IAM_REVIEWERS)
    own = craft_decision(active_step(submit(make_integration("Own bot"), actor=requester)), requester)
    owned = craft_decision(active_step(submit(make_integration("Owned bot", technical_owner=tech))), tech)
    delegated = craft_decision(
        active_step(submit(make_integration("Delegated bot"), actor=requester)), cast["iam2"], on_behalf_of=requester
    )
    twice_req = submit(make_integration("Twice bot", tier="medium"), scopes=[catalog["hr"]])
    lawful_first = services.request_decide(actor=cast["iam"], request=twice_req, decision="approve")
    twice = craft_decision(active_step(twice_req), cast["iam"])
    author = make_user("author", Role.IAM_ADMIN)
    draft = policies.policy_draft_create(
        actor=author, title="Vendors get no admin scope", cedar_text=stricter_text(), tests=stricter_tests()
    )
    replayed(draft, author)
    change = policies.policy_enforcement_request(actor=iam_admin, version=draft)
    excluded = craft_decision(active_step(change), author)
    lawful = services.request_decide(
        actor=cast["iam"], request=submit(make_integration("Lawful bot")), decision="approve"
    )
    return {
        "own": own,
        "owned": owned,
        "delegated": delegated,
        "twice": twice,
        "excluded": excluded,
        "lawful": lawful,
        "lawful_first": lawful_first,
    }


def test_lawful_decisions_meet_separation_of_duties(
    make_integration: Callable[..., Integration], submit: Callable[..., AccessRequest], cast: dict[str, User]
) -> None:
    approve_all(submit(make_integration("Fine bot")), [cast["iam"]])
    found = figures("separation-of-duties")["separation-of-duties.conflicts"]
    assert (found.value, found.status) == (0, Status.MET)
    assert found.detail.startswith("0 of 1 reviewer decisions in the last 90 days")
    assert rows(found) == []


def test_without_decisions_separation_of_duties_is_not_applicable(db: Any) -> None:
    found = figures("separation-of-duties")["separation-of-duties.conflicts"]
    assert found.status == Status.NOT_APPLICABLE and found.detail == "No reviewer decision in the last 90 days."


def test_every_kind_of_conflict_is_counted_once_with_its_reason(conflicts: dict[str, Decision]) -> None:
    found = figures("separation-of-duties")["separation-of-duties.conflicts"]
    assert (found.value, found.status) == (5, Status.NOT_MET)
    assert found.detail.startswith("5 of 7 reviewer decisions")
    reasons = {row["decision_id"]: row["conflict"] for row in rows(found)}
    assert reasons == {
        conflicts["own"].pk: "decided their own request",
        conflicts["owned"].pk: "owned the integration",
        conflicts["delegated"].pk: "decided their own request",
        conflicts["twice"].pk: "had decided another step of the same round",
        conflicts["excluded"].pk: "was excluded by the request (a policy version's author)",
    }
    delegated = next(row for row in rows(found) if row["decision_id"] == conflicts["delegated"].pk)
    assert (delegated["reviewer"], delegated["on_behalf_of"], delegated["requester"]) == ("reviewer2", "asker", "asker")
    # An organisation cannot make a conflict acceptable by default, but may set its own bound.
    own = figures("separation-of-duties", {"separation-of-duties.conflicts": Threshold(met=5)})
    assert own["separation-of-duties.conflicts"].status == Status.MET


def test_an_owner_named_after_deciding_is_no_conflict(
    make_integration: Callable[..., Integration], submit: Callable[..., AccessRequest], cast: dict[str, User]
) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        integration = make_integration("Later bot")
        services.request_decide(actor=cast["iam"], request=submit(integration), decision="approve")
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        integration.refresh_from_db()
        integration.technical_owner = cast["iam"]
        integration.save()
        found = figures("separation-of-duties")["separation-of-duties.conflicts"]
    assert (found.value, found.status) == (0, Status.MET)


def test_an_integration_without_history_is_checked_against_its_owners_now(
    make_integration: Callable[..., Integration], submit: Callable[..., AccessRequest], make_user: Callable[..., User]
) -> None:
    tech = make_user("tech", Role.REVIEWER, Pool.IAM_REVIEWERS)
    integration = make_integration("Loaded bot", technical_owner=tech)
    req = submit(integration)
    Integration.history.filter(id=integration.pk).delete()  # as if bulk-loaded without history
    craft_decision(active_step(req), tech)
    [row] = rows(figures("separation-of-duties")["separation-of-duties.conflicts"])
    assert (row["reviewer"], row["conflict"]) == ("tech", "owned the integration")


def test_the_conflicts_link_lists_exactly_the_requests_with_a_conflict(
    conflicts: dict[str, Decision], auditor: User, api_as: Any, iam_admin: User, web_as: Any
) -> None:
    url = figures("separation-of-duties")["separation-of-duties.conflicts"].records_url
    assert urlsplit(url).path == "/approvals/requests/" and "sod_conflict_since" in parse_qs(urlsplit(url).query)
    expected = {decision.request_id for name, decision in conflicts.items() if not name.startswith("lawful")}
    assert linked_ids(url) == expected
    api = api_as(iam_admin).get(f"/api/v1/access-requests/?{urlsplit(url).query}")
    assert {item["id"] for item in api.json()["results"]} == expected
    page = web_as(iam_admin).get(url)
    assert page.status_code == 200
    assert expected <= {req.pk for req in page.context["page"].object_list}


# --- Approval SLAs -------------------------------------------------------------------------------


@pytest.fixture
def timed(
    make_integration: Callable[..., Integration], submit: Callable[..., AccessRequest], cast: dict[str, User]
) -> dict[str, Any]:
    """Low-risk requests (SLA 72 hours) opened at ``start``: one decided after an hour, one after
    100 hours, one never decided; the figures are read 100 hours after ``start``."""
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        quick = submit(make_integration("Quick bot"))
        slow = submit(make_integration("Slow bot"))
        waiting = submit(make_integration("Waiting bot"))
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        services.request_decide(actor=cast["iam"], request=quick, decision="approve")
    later = start + timedelta(hours=100)
    with time_machine.travel(later, tick=False):
        services.request_decide(actor=cast["iam"], request=slow, decision="approve")
    return {"quick": quick, "slow": slow, "waiting": waiting, "at": later}


def test_steps_decided_late_and_steps_overdue_are_counted(timed: dict[str, Any]) -> None:
    with time_machine.travel(timed["at"], tick=False):
        found = figures("approval-sla")
        within = found["approval-sla.within_sla"]
        assert (within.value, within.status) == (50.0, Status.NOT_MET)
        assert within.detail.startswith("1 of 2 approval steps decided in the last 90 days were decided by their due")
        overdue = found["approval-sla.overdue"]
        assert (overdue.value, overdue.status) == (1, Status.PARTLY)
        due = timed["at"] - timedelta(hours=28)
        assert f"the oldest was due {due:%Y-%m-%d %H:%M} UTC" in overdue.detail
        own = figures(
            "approval-sla", {"approval-sla.within_sla": Threshold(met=50), "approval-sla.overdue": Threshold(met=1)}
        )
        assert {fig.status for fig in own.values()} == {Status.MET}
        decided = {row["request_id"]: row for row in rows(within)}
        assert {pk: row["within_sla"] for pk, row in decided.items()} == {
            timed["quick"].pk: True,
            timed["slow"].pk: False,
        }
        assert decided[timed["slow"].pk]["sla"] == "72 hours" and decided[timed["slow"].pk]["decided_by"] == "reviewer"
        [late] = rows(overdue)
        assert (late["request_id"], late["hours_overdue"]) == (timed["waiting"].pk, 28.0)


def test_without_steps_decided_the_sla_share_is_not_applicable_and_nothing_is_overdue(db: Any) -> None:
    found = figures("approval-sla")
    assert found["approval-sla.within_sla"].status == Status.NOT_APPLICABLE
    assert (found["approval-sla.overdue"].value, found["approval-sla.overdue"].status) == (0, Status.MET)


def test_sla_links_list_the_requests_decided_in_the_window_and_those_overdue(
    timed: dict[str, Any], auditor: User, web_as: Any
) -> None:
    with time_machine.travel(timed["at"], tick=False):
        found = figures("approval-sla")
        decided_url, overdue_url = (
            found["approval-sla.within_sla"].records_url,
            found["approval-sla.overdue"].records_url,
        )
        assert linked_ids(decided_url) == {timed["quick"].pk, timed["slow"].pk}
        assert linked_ids(overdue_url) == {timed["waiting"].pk}
        assert parse_qs(urlsplit(overdue_url).query) == {"overdue": ["true"]}
        for url, expected in (
            (decided_url, {timed["quick"].pk, timed["slow"].pk}),
            (overdue_url, {timed["waiting"].pk}),
        ):
            page = web_as(auditor).get(url)
            assert page.status_code == 200
            assert expected <= {req.pk for req in page.context["page"].object_list}


def test_the_evidence_filters_say_what_they_select(db: Any) -> None:
    since = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    query = QueryDict(mutable=True)
    query.update({"closed_since": since.isoformat(), "overdue": "true"})
    assert RequestEvidenceFilter(query, queryset=AccessRequest.objects.all()).describe() == (
        "Requests closed since 2025-01-02 03:04 UTC, with a step overdue now."
    )
    assert RequestEvidenceFilter(QueryDict(), queryset=AccessRequest.objects.all()).describe() == ""
    assert RequestEvidenceFilter(QueryDict("overdue=maybe"), queryset=AccessRequest.objects.all()).describe() == ""


def test_the_evidence_filters_refuse_what_is_not_a_date_time_or_a_boolean(auditor: User, api_as: Any) -> None:
    bad = api_as(auditor).get(
        "/api/v1/access-requests/",
        {"closed_since": "yesterday", "step_decided_since": "1", "sod_conflict_since": "x", "overdue": "maybe"},
    )
    assert bad.status_code == 400
    assert {"closed_since", "step_decided_since", "sod_conflict_since", "overdue"} <= set(bad.json()["errors"])


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2025-06-01T12:00:00+14:00"])
@pytest.mark.parametrize("name", ["closed_since", "step_decided_since", "sod_conflict_since"])
def test_the_evidence_filters_take_any_date_time_the_schema_allows(
    conflicts: dict[str, Decision], iam_admin: User, api_as: Any, name: str, moment: str
) -> None:
    client = api_as(iam_admin)

    def ids(value: str) -> set[int]:
        response = client.get("/api/v1/access-requests/", {name: value})
        assert response.status_code == 200, (value, response.status_code)
        return {item["id"] for item in response.json()["results"]}

    found = ids(moment)
    if moment.startswith("9999"):
        assert found == set()
    elif moment.startswith("0001"):
        # The earliest date-time selects every request the filter can select: the same as a bound
        # before every record (the fixture is made after 1970), and not none.
        assert found == ids("1970-01-01T00:00:00Z") != set()
    else:
        # An offset is honoured: the same instant written in UTC selects the same requests.
        assert found == ids("2025-05-31T22:00:00Z")


# --- Query counts --------------------------------------------------------------------------------


def many_requests(
    make_integration: Callable[..., Integration],
    submit: Callable[..., AccessRequest],
    reviewer: User,
    count: int,
    at: datetime,
) -> None:
    with time_machine.travel(at, tick=False):
        for number in range(count):
            req = submit(make_integration(f"Bot {number}"))
            if number % 2:
                services.request_decide(actor=reviewer, request=req, decision="approve")


@pytest.mark.parametrize("count", [1, 12])
def test_approvals_evidence_costs_a_fixed_number_of_queries(
    make_integration: Callable[..., Integration],
    submit: Callable[..., AccessRequest],
    reviewer: User,
    count: int,
    django_assert_num_queries: Any,
) -> None:
    many_requests(make_integration, submit, reviewer, count, timezone.now() - timedelta(days=4))
    expected = {"risk-sized-approval": 2, "separation-of-duties": 1, "approval-sla": 2}
    for control_id, queries in expected.items():
        registered = control(control_id)
        assert registered is not None
        with django_assert_num_queries(queries):
            registered.evidence()
