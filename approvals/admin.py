"""Read-mostly admin for approvals: requests, steps and decisions are evidence and change only
through the services (the queue, the request page, the API); workflows are edited on the
portal's workflow pages, which audit every change."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from approvals import selectors
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessRequest]:
        # The admin shows what the portal shows: a staff reviewer sees no policy change they
        # were not asked to decide.
        return super().get_queryset(request).filter(pk__in=selectors.access_requests_for(request.user).values("pk"))


@admin.register(RequestStep)
class RequestStepAdmin(ReadOnlyAdmin):
    list_display = ["request", "round", "order", "name", "status", "due_at", "decided_by"]
    list_filter = ["status"]
    list_select_related = ["request__integration", "decided_by"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RequestStep]:
        return super().get_queryset(request).filter(request__in=selectors.access_requests_for(request.user))


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["request", "step", "reviewer", "decision", "created_at"]
    list_filter = ["decision"]
    list_select_related = ["request__integration", "step", "reviewer"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Decision]:
        return super().get_queryset(request).filter(request__in=selectors.access_requests_for(request.user))


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
