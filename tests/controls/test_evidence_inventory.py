"""Evidence of the inventory's controls on crafted data: named owners, explainable risk tiering,
workload identity. Each figure's value, its status against the default and an organisation's
threshold, its records and the list it links to (the same integrations), and a fixed number of
queries however many integrations there are."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.controls.registry import Status, Threshold
from governance.models import User
from governance.roles import Role
from governance.services import user_deactivate
from inventory import controls, services, tasks
from inventory.models import Integration, TrustedIssuer
from tests.controls.evidence_support import activate, figures, names_listed, record_names
from tests.inventory import conftest as inventory_fixtures

pytestmark = pytest.mark.django_db

# The inventory tests' scope catalog and integrations made through the services.
catalog = inventory_fixtures.catalog
make_integration = inventory_fixtures.make_integration

Maker = Callable[..., Integration]


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {name: make_user(name, Role.BUSINESS_USER) for name in ("ann", "bob", "cat", "dan")}


# --- Named owners ---------------------------------------------------------------------------------


@pytest.fixture
def owned(people: dict[str, User], make_integration: Maker, reviewer: User, iam_admin: User) -> dict[str, Integration]:
    """Three active integrations (one with a technical owner), then cat leaves; a draft of
    cat's is not counted."""
    made = {
        "Alpha bot": make_integration(people["ann"], name="Alpha bot", technical_owner=people["bob"]),
        "Bravo bot": make_integration(people["bob"], name="Bravo bot"),
        "Cobalt bot": make_integration(people["cat"], name="Cobalt bot"),
    }
    for integration in made.values():
        activate(integration, reviewer)
    make_integration(people["cat"], name="Draft bot")
    user_deactivate(actor=iam_admin, user=people["cat"], reason="Left the company.")
    return made


def test_share_of_active_integrations_with_an_active_business_owner(owned: dict[str, Integration]) -> None:
    figure = figures("named-owners")["named-owners.active_owner_share"]
    assert figure.value == 66.6  # cut, never rounded up
    assert figure.status == Status.NOT_MET  # below 90 %
    assert figure.unit == "%" and figure.better == "higher"
    assert figure.detail.startswith("2 of 3 active integrations have an active person as business owner.")
    assert record_names(figure) == {"Cobalt bot"}


def test_an_organisation_threshold_changes_the_status(owned: dict[str, Integration]) -> None:
    key = "named-owners.active_owner_share"
    assert figures("named-owners", {key: Threshold(met=90, partly=60)})[key].status == Status.PARTLY
    lenient = figures("named-owners", {key: Threshold(met=60)})[key]
    assert lenient.status == Status.MET and lenient.threshold_is_default is False


def test_share_with_a_second_owner_counts_only_active_people_other_than_the_business_owner(
    owned: dict[str, Integration], people: dict[str, User], iam_admin: User
) -> None:
    figure = figures("named-owners")["named-owners.second_owner_share"]
    assert figure.value == 33.3 and figure.status == Status.NOT_MET
    assert record_names(figure) == {"Bravo bot", "Cobalt bot"}
    user_deactivate(actor=iam_admin, user=people["bob"], reason="Left too.")
    assert figures("named-owners")["named-owners.second_owner_share"].value == 0.0


def test_owner_figures_link_to_the_list_of_exactly_their_records(
    owned: dict[str, Integration], web_as: Callable[[User], Any], iam_admin: User
) -> None:
    found = figures("named-owners")
    client = web_as(iam_admin)
    names = [*owned, "Draft bot"]
    for key in ("named-owners.active_owner_share", "named-owners.second_owner_share"):
        figure = found[key]
        assert figure.records_url.startswith("/inventory/?status=active&evidence=")
        assert names_listed(client, figure.records_url, names) == record_names(figure)


def test_all_owners_active_meets_the_control(people: dict[str, User], make_integration: Maker, reviewer: User) -> None:
    activate(make_integration(people["ann"], name="Alpha bot", technical_owner=people["bob"]), reviewer)
    found = figures("named-owners")
    assert [figure.status for figure in found.values()] == [Status.MET, Status.MET]
    assert found["named-owners.active_owner_share"].detail == (
        "1 of 1 active integrations have an active person as business owner."
    )
    assert record_names(found["named-owners.active_owner_share"]) == set()


def test_no_active_integration_is_not_applicable(people: dict[str, User], make_integration: Maker) -> None:
    make_integration(people["ann"], name="Draft bot")
    for figure in figures("named-owners").values():
        assert figure.value is None and figure.status == Status.NOT_APPLICABLE
        assert figure.detail == "No integration is active: nothing to measure."


# --- Explainable risk tiering ---------------------------------------------------------------------


def test_share_of_active_integrations_whose_tier_follows_from_score_and_factors(
    people: dict[str, User], make_integration: Maker, reviewer: User
) -> None:
    for name in ("Alpha bot", "Bravo bot", "Cobalt bot", "Delta bot"):
        activate(make_integration(people["ann"], name=name, autonomy="autonomous"), reviewer)
    # Written around the services, as a broken import or a hand edit would leave them.
    Integration.objects.filter(name="Bravo bot").update(risk_tier="critical")  # score 20: medium
    Integration.objects.filter(name="Cobalt bot").update(risk_factors=[])  # score 20, nothing behind it
    figure = figures("risk-tiering")["risk-tiering.explained_share"]
    assert figure.value == 50.0 and figure.status == Status.NOT_MET
    assert record_names(figure) == {"Bravo bot", "Cobalt bot"}
    assert figures("risk-tiering", {figure.key: Threshold(met=50)})[figure.key].status == Status.MET


def test_a_score_of_zero_needs_no_factor(people: dict[str, User], make_integration: Maker, reviewer: User) -> None:
    integration = make_integration(people["ann"], name="Alpha bot")
    activate(integration, reviewer)
    assert integration.risk_score == 0 and integration.risk_factors == []
    assert figures("risk-tiering")["risk-tiering.explained_share"].value == 100.0


def test_scores_the_daily_review_missed_are_counted_until_it_runs(
    people: dict[str, User], make_integration: Maker, reviewer: User
) -> None:
    issued = timezone.now() - timedelta(days=89)
    credential = {"type": "certificate", "identifier": "cert-1", "created_at": issued, "expires_at": None}
    activate(make_integration(people["ann"], name="Alpha bot", credentials=[credential]), reviewer)
    activate(make_integration(people["ann"], name="Bravo bot"), reviewer)
    key = "risk-tiering.outdated_scores"
    assert figures("risk-tiering")[key].value == 0
    with time_machine.travel(timezone.now() + timedelta(days=2), tick=False):
        assert figures("risk-tiering")[key].value == 0  # 91 days: within the review's grace
    with time_machine.travel(timezone.now() + timedelta(days=4), tick=False):
        figure = figures("risk-tiering")[key]
        assert figure.value == 1 and figure.status == Status.NOT_MET and figure.better == "lower"
        assert record_names(figure) == {"Alpha bot"}
        tasks.risk_refresh_all()
        assert figures("risk-tiering")[key].value == 0


def test_risk_figures_link_to_the_list_of_exactly_their_records(
    people: dict[str, User], make_integration: Maker, reviewer: User, web_as: Callable[[User], Any], iam_admin: User
) -> None:
    issued = timezone.now() - timedelta(days=89)
    credential = {"type": "api_key", "identifier": "key-1", "created_at": issued, "expires_at": None}
    activate(make_integration(people["ann"], name="Alpha bot", credentials=[credential]), reviewer)
    activate(make_integration(people["ann"], name="Bravo bot", autonomy="autonomous"), reviewer)
    activate(make_integration(people["ann"], name="Cobalt bot"), reviewer)
    Integration.objects.filter(name="Bravo bot").update(risk_score=45)
    client = web_as(iam_admin)
    with time_machine.travel(timezone.now() + timedelta(days=5), tick=False):
        found = figures("risk-tiering")
        assert record_names(found["risk-tiering.explained_share"]) == {"Bravo bot"}
        assert record_names(found["risk-tiering.outdated_scores"]) == {"Alpha bot"}
        for figure in found.values():
            listed = names_listed(client, figure.records_url, ["Alpha bot", "Bravo bot", "Cobalt bot"])
            assert listed == record_names(figure)


# --- Workload identity ----------------------------------------------------------------------------


@pytest.fixture
def identities(people: dict[str, User], make_integration: Maker, reviewer: User) -> dict[str, Integration]:
    """Four active integrations: proven, bound but never proven, declared only, and a critical
    one with no identity at all."""
    issuer = TrustedIssuer.objects.create(name="Kubernetes", kind="oidc", issuer="https://k8s.example.com")
    made = {
        "Proven bot": make_integration(people["ann"], name="Proven bot"),
        "Bound bot": make_integration(people["ann"], name="Bound bot"),
        "Declared bot": make_integration(people["ann"], name="Declared bot"),
        "Critical bot": make_integration(
            people["ann"], name="Critical bot", autonomy="autonomous", scopes=("hrdb:admin",), workload_identity=""
        ),
    }
    for integration in made.values():
        activate(integration, reviewer)
    for name in ("Proven bot", "Bound bot"):
        services.workload_binding_set(
            actor=people["ann"],
            integration=made[name],
            issuer=issuer,
            subject=f"system:serviceaccount:ai:{name[0]}",
            required_claims={},
        )
    now = timezone.now()
    services.workload_bindings_verified({made["Proven bot"].pk: (now, now)})
    return made


def test_share_of_active_integrations_with_a_proven_identity(identities: dict[str, Integration]) -> None:
    found = figures("workload-identity")
    proven = found["workload-identity.proven_share"]
    assert proven.value == 25.0 and proven.status == Status.NOT_MET
    assert proven.detail.startswith("1 of 4 active integrations are bound to a trusted issuer's identity")
    assert record_names(proven) == {"Bound bot", "Declared bot", "Critical bot"}
    high = found["workload-identity.high_risk_unproven"]
    assert identities["Critical bot"].risk_tier == "critical"
    assert high.value == 1 and high.status == Status.NOT_MET and record_names(high) == {"Critical bot"}


def test_identity_figures_link_to_the_list_of_exactly_their_records(
    identities: dict[str, Integration], web_as: Callable[[User], Any], iam_admin: User
) -> None:
    client = web_as(iam_admin)
    for figure in figures("workload-identity").values():
        assert names_listed(client, figure.records_url, identities) == record_names(figure)


def test_every_active_integration_proven_meets_the_control(
    people: dict[str, User], make_integration: Maker, reviewer: User
) -> None:
    issuer = TrustedIssuer.objects.create(name="Mesh", kind="spiffe", issuer="spiffe://example.org")
    integration = make_integration(people["ann"], name="Alpha bot")
    activate(integration, reviewer)
    services.workload_binding_set(
        actor=people["ann"],
        integration=integration,
        issuer=issuer,
        subject="spiffe://example.org/ns/ai/sa/alpha",
        required_claims={},
    )
    services.workload_bindings_verified({integration.pk: (timezone.now(), timezone.now())})
    found = figures("workload-identity")
    assert found["workload-identity.proven_share"].value == 100.0
    assert {figure.status for figure in found.values()} == {Status.MET}


# --- Fixed queries --------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 14])
def test_each_control_runs_a_fixed_number_of_queries(
    count: int,
    people: dict[str, User],
    make_integration: Maker,
    reviewer: User,
    iam_admin: User,
    django_assert_num_queries: Any,
) -> None:
    for index in range(count):
        owner = people["cat"] if index % 2 else people["ann"]
        activate(make_integration(owner, name=f"Bot {index}", technical_owner=people["bob"]), reviewer)
    user_deactivate(actor=iam_admin, user=people["cat"], reason="Left the company.")
    for evidence in (
        controls.named_owners_evidence,
        controls.risk_tiering_evidence,
        controls.workload_identity_evidence,
    ):
        with django_assert_num_queries(1):
            evidence()
    with django_assert_num_queries(2):
        controls.orphan_handling_evidence()
    with django_assert_num_queries(2):
        controls.kill_switch_evidence()
    with django_assert_num_queries(1):
        controls.time_bound_grants_evidence()


def test_the_evidence_filter_refuses_an_unknown_subset_naming_it(
    api_as: Callable[[User], Any], iam_admin: User
) -> None:
    response = api_as(iam_admin).get("/api/v1/integrations/", {"evidence": "nonsense"})
    assert response.status_code == 400 and "evidence" in response.json()["errors"]


def test_an_owner_following_an_evidence_link_sees_only_their_own_integrations(
    owned: dict[str, Integration], people: dict[str, User], web_as: Callable[[User], Any], client: Any
) -> None:
    figure = figures("named-owners")["named-owners.second_owner_share"]
    assert record_names(figure) == {"Bravo bot", "Cobalt bot"}
    assert names_listed(web_as(people["bob"]), figure.records_url, owned) == {"Bravo bot"}
    client.logout()
    assert client.get(figure.records_url).status_code == 302  # to the sign-in page


def test_an_outsider_following_a_grant_evidence_link_sees_no_grant(
    owned: dict[str, Integration], api_as: Callable[[User], Any], outsider: User
) -> None:
    figure = figures("time-bound-grants")["time-bound-grants.end_date_share"]
    assert len(record_names(figure, "id")) == 3
    response = api_as(outsider).get(figure.records_url)
    assert response.status_code == 200 and response.json()["results"] == []


def test_the_list_filtered_by_evidence_runs_the_same_queries_for_more_rows(
    people: dict[str, User], make_integration: Maker, reviewer: User, web_as: Callable[[User], Any], iam_admin: User
) -> None:
    client = web_as(iam_admin)

    def queries_of(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    # Subsets every integration here belongs to, with few rows and with more.
    urls = [
        f"/inventory/?status=active&evidence={key}" for key in ("no_second_owner", "identity_unproven", "holds_grants")
    ]
    for index in range(2):
        activate(make_integration(people["ann"], name=f"Bot {index}", autonomy="autonomous"), reviewer)
    few = [queries_of(url) for url in urls]
    for index in range(2, 12):
        activate(make_integration(people["ann"], name=f"Bot {index}", autonomy="autonomous"), reviewer)
    assert [queries_of(url) for url in urls] == few
