"""Evidence of shadow-grant discovery on crafted data: shadow apps awaiting a decision, the age
of the oldest, days since each source's last successful import; the work list and import list
the figures link to; a fixed number of queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from governance.controls.registry import Status, Threshold
from governance.models import User
from inventory.discovery import controls
from inventory.discovery.choices import FindingKind, FindingStatus, ImportStatus
from tests.controls.evidence_support import figures, names_listed, record_names, records_of
from tests.discovery.factories import make_app, make_finding, make_import

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WAITING = "shadow-discovery.waiting_shadow_apps"
OLDEST = "shadow-discovery.oldest_waiting_days"
IMPORTS = "shadow-discovery.import_age_days"


@pytest.fixture
def discovered(db: Any) -> dict[str, Any]:
    """Google imported on T0 and day 40 (a failed import on day 44 does not count), Slack once
    on day 5, Okta only failed (day 30). Shadow findings: one open from T0, one escalated from
    day 10, one revocation requested on day 40; one dismissed and one claimed (decided); a drift
    finding, not a shadow one."""
    with time_machine.travel(T0, tick=False):
        google = make_import(source="google", tenant="example.com")
        make_finding(make_app(name="Notes AI", imp=google))
        make_finding(make_app(name="Old dismissed AI", imp=google), status=FindingStatus.DISMISSED)
    with time_machine.travel(T0 + timedelta(days=5), tick=False):
        slack = make_import(source="slack", tenant="acme")
        make_finding(make_app(source="slack", tenant="acme", name="Standup bot", imp=slack), status="claimed")
    with time_machine.travel(T0 + timedelta(days=10), tick=False):
        make_finding(make_app(source="slack", tenant="acme", name="Poll bot", imp=slack), status="escalated")
    with time_machine.travel(T0 + timedelta(days=30), tick=False):
        make_import(source="okta", tenant="acme.okta.com", status=ImportStatus.FAILED)
    with time_machine.travel(T0 + timedelta(days=40), tick=False):
        google = make_import(source="google", tenant="example.com")
        make_finding(make_app(name="Slides AI", imp=google), status=FindingStatus.REVOKE_REQUESTED)
        make_finding(make_app(name="Drifting AI", imp=google), kind=FindingKind.DRIFT)
    with time_machine.travel(T0 + timedelta(days=44), tick=False):
        make_import(source="google", tenant="example.com", status=ImportStatus.FAILED)
    return {}


def test_shadow_apps_awaiting_a_decision_are_counted(discovered: dict[str, Any]) -> None:
    with time_machine.travel(T0 + timedelta(days=45), tick=False):
        figure = figures("shadow-discovery")[WAITING]
    assert figure.value == 3 and figure.status == Status.PARTLY and figure.unit == "count"
    assert figure.detail.startswith("3 apps that no registered integration claims await a decision")
    assert record_names(figure, "title") == {"Notes AI", "Poll bot", "Slides AI"}
    strict = figures("shadow-discovery", {WAITING: Threshold(met=0)})[WAITING]
    assert strict.status == Status.NOT_MET and strict.threshold_is_default is False


def test_age_of_the_oldest_shadow_app_awaiting_a_decision(discovered: dict[str, Any]) -> None:
    with time_machine.travel(T0 + timedelta(days=45, hours=12), tick=False):
        figure = figures("shadow-discovery")[OLDEST]
    assert figure.value == 45.5 and figure.status == Status.PARTLY and figure.unit == "days"
    assert figure.detail == "The oldest was found 45.5 days ago."
    assert [record["title"] for record in records_of(figure)] == ["Notes AI", "Poll bot", "Slides AI"]


def test_days_since_the_stalest_sources_last_successful_import(discovered: dict[str, Any]) -> None:
    with time_machine.travel(T0 + timedelta(days=45), tick=False):
        figure = figures("shadow-discovery")[IMPORTS]
        lenient = figures("shadow-discovery", {IMPORTS: Threshold(met=45)})[IMPORTS]
    # Okta never succeeded: counted from its first attempt, 15 days ago; Slack's last success
    # is 40 days old, Google's 5 (its failed import of yesterday does not count).
    assert figure.value == 40.0 and figure.status == Status.NOT_MET
    assert figure.detail == (
        "Days since each source's last successful import, stalest first: Slack Enterprise (acme): 40.0 days; "
        "Okta (acme.okta.com): never succeeded; Google Workspace (example.com): 5.0 days."
    )
    assert [(row["source"], row["days_since"]) for row in records_of(figure)] == [
        ("slack", 40.0),
        ("okta", 15.0),
        ("google", 5.0),
    ]
    assert lenient.status == Status.MET


def test_figures_link_to_the_lists_of_exactly_their_records(
    discovered: dict[str, Any], web_as: Callable[[User], Any], iam_admin: User
) -> None:
    client = web_as(iam_admin)
    titles = ["Notes AI", "Old dismissed AI", "Standup bot", "Poll bot", "Slides AI", "Drifting AI"]
    with time_machine.travel(T0 + timedelta(days=45), tick=False):
        found = figures("shadow-discovery")
        for key in (WAITING, OLDEST):
            assert names_listed(client, found[key].records_url, titles) == record_names(found[key], "title") != set()
        page = client.get(found[OLDEST].records_url).content.decode()
        assert page.index(">Notes AI</a>") < page.index(">Poll bot</a>") < page.index(">Slides AI</a>")
        imports = client.get(found[IMPORTS].records_url).content.decode()
    tenants = record_names(found[IMPORTS], "tenant")
    assert tenants, "the import-age figure has no records"
    for tenant in tenants:
        assert f'<span class="muted">{tenant}</span>' in imports


def test_nothing_waiting_meets_the_control(db: Any) -> None:
    with time_machine.travel(T0, tick=False):
        imp = make_import(source="github", tenant="acme-org")
        make_finding(make_app(source="github", tenant="acme-org", name="CI helper", imp=imp), status="dismissed")
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        found = figures("shadow-discovery")
    assert [found[key].value for key in (WAITING, OLDEST, IMPORTS)] == [0, 0.0, 1.0]
    assert found[OLDEST].detail == "No shadow app awaits a decision."
    assert {figure.status for figure in found.values()} == {Status.MET}


def test_before_any_import_discovery_is_not_applicable(db: Any) -> None:
    found = figures("shadow-discovery")
    assert set(found) == {WAITING, OLDEST, IMPORTS}
    for figure in found.values():
        assert figure.value is None and figure.status == Status.NOT_APPLICABLE
        assert figure.detail == "No source has been imported yet: discovery has nothing to measure."


@pytest.mark.parametrize("count", [1, 12])
def test_evidence_runs_two_queries_whatever_the_numbers(count: int, db: Any, django_assert_num_queries: Any) -> None:
    for index in range(count):
        imp = make_import(source=["google", "slack", "entra"][index % 3], tenant=f"tenant-{index % 4}")
        make_finding(make_app(source=imp.source, tenant=imp.tenant, name=f"App {index}", imp=imp))
    with django_assert_num_queries(2):
        controls.shadow_discovery_evidence()
