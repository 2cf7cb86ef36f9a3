"""A faithful copy of the per-row launch as it was before the set-based one (each grant read into
Python, its reviewer resolved by ``ReferenceResolver``, rows inserted with ``executemany``). The
set-based launch must make exactly the items this makes; the tests compare the two."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import connection, transaction
from django.db.models import F, QuerySet

from approvals.campaigns import selectors
from approvals.campaigns.models import (
    Campaign,
    CampaignDefinition,
    CampaignStatus,
    Granularity,
    ItemStatus,
    ReviewerRule,
    ReviewItem,
)
from approvals.campaigns.services import launch
from approvals.campaigns.services.reviewers import Assignment
from governance.models import User
from inventory.choices import RiskTier, Sensitivity
from inventory.models import Grant, ResourceSystem


class ReferenceResolver:
    """The per-grant reviewer rule as it was: people and system owners read into dicts."""

    def __init__(self, definition: CampaignDefinition, campaign_owner_id: int) -> None:
        self.definition = definition
        self.campaign_owner_id = campaign_owner_id
        self.people: dict[int, tuple[bool, int | None]] = {
            pk: (active, manager) for pk, active, manager in User.objects.values_list("pk", "is_active", "manager_id")
        }
        self.system_owners: dict[int, list[int]] = defaultdict(list)
        if definition.reviewer_rule == ReviewerRule.SYSTEM_OWNER:
            through = ResourceSystem.owners.through
            for system_id, user_id in through.objects.order_by("user_id").values_list("resourcesystem_id", "user_id"):
                if self.active(user_id):
                    self.system_owners[system_id].append(user_id)

    def active(self, user_id: int | None) -> bool:
        return user_id is not None and self.people.get(user_id, (False, None))[0]

    def fallback(self, problem: str) -> Assignment:
        definition = self.definition
        if definition.fallback_user_id and self.active(definition.fallback_user_id):
            return Assignment(definition.fallback_user_id, None, f"fallback: {problem}")
        if definition.fallback_group_id:
            return Assignment(None, definition.fallback_group_id, f"fallback group: {problem}")
        return Assignment(self.campaign_owner_id, None, f"campaign owner (no fallback set): {problem}")

    def _candidate(self, *, business: int | None, technical: int | None, system: int | None) -> tuple[str, int | None]:
        rule = self.definition.reviewer_rule
        if rule == ReviewerRule.BUSINESS_OWNER:
            return "business owner", business
        if rule == ReviewerRule.TECHNICAL_OWNER:
            return "technical owner", technical
        if rule == ReviewerRule.OWNER_MANAGER:
            return "business owner's manager", self.people.get(business or 0, (False, None))[1]
        owners = self.system_owners.get(system or 0, [])
        return "resource system owner", owners[0] if owners else None

    def resolve(
        self, *, business: int | None, technical: int | None, backup: int | None, system: int | None
    ) -> Assignment:
        if self.definition.reviewer_rule == ReviewerRule.GROUP:
            if self.definition.reviewer_group_id:
                return Assignment(None, self.definition.reviewer_group_id, "named group")
            return self.fallback("no group named")
        label, candidate = self._candidate(business=business, technical=technical, system=system)
        if candidate is None:
            return self.fallback(f"no {label}")
        if not self.active(candidate):
            return self.fallback(f"the {label} left")
        active_owners = {owner for owner in (business, technical, backup) if self.active(owner)}
        if self.definition.forbid_self_review and active_owners == {candidate}:
            return self.fallback(f"the {label} is the integration's only owner")
        return Assignment(candidate, None, label)


_GRANT_FIELDS = (
    "pk",
    "integration_id",
    "integration__business_owner_id",
    "integration__technical_owner_id",
    "integration__backup_owner_id",
    "scope__system_id",
    "scope__sensitivity",
    "integration__risk_tier",
)

_ITEM_COLUMNS = (
    "campaign_id",
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

ItemRow = tuple[Any, ...]


def _is_critical(sensitivity: str, tier: str) -> bool:
    return sensitivity == Sensitivity.CRITICAL or tier == RiskTier.CRITICAL


def _grant_ids_column(grant_ids: list[int]) -> Any:
    return ReviewItem._meta.get_field("grant_ids").get_db_prep_save(grant_ids, connection)


def _item_row(
    campaign: Campaign,
    integration_id: int,
    grant_id: int | None,
    grant_ids_column: Any,
    assignment: Assignment,
    critical: bool,
) -> ItemRow:
    return (
        campaign.pk,
        integration_id,
        grant_id,
        grant_ids_column,
        assignment.reviewer_id,
        assignment.group_id,
        assignment.reason,
        critical,
        ItemStatus.OPEN,
        "",
        "",
        False,
        False,
    )


def _insert_items(rows: list[ItemRow]) -> None:
    if not rows:
        return
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for column in _ITEM_COLUMNS)
    placeholders = ", ".join(["%s"] * len(_ITEM_COLUMNS))
    sql = f"INSERT INTO {quote(ReviewItem._meta.db_table)} ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _save_chunk(campaign: Campaign, rows: list[ItemRow], cursor: int, scanned: int) -> None:
    with transaction.atomic():
        _insert_items(rows)
        Campaign.objects.filter(pk=campaign.pk).update(cursor=cursor, processed=F("processed") + scanned)


def _launch_per_grant(campaign: Campaign, selection: QuerySet[Grant], resolver: ReferenceResolver, chunk: int) -> None:
    cursor = campaign.cursor
    no_grant_ids = _grant_ids_column([])
    while True:
        rows = list(selection.filter(pk__gt=cursor).order_by("pk").values_list(*_GRANT_FIELDS)[:chunk])
        if not rows:
            return
        items = []
        for pk, integration_id, business, technical, backup, system, sensitivity, tier in rows:
            assignment = resolver.resolve(business=business, technical=technical, backup=backup, system=system)
            items.append(
                _item_row(campaign, integration_id, pk, no_grant_ids, assignment, _is_critical(sensitivity, tier))
            )
        cursor = rows[-1][0]
        _save_chunk(campaign, items, cursor, len(rows))


def _launch_per_integration(
    campaign: Campaign, selection: QuerySet[Grant], resolver: ReferenceResolver, chunk: int
) -> None:
    cursor = campaign.cursor
    per_chunk = max(chunk // 10, 1)
    while True:
        ids = list(
            selection.filter(integration_id__gt=cursor)
            .order_by("integration_id")
            .values_list("integration_id", flat=True)
            .distinct()[:per_chunk]
        )
        if not ids:
            return
        grouped: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for row in (
            selection.filter(integration_id__in=ids).order_by("integration_id", "pk").values_list(*_GRANT_FIELDS)
        ):
            grouped[row[1]].append(row)
        items = []
        for integration_id in ids:
            rows = grouped.get(integration_id, [])
            if not rows:
                continue
            _pk, _integration, business, technical, backup, system, _sensitivity, _tier = rows[0]
            assignment = resolver.resolve(business=business, technical=technical, backup=backup, system=system)
            grant_ids = _grant_ids_column([row[0] for row in rows])
            critical = any(_is_critical(row[6], row[7]) for row in rows)
            items.append(_item_row(campaign, integration_id, None, grant_ids, assignment, critical))
        cursor = ids[-1]
        _save_chunk(campaign, items, cursor, len(ids))


def reference_launch_run(*, campaign_id: int, chunk_size: int = 2000) -> Campaign | None:
    """``campaign_launch_run`` with the per-row chunks; the end of the launch (emails, events,
    audit) is the service's own."""
    campaign = Campaign.objects.select_related("definition", "owner").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != CampaignStatus.LAUNCHING:
        return None
    selection = selectors.selection_for(campaign.definition, now=campaign.launched_at)
    if campaign.total_expected == 0 and campaign.cursor == 0:
        launch._record_expected(campaign, selection)
    resolver = ReferenceResolver(campaign.definition, campaign.owner_id)
    if campaign.granularity == Granularity.GRANT:
        _launch_per_grant(campaign, selection, resolver, chunk_size)
    else:
        _launch_per_integration(campaign, selection, resolver, chunk_size)
    return launch._activate_and_announce(campaign)
