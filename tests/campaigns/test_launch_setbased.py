"""The set-based launch (each chunk one ``INSERT ... SELECT`` that assigns reviewers in SQL) makes
exactly the items the per-row launch made: same grants, reviewers, groups, reasons and critical
flags, for every reviewer rule and fallback, per grant and per integration, and after an
interrupted launch is resumed."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.campaigns import selectors, services
from approvals.campaigns.models import Campaign, CampaignDefinition, CampaignStatus, ReviewItem
from approvals.campaigns.services import launch
from governance.models import AuditEvent, OutboundEmail, User
from governance.roles import Pool, Role
from inventory.models import ResourceSystem, Scope
from tests.campaigns.launch_reference import reference_launch_run

_COMPARED = (
    "integration_id",
    "grant_id",
    "grant_ids",
    "reviewer_id",
    "reviewer_group_id",
    "assigned_reason",
    "critical",
    "status",
    "decision",
    "comment",
    "by_default",
    "flagged",
)


@pytest.fixture
def varied(make_user: Any, make_integration: Any, make_grant: Any, catalog: Any) -> dict[str, Any]:
    """Owners active and gone, with and without managers; integrations with one, two or three
    owners; systems with active, departed or no owners; critical scopes and critical tiers;
    grants made in an interleaved order and some of them ended."""
    boss = make_user("boss", Role.BUSINESS_USER)
    gone_boss = make_user("gone_boss", Role.BUSINESS_USER)
    alice = make_user("alice", Role.BUSINESS_USER, manager=boss)
    bob = make_user("bob", Role.BUSINESS_USER, manager=gone_boss)
    carol = make_user("carol", Role.BUSINESS_USER, manager=boss)  # leaves
    tech = make_user("tech", Role.BUSINESS_USER)
    gone_tech = make_user("gone_tech", Role.BUSINESS_USER)
    owned = ResourceSystem.objects.create(code="erp", name="ERP")
    owned.owners.set([gone_boss, tech, boss])  # the lowest id has left: the next active one reviews
    orphan_system = ResourceSystem.objects.create(code="wiki", name="Wiki")
    erp = Scope.objects.create(system=owned, name="ledger", code="erp:ledger", sensitivity="high", access="write")
    wiki = Scope.objects.create(system=orphan_system, name="pages", code="wiki:pages", sensitivity="low", access="read")
    shapes: list[dict[str, Any]] = [
        {"owner": alice},  # the only owner
        {"owner": alice, "technical_owner": tech},
        {"owner": alice, "technical_owner": alice, "backup_owner": gone_tech},  # alone among the active
        {"owner": bob, "technical_owner": gone_tech, "risk_tier": "critical"},
        {"owner": carol, "technical_owner": tech},
        {"owner": carol},
        {"owner": tech, "technical_owner": None, "backup_owner": bob},
        {"owner": boss, "technical_owner": gone_tech},
    ]
    integrations = [make_integration(shape.pop("owner"), **shape) for shape in ({**shape} for shape in shapes)]
    scopes = [catalog["read"], erp, catalog["admin"], wiki, catalog["write"]]
    grants = []
    for round_number, scope in enumerate(scopes):
        for position, integration in enumerate(integrations):
            if (position + round_number) % 3 != 2:  # not every integration holds every scope
                grants.append(make_grant(integration, scope))
    grants[4].status = "revoked"
    grants[4].save(update_fields=["status"])
    User.objects.filter(pk__in=[carol.pk, gone_tech.pk, gone_boss.pk]).update(is_active=False)
    return {"integrations": integrations, "grants": grants, "boss": boss, "tech": tech}


def _items(campaign: Campaign) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(row[:2]) + (tuple(row[2]),) + tuple(row[3:]))
        for row in ReviewItem.objects.filter(campaign=campaign).values_list(*_COMPARED)
    )


def _announced(campaign: Campaign) -> dict[str, Any]:
    """What the end of the launch recorded: the audit event's figures and the emails."""
    event = AuditEvent.objects.get(action="campaign.launched", target_id=str(campaign.pk))
    after = dict(event.after or {})
    after.pop("deadline", None)
    emails = sorted(
        OutboundEmail.objects.filter(key__startswith=f"campaign-{campaign.pk}-assigned-").values_list(
            "to_address", "subject"
        )
    )
    return {"after": after, "emails": [(address, subject.replace(campaign.name, "")) for address, subject in emails]}


def _claimed(definition: Any, actor: User) -> Campaign:
    campaign = services.campaign_create(actor=actor, definition=definition, name=f"Run {Campaign.objects.count()}")
    return services.campaign_launch_request(actor=actor, campaign=campaign, enqueue=False)


def _both_launches(definition: Any, actor: User, *, chunk_size: int) -> tuple[Campaign, Campaign]:
    """The same definition launched by the per-row reference and by the service."""
    reference = _claimed(definition, actor)
    reference_launch_run(campaign_id=reference.pk, chunk_size=chunk_size)
    current = _claimed(definition, actor)
    services.campaign_launch_run(campaign_id=current.pk, chunk_size=chunk_size)
    reference.refresh_from_db()
    current.refresh_from_db()
    return reference, current


RULES = [
    pytest.param({"reviewer_rule": "business_owner"}, id="business-owner"),
    pytest.param({"reviewer_rule": "business_owner", "forbid_self_review": False}, id="business-owner-self-allowed"),
    pytest.param({"reviewer_rule": "technical_owner", "fallback": "user"}, id="technical-owner-fallback-user"),
    pytest.param({"reviewer_rule": "owner_manager", "fallback": "group"}, id="manager-fallback-group"),
    pytest.param({"reviewer_rule": "owner_manager", "fallback": "gone-user-and-group"}, id="manager-gone-fallback"),
    pytest.param({"reviewer_rule": "system_owner", "fallback": "user"}, id="system-owner"),
    pytest.param({"reviewer_rule": "group", "reviewer_group": "iam"}, id="named-group"),
    # A group rule whose group is gone (the form refuses to save one without a group).
    pytest.param(
        {"reviewer_rule": "group", "reviewer_group": "gone", "fallback": "user"}, id="group-gone-fallback-user"
    ),
]


def _definition_values(rule: dict[str, Any], *, fallback_user: User, gone_user: User) -> dict[str, Any]:
    values = {key: value for key, value in rule.items() if key not in ("fallback", "reviewer_group")}
    group = Group.objects.get(name=Pool.IAM_REVIEWERS)
    if rule.get("reviewer_group"):
        values["reviewer_group"] = group
    fallback = rule.get("fallback")
    if fallback == "user":
        values["fallback_user"] = fallback_user
    elif fallback == "group":
        values["fallback_group"] = group
    elif fallback == "gone-user-and-group":
        values["fallback_user"] = gone_user
        values["fallback_group"] = group
    return values


@pytest.mark.parametrize("granularity", ["grant", "integration"])
@pytest.mark.parametrize("rule", RULES)
def test_the_set_based_launch_makes_the_items_the_per_row_launch_made(
    varied: Any, make_definition: Any, iam_admin: Any, reviewer: Any, make_user: Any, rule: Any, granularity: str
) -> None:
    gone = make_user("gone_fallback", Role.REVIEWER)
    definition = make_definition(
        granularity=granularity, **_definition_values(rule, fallback_user=reviewer, gone_user=gone)
    )
    User.objects.filter(pk=gone.pk).update(is_active=False)
    if rule.get("reviewer_group") == "gone":
        CampaignDefinition.objects.filter(pk=definition.pk).update(reviewer_group=None)
        definition.refresh_from_db()
    reference, current = _both_launches(definition, iam_admin, chunk_size=20)
    expected = _items(reference)
    assert len(expected) == (len(varied["grants"]) - 1 if granularity == "grant" else len(varied["integrations"]))
    assert _items(current) == expected
    assert current.status == CampaignStatus.ACTIVE
    assert (current.items_total, current.processed, current.total_expected, current.cursor) == (
        reference.items_total,
        reference.processed,
        reference.total_expected,
        reference.cursor,
    )
    assert _announced(current) == _announced(reference)


def test_the_dataset_exercises_every_reason(varied: Any, make_definition: Any, iam_admin: Any, reviewer: Any) -> None:
    """The comparison above is only as good as its data: the reference meets every case."""
    reasons: set[str] = set()
    for rule in ("business_owner", "owner_manager", "system_owner"):
        campaign = _claimed(make_definition(reviewer_rule=rule, fallback_user=reviewer), iam_admin)
        reference_launch_run(campaign_id=campaign.pk)
        reasons |= set(ReviewItem.objects.filter(campaign=campaign).values_list("assigned_reason", flat=True))
    assert {
        "business owner",
        "fallback: the business owner left",
        "fallback: the business owner is the integration's only owner",
        "business owner's manager",
        "fallback: no business owner's manager",
        "fallback: the business owner's manager left",
        "resource system owner",
        "fallback: no resource system owner",
    } <= reasons
    assert ReviewItem.objects.filter(critical=True).exists() and ReviewItem.objects.filter(critical=False).exists()


@pytest.mark.parametrize("granularity", ["grant", "integration"])
def test_a_resumed_launch_makes_the_same_items(
    varied: Any,
    make_definition: Any,
    iam_admin: Any,
    reviewer: Any,
    granularity: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    definition = make_definition(granularity=granularity, fallback_user=reviewer)
    reference = _claimed(definition, iam_admin)
    reference_launch_run(campaign_id=reference.pk, chunk_size=20)
    current = _claimed(definition, iam_admin)
    real_save = launch._save_chunk
    saves = {"n": 0}

    def dying_save(*args: Any, **kwargs: Any) -> None:
        saves["n"] += 1
        if saves["n"] == 3:
            raise RuntimeError("worker killed")
        real_save(*args, **kwargs)

    monkeypatch.setattr(launch, "_save_chunk", dying_save)
    with pytest.raises(RuntimeError):
        services.campaign_launch_run(campaign_id=current.pk, chunk_size=8)
    half = ReviewItem.objects.filter(campaign=current).count()
    assert 0 < half < len(_items(reference))
    monkeypatch.setattr(launch, "_save_chunk", real_save)
    # Replay the committed chunks too, as if their progress had been lost.
    Campaign.objects.filter(pk=current.pk).update(cursor=0)
    services.campaign_launch_run(campaign_id=current.pk, chunk_size=8)
    assert _items(current) == _items(reference)
    emails = OutboundEmail.objects.filter(key__startswith=f"campaign-{current.pk}-assigned-")
    assert emails.count() == len(set(emails.values_list("to_address", flat=True))) > 0


def test_a_chunk_costs_the_same_queries_whatever_its_size(
    varied: Any, make_definition: Any, iam_admin: Any, make_grant: Any, catalog: Any
) -> None:
    """No statement per grant: a chunk of many grants is written by as many queries as a chunk
    of few (the emails are per reviewer, and the reviewers are the same)."""
    definition = make_definition()
    few = _claimed(definition, iam_admin)
    with CaptureQueriesContext(connection) as few_queries:
        launch._launch_per_grant(few, selectors.selection_for(definition), 10_000)
    for integration in varied["integrations"]:
        make_grant(
            integration,
            Scope.objects.create(
                system=catalog["read"].system, name=f"x{integration.pk}", code=f"crm:x{integration.pk}"
            ),
        )
    many = _claimed(definition, iam_admin)
    with CaptureQueriesContext(connection) as many_queries:
        launch._launch_per_grant(many, selectors.selection_for(definition), 10_000)
    assert ReviewItem.objects.filter(campaign=many).count() > ReviewItem.objects.filter(campaign=few).count()
    assert len(many_queries) == len(few_queries)
