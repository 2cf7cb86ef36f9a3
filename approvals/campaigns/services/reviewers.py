"""Who reviews each item of a launch: a definition's reviewer rule, with its fallback when the
rule names nobody, somebody who left, or an integration's only owner reviewing themselves."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from approvals.campaigns.models import CampaignDefinition, ReviewerRule
from governance.models import User
from inventory.models import ResourceSystem


@dataclass(frozen=True)
class Assignment:
    reviewer_id: int | None
    group_id: int | None
    reason: str


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
        definition = self.definition
        if definition.fallback_user_id and self.active(definition.fallback_user_id):
            return Assignment(definition.fallback_user_id, None, f"fallback: {problem}")
        if definition.fallback_group_id:
            return Assignment(None, definition.fallback_group_id, f"fallback group: {problem}")
        return Assignment(self.campaign_owner_id, None, f"campaign owner (no fallback set): {problem}")

    def _candidate(self, *, business: int | None, technical: int | None, system: int | None) -> tuple[str, int | None]:
        """The person the rule names (other than a group), and how the rule calls them."""
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
            # The only owner would review their own integration alone.
            return self.fallback(f"the {label} is the integration's only owner")
        return Assignment(candidate, None, label)
