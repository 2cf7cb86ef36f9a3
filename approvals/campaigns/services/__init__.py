"""Writes of recertification campaigns, by subject: definitions and their schedules, launching a
run, reviewers' decisions, and the deadline. Every service takes ``actor=`` (the sweep's acts as
the system on behalf of the campaign's owner), checks who may call it, and changes, audits and
enqueues follow-up work in one transaction; a campaign's status moves only through the checked
transition table. Callers import the services from here."""

from approvals.campaigns.services.common import campaign_transition
from approvals.campaigns.services.deadline import (
    DEADLINE_CHUNK,
    campaign_cancel,
    campaign_close,
    campaign_close_early,
    campaign_escalate_reviewers,
    campaign_send_reminders,
    campaign_tick,
)
from approvals.campaigns.services.decisions import (
    BulkResult,
    review_item_decide,
    review_items_accept_recommendations,
    review_items_decide_many,
)
from approvals.campaigns.services.definitions import (
    cron_valid,
    definition_delete,
    definition_save,
    definition_schedule_sync,
)
from approvals.campaigns.services.launch import (
    LAUNCH_CHUNK,
    campaign_create,
    campaign_launch_request,
    campaign_launch_run,
)
from approvals.campaigns.services.reassign import review_item_reassign
from approvals.campaigns.services.reviewers import Assignment, ReviewerResolver

__all__ = [
    "DEADLINE_CHUNK",
    "LAUNCH_CHUNK",
    "Assignment",
    "BulkResult",
    "ReviewerResolver",
    "campaign_cancel",
    "campaign_close",
    "campaign_close_early",
    "campaign_create",
    "campaign_escalate_reviewers",
    "campaign_launch_request",
    "campaign_launch_run",
    "campaign_send_reminders",
    "campaign_tick",
    "campaign_transition",
    "cron_valid",
    "definition_delete",
    "definition_save",
    "definition_schedule_sync",
    "review_item_decide",
    "review_item_reassign",
    "review_items_accept_recommendations",
    "review_items_decide_many",
]
