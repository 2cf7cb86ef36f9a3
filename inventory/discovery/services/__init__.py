"""Writes of discovery: every decision on a finding, the questions asked of the people who
consented, the deadlines' default actions and revocations at the provider. Each public function
takes ``actor=`` (tasks: ids), checks who may call it, changes the rows under lock and audits in
the same transaction, with the accountable owner; an error changes nothing. Imports are the
importer's (``inventory.discovery.importer``). Callers import from here."""

from inventory.discovery.services.decisions import (
    DISCOVERED_TAG,
    claim_prefill,
    finding_assign,
    finding_claim,
    finding_dismiss,
    finding_may_claim_for_self,
    finding_open_review,
    finding_sanction,
)
from inventory.discovery.services.notices import MINE_PATH, deadlines_apply, digests_send
from inventory.discovery.services.revocations import (
    consent_not_needed,
    finding_revoke,
    remediation_execute,
)

__all__ = [
    "DISCOVERED_TAG",
    "MINE_PATH",
    "claim_prefill",
    "consent_not_needed",
    "deadlines_apply",
    "digests_send",
    "finding_assign",
    "finding_claim",
    "finding_dismiss",
    "finding_may_claim_for_self",
    "finding_open_review",
    "finding_revoke",
    "finding_sanction",
    "remediation_execute",
]
