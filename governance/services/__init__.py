"""Writes of the kernel, by subject: people and roles, sign-in lockouts, API tokens, the email
outbox and people's notification choices. Callers import them from here.

Every function takes ``actor=``, checks that the actor may do it, and audits in the transaction
of the change: no state changes anywhere else.
"""

from governance.services.notifications import notification_preference_set
from governance.services.outbox import (
    EmailSpec,
    email_deliver,
    email_enqueue,
    email_enqueue_many,
    email_retry,
    outbox_due_ids,
)
from governance.services.people import (
    PROFILE_FIELDS,
    user_create,
    user_deactivate,
    user_set_password,
    user_set_roles,
    user_set_staff,
    user_update_profile,
)
from governance.services.sign_in import lockout_owner, login_lockout_record
from governance.services.tokens import api_token_issue, api_token_issue_personal, api_token_revoke, hash_token_key

__all__ = [
    "PROFILE_FIELDS",
    "EmailSpec",
    "api_token_issue",
    "api_token_issue_personal",
    "api_token_revoke",
    "email_deliver",
    "email_enqueue",
    "email_enqueue_many",
    "email_retry",
    "hash_token_key",
    "lockout_owner",
    "login_lockout_record",
    "notification_preference_set",
    "outbox_due_ids",
    "user_create",
    "user_deactivate",
    "user_set_password",
    "user_set_roles",
    "user_set_staff",
    "user_update_profile",
]
