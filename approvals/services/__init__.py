"""Writes of approvals. Each public function takes ``actor=``, checks that the actor may act,
validates, locks, changes the rows and audits in the same transaction; emails go to the outbox in
that transaction too, so nothing is sent for a change that rolled back.

A request moves from in review to approved (its grants created in the same transaction),
rejected or changes requested by its reviewers' decisions; changes requested goes back to review
as the next round when resubmitted; an open request can be withdrawn by its requester or owners
and is cancelled when its integration is suspended, retired or orphaned. Separation of duties
holds whoever calls: nobody decides a step of a request for an integration they own or requested,
and nobody decides two steps of the same round. Locks are taken integration, then request, then
step, everywhere (the inventory locks the integration first too and sends its signals while
holding it). A just-in-time elevation is opened by the runtime's token endpoint, as the system for
the integration's business owner; its approval grants that one scope until it ends by itself.
A change request (a runtime policy version to enforce or roll back) is opened by the app that
owns the change, decided by the IAM admins who did not write it, and applied by the handler that
app registered (``approvals.extensions.register_change_kind``) in the transaction of the final
decision.

Callers import the functions from here; the modules of this package hold them by subject."""

from approvals.services.changes import change_request_cancel, change_request_open
from approvals.services.decisions import request_decide
from approvals.services.delegation import (
    assignment_reassign,
    delegation_create,
    delegation_revoke,
    delegations_sync,
)
from approvals.services.elevation import elevation_open
from approvals.services.expiry import grants_expire_due, grants_warn_expiring, renewal_request_open
from approvals.services.notifications import reviewer_digests_send
from approvals.services.queue_keys import assignments_rescore, queue_keys_fill
from approvals.services.requests import (
    request_open,
    request_restart_for_risk,
    request_resubmit,
    request_withdraw,
    requests_cancel_for_integration,
)
from approvals.services.resubmission import request_resubmit_edited
from approvals.services.sla import steps_escalate_overdue, steps_remind_due
from approvals.services.workflows import (
    default_workflows_ensure,
    expiry_policy_set,
    workflow_step_delete,
    workflow_step_save,
)

__all__ = [
    "assignments_rescore",
    "queue_keys_fill",
    "assignment_reassign",
    "delegation_create",
    "delegation_revoke",
    "delegations_sync",
    "change_request_cancel",
    "change_request_open",
    "default_workflows_ensure",
    "elevation_open",
    "expiry_policy_set",
    "grants_expire_due",
    "grants_warn_expiring",
    "renewal_request_open",
    "request_decide",
    "request_open",
    "request_restart_for_risk",
    "request_resubmit",
    "request_resubmit_edited",
    "request_withdraw",
    "requests_cancel_for_integration",
    "reviewer_digests_send",
    "steps_escalate_overdue",
    "steps_remind_due",
    "workflow_step_delete",
    "workflow_step_save",
]
