"""Writes of the inventory, by subject. Each public function takes ``actor=``, checks who may
call it, validates, changes the rows under lock and audits in the same transaction; follow-up
work (emails, approvals' reactions through ``inventory.signals``) joins that transaction. The
few that other services drive (status moves, grants made or ended in bulk, rescoring,
orphaning) say in their docstring which caller checked. Callers import from here."""

from inventory.services.catalog import SCOPE_FIELDS, SYSTEM_FIELDS, resource_system_save, scope_save
from inventory.services.delegates import integration_delegate_add, integration_delegate_remove
from inventory.services.external_ids import (
    EXTERNAL_APP_IDS_MAX,
    external_app_id_problem,
    external_app_ids_normalise,
    external_app_ids_set,
)
from inventory.services.grants import grant_create_many, grant_revoke, grants_end_many
from inventory.services.identities import (
    CLAIM_VALUE_MAX_LENGTH,
    grant_usage_record,
    workload_binding_remove,
    workload_binding_set,
    workload_bindings_verified,
)
from inventory.services.integrations import integration_register, integration_update
from inventory.services.issuers import (
    ISSUER_FIELDS,
    ISSUER_INPUT_FIELDS,
    NUMBER_LIMITS,
    discovery_url_of,
    keys_are_pasted,
    trusted_issuer_create,
    trusted_issuer_keys_failed,
    trusted_issuer_keys_fetched,
    trusted_issuer_set_active,
    trusted_issuer_update,
)
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
    "CLAIM_VALUE_MAX_LENGTH",
    "EXTERNAL_APP_IDS_MAX",
    "INTEGRATION_INPUT_FIELDS",
    "INTEGRATION_TRANSITIONS",
    "ISSUER_FIELDS",
    "ISSUER_INPUT_FIELDS",
    "NUMBER_LIMITS",
    "PLAIN_INPUT_FIELDS",
    "SCOPE_FIELDS",
    "SYSTEM_FIELDS",
    "grant_create_many",
    "grant_revoke",
    "grant_usage_record",
    "grants_end_many",
    "discovery_url_of",
    "external_app_id_problem",
    "external_app_ids_normalise",
    "external_app_ids_set",
    "integration_delegate_add",
    "integration_delegate_remove",
    "integration_reactivate",
    "integration_register",
    "integration_retire",
    "integration_submit",
    "integration_suspend",
    "integration_transition",
    "integration_update",
    "integrations_orphan_for_user",
    "integrations_risk_refresh",
    "keys_are_pasted",
    "ownership_transfer_accept",
    "ownership_transfer_decline",
    "ownership_transfer_propose",
    "resource_system_save",
    "scope_save",
    "search_text_of",
    "trusted_issuer_create",
    "trusted_issuer_keys_failed",
    "trusted_issuer_keys_fetched",
    "trusted_issuer_set_active",
    "trusted_issuer_update",
    "workload_binding_remove",
    "workload_binding_set",
    "workload_bindings_verified",
]
