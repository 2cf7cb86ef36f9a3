"""Who reviews each item of a launch: a definition's reviewer rule, with its fallback when the
rule names nobody, somebody who left, or an integration's only owner reviewing themselves.

The rule exists twice, kept side by side here: ``ReviewerResolver`` applies it to plain values in
Python, ``assignment_sql`` writes it as SQL so that a launch assigns a whole chunk of items in the
statement that inserts them. Both read the same labels and the same fallback; the launch tests
prove that the two assign every item alike."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import connection

from approvals.campaigns.models import CampaignDefinition, ReviewerRule
from governance.models import User
from inventory.models import ResourceSystem


@dataclass(frozen=True)
class Assignment:
    reviewer_id: int | None
    group_id: int | None
    reason: str


# How each rule calls the person it names (the reason an item shows, and the fallback's wording).
RULE_LABELS = {
    ReviewerRule.BUSINESS_OWNER: "business owner",
    ReviewerRule.TECHNICAL_OWNER: "technical owner",
    ReviewerRule.OWNER_MANAGER: "business owner's manager",
    ReviewerRule.SYSTEM_OWNER: "resource system owner",
}


def fallback_assignment(
    definition: CampaignDefinition, campaign_owner_id: int, *, fallback_user_active: bool, problem: str
) -> Assignment:
    """The fallback user if still active, else the fallback group, else the campaign's owner."""
    if definition.fallback_user_id and fallback_user_active:
        return Assignment(definition.fallback_user_id, None, f"fallback: {problem}")
    if definition.fallback_group_id:
        return Assignment(None, definition.fallback_group_id, f"fallback group: {problem}")
    return Assignment(campaign_owner_id, None, f"campaign owner (no fallback set): {problem}")


def _problems(label: str) -> tuple[str, str, str]:
    """Why the person the rule names cannot review: nobody named, gone, or the only owner."""
    return f"no {label}", f"the {label} left", f"the {label} is the integration's only owner"


class ReviewerResolver:
    """Applies a definition's reviewer rule and fallback to plain values (no query per item):
    the people's active flags and managers and the resource systems' owners are read once."""

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
        active = self.active(self.definition.fallback_user_id)
        return fallback_assignment(
            self.definition, self.campaign_owner_id, fallback_user_active=active, problem=problem
        )

    def _candidate(self, *, business: int | None, technical: int | None, system: int | None) -> int | None:
        """The person the rule names (other than a group)."""
        rule = self.definition.reviewer_rule
        if rule == ReviewerRule.BUSINESS_OWNER:
            return business
        if rule == ReviewerRule.TECHNICAL_OWNER:
            return technical
        if rule == ReviewerRule.OWNER_MANAGER:
            return self.people.get(business or 0, (False, None))[1]
        owners = self.system_owners.get(system or 0, [])
        return owners[0] if owners else None

    def resolve(
        self, *, business: int | None, technical: int | None, backup: int | None, system: int | None
    ) -> Assignment:
        if self.definition.reviewer_rule == ReviewerRule.GROUP:
            if self.definition.reviewer_group_id:
                return Assignment(None, self.definition.reviewer_group_id, "named group")
            return self.fallback("no group named")
        label = RULE_LABELS[ReviewerRule(self.definition.reviewer_rule)]
        nobody, left, only_owner = _problems(label)
        candidate = self._candidate(business=business, technical=technical, system=system)
        if candidate is None:
            return self.fallback(nobody)
        if not self.active(candidate):
            return self.fallback(left)
        active_owners = {owner for owner in (business, technical, backup) if self.active(owner)}
        if self.definition.forbid_self_review and active_owners == {candidate}:
            # The only owner would review their own integration alone.
            return self.fallback(only_owner)
        return Assignment(candidate, None, label)


# --- The same rule in SQL ----------------------------------------------------------------------------


def _quoted_tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    through = ResourceSystem.owners.through._meta
    return {
        "users": quote(User._meta.db_table),
        "system_owners": quote(through.db_table),
        "owner_system": quote(through.get_field("resourcesystem").column),
        "owner_user": quote(through.get_field("user").column),
    }


def _candidate_sql(rule: str, tables: dict[str, str]) -> tuple[str, str]:
    """(the joins, the expression) naming the rule's person for a row of ``source``."""
    if rule == ReviewerRule.BUSINESS_OWNER:
        return "", "source.business_id"
    if rule == ReviewerRule.TECHNICAL_OWNER:
        return "", "source.technical_id"
    if rule == ReviewerRule.OWNER_MANAGER:
        # The business owner's manager, whether or not the business owner is still active.
        return f"LEFT JOIN {tables['users']} managed ON managed.id = source.business_id", "managed.manager_id"
    # The active owner of the row's resource system with the lowest id.
    joins = (
        f"LEFT JOIN (SELECT owned.{tables['owner_system']} AS system_id, MIN(owned.{tables['owner_user']}) AS user_id"
        f" FROM {tables['system_owners']} owned JOIN {tables['users']} owner_user"
        f" ON owner_user.id = owned.{tables['owner_user']} WHERE owner_user.is_active"
        f" GROUP BY owned.{tables['owner_system']}) system_owner ON system_owner.system_id = source.system_id"
    )
    return joins, "system_owner.user_id"


_OWNER_ROLES = ("business", "technical", "backup")


def _only_owner_sql(tables: dict[str, str]) -> tuple[str, str]:
    """(the joins, the condition) of "the active owners among business, technical and backup are
    exactly the candidate" for a row of ``named``, whose candidate is known to be active."""
    joins = " ".join(
        f"LEFT JOIN {tables['users']} {role}_user ON {role}_user.id = named.{role}_id" for role in _OWNER_ROLES
    )
    among = " OR ".join(f"named.{role}_id = named.candidate" for role in _OWNER_ROLES)
    alone = " AND ".join(
        f"(named.{role}_id IS NULL OR named.{role}_id = named.candidate OR NOT COALESCE({role}_user.is_active, FALSE))"
        for role in _OWNER_ROLES
    )
    return joins, f"({among}) AND {alone}"


def assignment_sql(definition: CampaignDefinition, campaign_owner_id: int, rows_sql: str) -> tuple[str, list[Any]]:
    """A SELECT of every column of the derived table ``rows_sql`` (which has the columns
    ``business_id``, ``technical_id``, ``backup_id`` and ``system_id``) plus ``reviewer_id``,
    ``reviewer_group_id`` and ``assigned_reason``, assigned as ``ReviewerResolver.resolve``
    assigns them; returns it with the parameters that come before those of ``rows_sql``."""
    fallback_active = bool(
        definition.fallback_user_id and User.objects.filter(pk=definition.fallback_user_id, is_active=True).exists()
    )

    def fallback(problem: str) -> Assignment:
        return fallback_assignment(definition, campaign_owner_id, fallback_user_active=fallback_active, problem=problem)

    rule = definition.reviewer_rule
    if rule == ReviewerRule.GROUP:
        fixed = (
            Assignment(None, definition.reviewer_group_id, "named group")
            if definition.reviewer_group_id
            else fallback("no group named")
        )
        sql = (
            "SELECT source.*, CAST(%s AS BIGINT) AS reviewer_id, CAST(%s AS INTEGER) AS reviewer_group_id,"
            f" %s AS assigned_reason FROM ({rows_sql}) source"
        )
        return sql, [fixed.reviewer_id, fixed.group_id, fixed.reason]
    tables = _quoted_tables()
    label = RULE_LABELS[ReviewerRule(rule)]
    problems = _problems(label)
    fallback_to = fallback(problems[0])  # the same person or group whatever the problem
    candidate_joins, candidate = _candidate_sql(rule, tables)
    owner_joins, only_owner = _only_owner_sql(tables) if definition.forbid_self_review else ("", "FALSE")
    # problem: 0 the candidate reviews, 1 nobody named, 2 the person left, 3 the only owner.
    judged = (
        "SELECT named.*, CASE WHEN named.candidate IS NULL THEN 1"
        f" WHEN NOT COALESCE(candidate_user.is_active, FALSE) THEN 2 WHEN {only_owner} THEN 3 ELSE 0 END AS problem"
        f" FROM (SELECT source.*, {candidate} AS candidate FROM ({rows_sql}) source {candidate_joins}) named"
        f" LEFT JOIN {tables['users']} candidate_user ON candidate_user.id = named.candidate {owner_joins}"
    )
    sql = (
        "SELECT judged.*,"
        " CASE judged.problem WHEN 0 THEN judged.candidate ELSE CAST(%s AS BIGINT) END AS reviewer_id,"
        " CASE judged.problem WHEN 0 THEN CAST(NULL AS INTEGER) ELSE CAST(%s AS INTEGER) END AS reviewer_group_id,"
        " CASE judged.problem WHEN 0 THEN %s WHEN 1 THEN %s WHEN 2 THEN %s ELSE %s END AS assigned_reason"
        f" FROM ({judged}) judged"
    )
    reasons = [fallback(problem).reason for problem in problems]
    return sql, [fallback_to.reviewer_id, fallback_to.group_id, label, *reasons]
