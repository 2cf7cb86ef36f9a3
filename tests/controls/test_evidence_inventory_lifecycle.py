"""Evidence of the controls on an integration's life: time-bound grants, orphan handling and the
kill switch. Each figure on crafted data, its status, its records and the list it links to."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from governance.actors import Actor
from governance.controls.registry import Status, Threshold
from governance.models import User
from governance.roles import Role
from governance.services import user_deactivate
from inventory import controls, services
from inventory.models import Grant, Integration, OwnershipTransfer
from tests.controls.evidence_support import activate, figures, names_listed, record_names, records_of
from tests.inventory import conftest as inventory_fixtures

pytestmark = pytest.mark.django_db

# The inventory tests' scope catalog and integrations made through the services.
catalog = inventory_fixtures.catalog
make_integration = inventory_fixtures.make_integration

Maker = Callable[..., Integration]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {name: make_user(name, Role.BUSINESS_USER) for name in ("ann", "bob", "cat", "dan", "eve")}


def api_ids(client: Any, url: str) -> set[int]:
    response = client.get(url, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# --- Time-bound grants ----------------------------------------------------------------------------


@pytest.fixture
def grants(people: dict[str, User], make_integration: Maker, reviewer: User) -> dict[str, list[Grant]]:
    """Four active grants at T0: two ending in 30 days, one ending tomorrow, one open-ended; and
    a revoked open-ended grant, which counts for nothing."""
    with time_machine.travel(T0, tick=False):
        made = {
            "Alpha bot": activate(
                make_integration(people["ann"], name="Alpha bot", scopes=("msgraph:User.Read", "msgraph:Mail.Read")),
                reviewer,
                expires_at=T0 + timedelta(days=30),
            ),
            "Bravo bot": activate(
                make_integration(people["ann"], name="Bravo bot"), reviewer, expires_at=T0 + timedelta(days=1)
            ),
            "Cobalt bot": activate(make_integration(people["ann"], name="Cobalt bot"), reviewer),
            "Delta bot": activate(make_integration(people["ann"], name="Delta bot"), reviewer),
        }
        services.grant_revoke(actor=people["ann"], grant=made["Delta bot"][0], reason="Not needed.")
    return made


def test_share_of_active_grants_with_an_end_date(grants: dict[str, list[Grant]]) -> None:
    with time_machine.travel(T0, tick=False):
        figure = figures("time-bound-grants")["time-bound-grants.end_date_share"]
    assert figure.value == 75.0 and figure.status == Status.NOT_MET  # below 80 %
    assert figure.detail == "3 of 4 active grants end on a set date. The list shows the 1 without one."
    assert record_names(figure, "integration") == {"Cobalt bot"}


def test_grants_past_their_end_date_and_still_active_are_counted_after_an_hour(
    grants: dict[str, list[Grant]],
) -> None:
    with time_machine.travel(T0 + timedelta(days=1, minutes=30), tick=False):
        assert figures("time-bound-grants")["time-bound-grants.overdue_grants"].value == 0
    with time_machine.travel(T0 + timedelta(days=1, hours=2), tick=False):
        figure = figures("time-bound-grants")["time-bound-grants.overdue_grants"]
        assert figure.value == 1 and figure.status == Status.NOT_MET
        assert record_names(figure, "integration") == {"Bravo bot"}
        assert figures("time-bound-grants", {figure.key: Threshold(met=1)})[figure.key].status == Status.MET


def test_grant_figures_link_to_the_grant_list_of_exactly_their_records(
    grants: dict[str, list[Grant]], api_as: Callable[[User], Any], iam_admin: User
) -> None:
    client = api_as(iam_admin)
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        for figure in figures("time-bound-grants").values():
            assert figure.records_url.startswith("/api/v1/grants/?active=true&evidence=")
            assert api_ids(client, figure.records_url) == record_names(figure, "id") != set()


def test_no_active_grant_is_not_applicable(people: dict[str, User], make_integration: Maker) -> None:
    make_integration(people["ann"], name="Draft bot")
    figure = figures("time-bound-grants")["time-bound-grants.end_date_share"]
    assert figure.value is None and figure.status == Status.NOT_APPLICABLE
    assert figure.detail == "No grant is active: nothing to measure."


# --- Orphan handling ------------------------------------------------------------------------------


@pytest.fixture
def orphans(
    people: dict[str, User], make_integration: Maker, reviewer: User, iam_admin: User
) -> dict[str, Integration]:
    """At T0 ann leaves (Alpha orphaned) and bob leaves (Bravo orphaned; cat takes it over on
    day 5, and leaves on day 31: orphaned again); on day 20 dan leaves (Delta orphaned). Eve's
    Echo never is; Foxtrot, orphaned at T0, is retired."""
    with time_machine.travel(T0 - timedelta(days=1), tick=False):
        made = {
            name: make_integration(people[owner], name=name)
            for name, owner in (
                ("Alpha bot", "ann"),
                ("Bravo bot", "bob"),
                ("Delta bot", "dan"),
                ("Echo bot", "eve"),
                ("Foxtrot bot", "ann"),
            )
        }
        for name in ("Alpha bot", "Bravo bot", "Delta bot", "Echo bot"):
            activate(made[name], reviewer)
    with time_machine.travel(T0, tick=False):
        for leaver in ("ann", "bob"):
            user_deactivate(actor=iam_admin, user=people[leaver], reason="Left the company.")
        services.integration_retire(actor=iam_admin, integration=made["Foxtrot bot"], reason="Replaced.")
    with time_machine.travel(T0 + timedelta(days=5), tick=False):
        transfer = services.ownership_transfer_propose(
            actor=iam_admin, integration=made["Bravo bot"], to_user=people["cat"]
        )
        services.ownership_transfer_accept(actor=people["cat"], transfer=transfer)
    with time_machine.travel(T0 + timedelta(days=20), tick=False):
        user_deactivate(actor=iam_admin, user=people["dan"], reason="Left the company.")
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        user_deactivate(actor=iam_admin, user=people["cat"], reason="Left the company.")
    return made


def test_orphaned_for_more_than_thirty_days_counts_from_the_latest_flag(orphans: dict[str, Integration]) -> None:
    assert OwnershipTransfer.objects.filter(status="accepted").count() == 1
    with time_machine.travel(T0 + timedelta(days=35), tick=False):
        figure = figures("orphan-handling")["orphan-handling.orphaned_long"]
        assert figure.value == 1 and figure.status == Status.NOT_MET and figure.unit == "count"
        [record] = records_of(figure)
    assert record["name"] == "Alpha bot" and record["orphaned_since"] == T0.isoformat()
    with time_machine.travel(T0 + timedelta(days=51), tick=False):
        assert record_names(figures("orphan-handling")["orphan-handling.orphaned_long"]) == {"Alpha bot", "Delta bot"}


def test_share_of_integrations_in_service_that_are_orphaned(orphans: dict[str, Integration]) -> None:
    with time_machine.travel(T0 + timedelta(days=35), tick=False):
        figure = figures("orphan-handling")["orphan-handling.orphaned_share"]
    assert figure.value == 75.0 and figure.status == Status.NOT_MET and figure.better == "lower"
    assert figure.detail == (
        "3 of 4 integrations in service (not retired) are orphaned. The oldest has waited 35 days."
    )
    assert record_names(figure) == {"Alpha bot", "Bravo bot", "Delta bot"}


def test_orphaned_share_is_rounded_up_never_towards_its_lower_is_better_threshold(
    orphans: dict[str, Integration], people: dict[str, User], make_integration: Maker
) -> None:
    """3 of 7 is 42.857 %: a lower-is-better share reads 42.9, never 42.8 — cut down, it would
    read better than the detail's count (and 1 of 10,000 would read 0 and meet a 0 % threshold)."""
    for name in ("Golf bot", "Hotel bot", "India bot"):
        make_integration(people["eve"], name=name)
    with time_machine.travel(T0 + timedelta(days=35), tick=False):
        figure = figures("orphan-handling", {"orphan-handling.orphaned_share": Threshold(met=42.85)})[
            "orphan-handling.orphaned_share"
        ]
    assert figure.detail.startswith("3 of 7 integrations in service (not retired) are orphaned.")
    assert figure.value == 42.9 and figure.status == Status.NOT_MET


def test_an_orphan_flag_without_its_event_counts_from_the_registration(
    people: dict[str, User], make_integration: Maker
) -> None:
    with time_machine.travel(T0, tick=False):
        integration = make_integration(people["ann"], name="Alpha bot")
    Integration.objects.filter(pk=integration.pk).update(orphaned=True)  # around the services
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        assert record_names(figures("orphan-handling")["orphan-handling.orphaned_long"]) == {"Alpha bot"}


def test_orphan_figures_link_to_the_lists_of_exactly_their_records(
    orphans: dict[str, Integration], web_as: Callable[[User], Any], iam_admin: User
) -> None:
    client = web_as(iam_admin)
    with time_machine.travel(T0 + timedelta(days=35), tick=False):
        found = figures("orphan-handling")
        assert found["orphan-handling.orphaned_share"].records_url == "/inventory/orphaned/"
        assert set(found) == {"orphan-handling.orphaned_share", "orphan-handling.orphaned_long"}
        for figure in found.values():
            assert names_listed(client, figure.records_url, orphans) == record_names(figure) != set()


def test_no_orphan_meets_the_control(people: dict[str, User], make_integration: Maker, reviewer: User) -> None:
    activate(make_integration(people["ann"], name="Alpha bot"), reviewer)
    found = figures("orphan-handling")
    assert [figure.value for figure in found.values()] == [0, 0.0]
    assert {figure.status for figure in found.values()} == {Status.MET}


# --- Kill switch ----------------------------------------------------------------------------------


@pytest.fixture
def suspended(people: dict[str, User], make_integration: Maker, reviewer: User, iam_admin: User) -> dict[str, Any]:
    """At T0 Alpha (two grants) and Bravo (no grant left) are suspended; Cobalt stays active.
    Then a grant is made to Alpha around the kill switch, as a faulty import would."""
    with time_machine.travel(T0 - timedelta(days=1), tick=False):
        alpha = make_integration(people["ann"], name="Alpha bot", scopes=("msgraph:User.Read", "msgraph:Mail.Read"))
        bravo = make_integration(people["ann"], name="Bravo bot")
        cobalt = make_integration(people["ann"], name="Cobalt bot")
        for integration in (alpha, bravo, cobalt):
            activate(integration, reviewer)
        services.grant_revoke(actor=iam_admin, grant=bravo.grants.get(), reason="Not used.")
    with time_machine.travel(T0, tick=False):
        services.integration_suspend(actor=iam_admin, integration=alpha, reason="Leaked key.")
        services.integration_suspend(actor=people["ann"], integration=bravo, reason="Paused.")
    return {"Alpha bot": alpha, "Bravo bot": bravo, "Cobalt bot": cobalt}


def test_suspended_integrations_hold_no_active_grant(suspended: dict[str, Integration]) -> None:
    figure = figures("kill-switch")["kill-switch.suspended_without_access"]
    assert figure.value == 100.0 and figure.status == Status.MET
    assert figure.detail.startswith("2 of 2 suspended integrations hold no active grant")
    assert record_names(figure) == set()


def test_a_suspended_integration_holding_a_grant_fails_the_kill_switch(
    suspended: dict[str, Integration], reviewer: User, web_as: Callable[[User], Any], iam_admin: User
) -> None:
    alpha = suspended["Alpha bot"]
    services.grant_create_many(
        actor=Actor.system(on_behalf_of=alpha.business_owner),
        integration=alpha,
        scopes=list(alpha.requested_scopes.all()[:1]),
        source_type="tests",
        source_id="2",
        approvers=[reviewer],
        expires_at=None,
    )
    figure = figures("kill-switch")["kill-switch.suspended_without_access"]
    assert figure.value == 50.0 and figure.status == Status.NOT_MET
    assert record_names(figure) == {"Alpha bot"}
    assert names_listed(web_as(iam_admin), figure.records_url, suspended) == {"Alpha bot"}


def test_time_from_suspension_to_revocation_over_the_last_ninety_days(suspended: dict[str, Integration]) -> None:
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        figure = figures("kill-switch")["kill-switch.hours_to_revoke"]
        assert figure.value == 0.0 and figure.status == Status.MET and figure.unit == "hours"
        assert figure.detail == (
            "1 of 2 suspensions since 2025-12-03 revoked grants; the slowest ended them 0.0 seconds after the "
            "suspension."
        )
        records = {record["integration"]: record for record in records_of(figure)}
    assert records["Alpha bot"]["seconds_to_revoke"] == 0.0
    assert records["Bravo bot"]["grants_revoked_at"] is None
    # Crafted: grants ended two hours after their suspension.
    Grant.objects.filter(integration=suspended["Alpha bot"]).update(ended_at=T0 + timedelta(hours=2))
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        slow = figures("kill-switch")["kill-switch.hours_to_revoke"]
    assert slow.value == 2.0 and slow.status == Status.PARTLY
    with time_machine.travel(T0 + timedelta(days=92), tick=False):
        late = figures("kill-switch")["kill-switch.hours_to_revoke"]
    assert late.value is None and late.status == Status.NOT_APPLICABLE
    assert late.detail == "No suspension since 2026-03-04 revoked a grant: nothing to time."


def test_suspension_timing_links_to_the_audit_trail_of_exactly_its_suspensions(
    suspended: dict[str, Integration], web_as: Callable[[User], Any], iam_admin: User
) -> None:
    client = web_as(iam_admin)
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        figure = figures("kill-switch")["kill-switch.hours_to_revoke"]
        assert figure.records_url == "/audit/?action=integration.suspended&since=2025-12-03"
        assert names_listed(client, figure.records_url, suspended) == record_names(figure, "integration")
    assert record_names(figure, "integration") == {"Alpha bot", "Bravo bot"}


def test_no_suspension_is_not_applicable(people: dict[str, User], make_integration: Maker, reviewer: User) -> None:
    activate(make_integration(people["ann"], name="Alpha bot"), reviewer)
    found = figures("kill-switch")
    assert set(found) == {"kill-switch.suspended_without_access", "kill-switch.hours_to_revoke"}
    for figure in found.values():
        assert figure.value is None and figure.status == Status.NOT_APPLICABLE


@pytest.mark.parametrize("count", [1, 8])
def test_lifecycle_controls_run_a_fixed_number_of_queries(
    count: int,
    people: dict[str, User],
    make_integration: Maker,
    reviewer: User,
    iam_admin: User,
    django_assert_num_queries: Any,
) -> None:
    for index in range(count):
        integration = make_integration(people["ann" if index % 2 else "bob"], name=f"Bot {index}")
        activate(integration, reviewer, expires_at=timezone.now() + timedelta(days=1) if index % 3 else None)
        if index % 2:
            services.integration_suspend(actor=iam_admin, integration=integration, reason="Test.")
    user_deactivate(actor=iam_admin, user=people["bob"], reason="Left the company.")
    with time_machine.travel(timezone.now() + timedelta(days=40), tick=False):
        with django_assert_num_queries(1):
            controls.time_bound_grants_evidence()
        with django_assert_num_queries(2):
            controls.orphan_handling_evidence()
        with django_assert_num_queries(2):
            controls.kill_switch_evidence()
