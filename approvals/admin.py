"""Read-mostly admin for approvals: requests, steps and decisions are evidence and change only
through the services (the queue, the request page, the API); workflows are edited on the
portal's workflow pages, which audit every change."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from approvals.models import (
    WORKFLOW_STEP_FIELDS,
    AccessRequest,
    Decision,
    GrantExpiryPolicy,
    RequestStep,
    Workflow,
    WorkflowStep,
)
from governance.admin import ReadOnlyAdmin


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "type",
        "integration",
        "subject_label",
        "status",
        "requester",
        "round",
        "risk_tier",
        "created_at",
    ]
    list_filter = ["type", "status", "risk_tier"]
    search_fields = ["integration__name", "subject_label", "ticket_ref", "requester__username"]
    list_select_related = ["integration", "requester"]


@admin.register(RequestStep)
class RequestStepAdmin(ReadOnlyAdmin):
    list_display = ["request", "round", "order", "name", "status", "due_at", "decided_by"]
    list_filter = ["status"]
    list_select_related = ["request__integration", "decided_by"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["request", "step", "reviewer", "decision", "created_at"]
    list_filter = ["decision"]
    list_select_related = ["request__integration", "step", "reviewer"]


class WorkflowStepInline(admin.TabularInline):
    model = WorkflowStep
    extra = 0
    can_delete = False
    fields = readonly_fields = WORKFLOW_STEP_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    list_display = ["name", "request_type", "risk_tier"]
    inlines = [WorkflowStepInline]


@admin.register(GrantExpiryPolicy)
class GrantExpiryPolicyAdmin(ReadOnlyAdmin):
    list_display = ["risk_tier", "days"]
