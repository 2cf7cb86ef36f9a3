"""Admin: read-mostly. The inventory is changed through the portal's pages and API (services);
the admin shows the rows and their history (never reverting to an old version: see
``governance.admin.NoHistoryRevert``), and its one action calls the kill-switch service."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from governance.admin import NoHistoryRevert, NoWrites
from governance.exceptions import DomainError
from governance.web import signed_in
from inventory import services
from inventory.models import (
    Credential,
    Grant,
    Integration,
    OwnershipTransfer,
    ResourceSystem,
    Scope,
)


class ReadOnly(NoWrites, NoHistoryRevert, SimpleHistoryAdmin):
    """Rows and their history to read; the kill switch is the one action (through its service)."""


class CredentialInline(admin.TabularInline):
    model = Credential
    extra = 0
    can_delete = False
    readonly_fields = ("type", "identifier", "created_at", "expires_at", "last_rotated_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Integration)
class IntegrationAdmin(ReadOnly):
    list_display = ("name", "kind", "status", "risk_tier", "risk_score", "business_owner", "orphaned", "updated_at")
    list_filter = ("status", "risk_tier", "kind", "orphaned", "environment")
    search_fields = ("name", "purpose", "vendor", "ticket_ref")
    list_select_related = ("business_owner",)
    raw_id_fields = ("business_owner", "technical_owner", "backup_owner", "created_by")
    inlines = [CredentialInline]
    actions = ["suspend"]

    @admin.action(description="Suspend (kill switch: revoke every active grant)", permissions=["suspend"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        done = 0
        for integ in queryset:
            try:
                services.integration_suspend(
                    actor=signed_in(request), integration=integ, reason="Suspended from the admin"
                )
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{integ}: {exc.detail}", messages.ERROR)
        self.message_user(request, f"Suspended {done} integration(s).")

    def has_suspend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("inventory.suspend_integration")


@admin.register(Grant)
class GrantAdmin(ReadOnly):
    list_display = ("integration", "scope", "status", "granted_at", "expires_at", "source_type", "source_id")
    list_filter = ("status",)
    list_select_related = ("integration", "scope")
    raw_id_fields = ("integration", "scope", "ended_by")


@admin.register(ResourceSystem)
class ResourceSystemAdmin(ReadOnly):
    list_display = ("code", "name", "audience", "token_algorithm")


@admin.register(Scope)
class ScopeAdmin(ReadOnly):
    list_display = ("code", "sensitivity", "access", "is_active", "jit_eligible")
    list_filter = ("sensitivity", "access", "is_active", "jit_eligible", "system")


@admin.register(OwnershipTransfer)
class OwnershipTransferAdmin(ReadOnly):
    list_display = ("integration", "role", "from_user", "to_user", "status", "created_at")
    list_filter = ("status", "role")
