"""Admin: people and tokens are managed here; the audit trail and the outbox are read-only.

State changes made here go through the service functions (DESIGN.md invariant 1).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from governance import services
from governance.models import ApiToken, AuditEvent, OutboundEmail, User


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(SimpleHistoryAdmin, BaseUserAdmin):  # type: ignore[misc]
    list_display = ("username", "display_name", "email", "department", "manager", "is_active", "is_service_account")
    list_filter = ("is_active", "is_service_account", "groups")
    fieldsets = (
        *BaseUserAdmin.fieldsets,  # type: ignore[misc]
        ("Organisation", {"fields": ("display_name", "department", "manager", "is_service_account")}),
    )
    actions = ["deactivate_users"]

    @admin.action(description="Deactivate selected accounts (leavers): orphan their integrations")
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset.filter(is_active=True):
            services.user_deactivate(actor=request.user, user=user, reason="Deactivated in the admin")  # type: ignore[arg-type]
        messages.success(request, "Accounts deactivated.")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "actor_username",
        "actor_kind",
        "action",
        "target_type",
        "target_id",
        "owner_username",
    )
    list_filter = ("actor_kind", "action", "target_type")
    search_fields = ("actor_username", "owner_username", "target_repr", "target_id", "request_id")
    date_hierarchy = "created_at"


@admin.register(OutboundEmail)
class OutboundEmailAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "to_address", "subject", "status", "attempts", "sent_at")
    list_filter = ("status",)
    search_fields = ("to_address", "subject", "key")


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ("prefix", "user", "name", "created_at", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("revoked_at",)
    actions = ["revoke_tokens"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("governance.change_apitoken")) and obj is None

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            services.api_token_revoke(actor=request.user, token=token, reason="Revoked in the admin")  # type: ignore[arg-type]
        messages.success(request, "Tokens revoked.")
