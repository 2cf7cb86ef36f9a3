"""Writes of the inventory, by subject. Each public function takes ``actor=``, checks who may
call it, validates, changes the rows under lock and audits in the same transaction; follow-up
work (emails, approvals' reactions through ``inventory.signals``) joins that transaction. The
few that other services drive (status moves, grants made or ended in bulk, rescoring,
orphaning) say in their docstring which caller checked. Callers import from here."""

from inventory.services.catalog import SCOPE_FIELDS, SYSTEM_FIELDS, resource_system_save, scope_save
from inventory.services.grants import grant_create_many, grant_revoke, grants_end_many
from inventory.services.integrations import integration_register, integration_update
from inventory.services.lifecycle import (
    INTEGRATION_TRANSITIONS,
    integration_reactivate,
    integration_retire,
    integration_submit,
    integration_suspend,
    integration_transition,
)
from inventory.services.ownership import (
    integrations_orphan_for_user,
    ownership_transfer_accept,
    ownership_transfer_decline,
    ownership_transfer_propose,
)
from inventory.services.scoring import integrations_risk_refresh, search_text_of
from inventory.services.validation import INTEGRATION_INPUT_FIELDS, PLAIN_INPUT_FIELDS

__all__ = [
    "INTEGRATION_INPUT_FIELDS",
    "INTEGRATION_TRANSITIONS",
    "PLAIN_INPUT_FIELDS",
    "SCOPE_FIELDS",
    "SYSTEM_FIELDS",
    "grant_create_many",
    "grant_revoke",
    "grants_end_many",
    "integration_reactivate",
    "integration_register",
    "integration_retire",
    "integration_submit",
    "integration_suspend",
    "integration_transition",
    "integration_update",
    "integrations_orphan_for_user",
    "integrations_risk_refresh",
    "ownership_transfer_accept",
    "ownership_transfer_decline",
    "ownership_transfer_propose",
    "resource_system_save",
    "scope_save",
    "search_text_of",
]
