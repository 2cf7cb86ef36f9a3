"""Admin: for reading, and for actions that call the services. The admin never goes around them:
privilege, role, activation and password changes happen only through audited services.

People: the user form changes only a person's profile (names, email, display name, department,
manager) through ``user_update_profile``. Roles change with the "Set roles…" action
(``user_set_roles``), activation with the "Deactivate" action (``user_deactivate``); both are
audited. Admin-site access (``is_staff``) is a superuser's to give (``user_set_staff``), and so are
other people's passwords (``user_set_password``; the password page answers 403 to anyone else).
Nobody makes a superuser here, a superuser included: ``manage.py createsuperuser`` does, and
``governance.accounts`` audits it. Accounts are never deleted here (deactivate a leaver instead).

The audit trail, the outbox, role groups and their permissions, django-q2's schedules, results and
queue, single sign-on links, and every row's history are read-only for everyone.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

# Imported first so that their admins are registered before this module replaces them.
import django_q.admin
import social_django.admin
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django_q.models import Failure, OrmQ, Schedule, Success
from simple_history.admin import SimpleHistoryAdmin
from social_django.models import Association, Nonce, UserSocialAuth

from governance import services
from governance.exceptions import DomainError
from governance.models import ApiToken, AuditEvent, OutboundEmail, User
from governance.roles import Pool, Role
from governance.web import signed_in

# --- Building blocks ------------------------------------------------------------------------------


class NoWrites:
    """No add, change or delete through the admin's forms for anyone, superusers included: rows
    change through the services (admin actions may call them)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyMixin(NoWrites):
    """No writes and no bulk actions at all."""

    actions: Any = None


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    pass


class NoHistoryRevert(SimpleHistoryAdmin):
    """django-simple-history's ``SimpleHistoryAdmin`` with history for reading only.

    Its "revert" page saves an old version of the row straight through the ORM, with every
    field the form leaves out taken from that old version (status, activation, flags), without a
    service or an audit event, and it accepts the POST from anyone who may merely view the row.
    """

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


def _replace(model: type[Model], admin_class: type[admin.ModelAdmin]) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, admin_class)


# --- People -----------------------------------------------------------------------------------------

# Shown on every user form, changed only through the actions and services named in the description.
PRIVILEGE_FIELDS = ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")
ROLE_CHOICES = [(r.value, r.label) for r in Role] + [(p.value, p.label) for p in Pool]

# The superuser using the password page, for the password form's save(): Django's view builds the
# form without the request. A context variable is safe across threads and async tasks.
_password_actor: ContextVar[User | None] = ContextVar("governance_admin_password_actor", default=None)


class AccountCreationForm(forms.ModelForm):
    """A new account: a name and a profile; no password (people sign in through single sign-on;
    a superuser may set one afterwards), no roles, no admin-site access."""

    class Meta:
        model = User
        fields = ("username", "is_service_account", *services.PROFILE_FIELDS)

    def clean_username(self) -> str:
        """Account names are unique whatever their case (``user_create`` refuses "Alice" next to
        "alice"): said next to the field, with what was typed kept, rather than on an error page."""
        username = str(self.cleaned_data["username"]).strip()
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(f"An account named {username} already exists.")
        return username


class AuditedAdminPasswordChangeForm(AdminPasswordChangeForm):
    """Django's admin form for setting someone's password (or turning password sign-in off),
    saved through the audited service with the superuser bound by ``UserAdmin``."""

    def save(self, commit: bool = True) -> Any:
        actor = _password_actor.get()
        if actor is None or not commit:
            raise RuntimeError("A password is only ever saved through user_set_password, by the admin's password page.")
        raw = self.cleaned_data["password1"] if self.cleaned_data["set_usable_password"] else None
        self.user = services.user_set_password(
            actor=actor, user=self.user, raw_password=raw, reason="Set in the admin by a superuser"
        )
        return self.user


class SetRolesForm(forms.Form):
    roles = forms.MultipleChoiceField(
        choices=ROLE_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Exactly these roles and reviewer pools; other groups are kept. People who sign in "
        "through single sign-on get their IdP's roles again at their next sign-in.",
    )
    reason = forms.CharField(max_length=500, help_text="Recorded in the audit trail.")


@admin.register(User)
class UserAdmin(NoHistoryRevert, BaseUserAdmin):
    list_display = ("username", "display_name", "email", "department", "manager", "is_active", "is_service_account")
    list_filter = ("is_active", "is_service_account", "is_staff", "is_superuser", "groups")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Organisation", {"fields": ("display_name", "department", "manager", "is_service_account")}),
        (
            "Access",
            {
                "fields": PRIVILEGE_FIELDS,
                "description": "Roles change with the “Set roles…” action and deactivation with the "
                "“Deactivate” action (both audited). Admin-site access is given by a superuser. "
                "Superusers are made only with <code>manage.py createsuperuser</code>.",
            },
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": AccountCreationForm.Meta.fields}),)
    add_form = AccountCreationForm
    add_form_template = None  # the plain change form: Django's user template asks for a password
    change_password_form = AuditedAdminPasswordChangeForm
    actions = ["set_roles", "deactivate_users"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str] | tuple[str, ...]:
        if obj is None:
            return ()
        readonly = ["username", "is_service_account", *PRIVILEGE_FIELDS, "last_login", "date_joined"]
        if request.user.is_superuser:
            readonly.remove("is_staff")  # saved through user_set_staff, below
        return readonly

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or request.user.is_superuser:
            return fieldsets
        # No password summary, and no link to a page that would answer 403.
        return [(name, {**opts, "fields": [f for f in opts["fields"] if f != "password"]}) for name, opts in fieldsets]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an account answers for what it did: deactivate leavers, never delete them

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        manager = form.base_fields.get("manager")
        if obj is not None and isinstance(manager, forms.ModelChoiceField) and manager.queryset is not None:
            # Not offered, so picking oneself is an error next to the field (with what was typed
            # kept) rather than user_update_profile's refusal on an error page.
            manager.queryset = manager.queryset.exclude(pk=obj.pk)
        return form

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        """Every save goes through the services; ``obj`` already carries the form's values in
        memory, so the services compare them with the row they lock."""
        actor = signed_in(request)
        data = form.cleaned_data
        if not change:
            created = services.user_create(
                actor=actor,
                username=data["username"],
                is_service_account=bool(data.get("is_service_account")),
                profile={name: data[name] for name in services.PROFILE_FIELDS if name in data},
            )
            # The admin goes on with ``obj`` (its log entry, the redirect to the new account).
            obj.__dict__.update(created.__dict__)
            return
        reason = "Changed in the admin"
        changes = {name: data[name] for name in form.changed_data if name in services.PROFILE_FIELDS}
        if changes:
            services.user_update_profile(actor=actor, user=obj, changes=changes, reason=reason)
        if "is_staff" in form.changed_data:
            services.user_set_staff(actor=actor, user=obj, is_staff=bool(data["is_staff"]), reason=reason)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing: groups and permissions are read-only here (roles: the "Set roles…" action)."""

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        """Only a superuser sets another person's password here (and their own, as anyone may at
        the admin's "Change password" page): an IAM admin who could reset a reviewer's password
        could sign in as the reviewer and approve his own request."""
        if not request.user.is_superuser:
            raise PermissionDenied
        token = _password_actor.set(signed_in(request))
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            _password_actor.reset(token)

    @admin.action(description="Set roles…", permissions=["change"])
    def set_roles(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
        """An intermediate page asks for the roles and a reason; "Apply" sets them on every
        selected account through ``user_set_roles`` (one audit event per account changed)."""
        form = SetRolesForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            changed = 0
            for user in queryset:
                before = set(user.groups.values_list("pk", flat=True))
                services.user_set_roles(
                    actor=signed_in(request),
                    user=user,
                    roles=form.cleaned_data["roles"],
                    reason=form.cleaned_data["reason"],
                )
                changed += before != set(user.groups.values_list("pk", flat=True))
            self.message_user(request, f"Roles set; {changed} account(s) changed.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Set roles",
            "opts": self.model._meta,
            "form": form,
            "accounts": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/governance/user/set_roles.html", context)

    @admin.action(
        description="Deactivate selected accounts (leavers): orphan their integrations", permissions=["change"]
    )
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        done = 0
        for user in queryset.filter(is_active=True):
            try:
                services.user_deactivate(actor=signed_in(request), user=user, reason="Deactivated in the admin")
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{user}: {exc.detail}", messages.ERROR)
        self.message_user(request, f"{done} account(s) deactivated.")


# --- The trail, tokens, the outbox ----------------------------------------------------------------


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

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            services.api_token_revoke(actor=signed_in(request), token=token, reason="Revoked in the admin")
        messages.success(request, "Tokens revoked.")


# --- Other apps' admins, read-only for everyone ------------------------------------------------------
# Role groups get their permissions from code (governance.roles, after every migrate); schedules are
# created by the apps' code and run only allow-listed functions (governance.scheduling); a task
# result "resubmit" would run a task again outside its schedule; a single sign-on link decides
# which account an IdP identity signs in to.


class RoleGroupAdmin(ReadOnlyMixin, BaseGroupAdmin):
    pass


class ScheduleAdmin(ReadOnlyMixin, django_q.admin.ScheduleAdmin):
    pass


class SuccessAdmin(ReadOnlyMixin, django_q.admin.TaskAdmin):
    pass


class FailureAdmin(ReadOnlyMixin, django_q.admin.FailAdmin):
    pass


class QueueAdmin(ReadOnlyMixin, django_q.admin.QueueAdmin):
    pass


class UserSocialAuthAdmin(ReadOnlyMixin, social_django.admin.UserSocialAuthOption):
    pass


class NonceAdmin(ReadOnlyMixin, social_django.admin.NonceOption):
    pass


class AssociationAdmin(ReadOnlyMixin, social_django.admin.AssociationOption):
    pass


_replace(Group, RoleGroupAdmin)
_replace(Schedule, ScheduleAdmin)
_replace(Success, SuccessAdmin)
_replace(Failure, FailureAdmin)
if admin.site.is_registered(OrmQ):  # django-q2 registers its queue only for the ORM broker
    _replace(OrmQ, QueueAdmin)
_replace(UserSocialAuth, UserSocialAuthAdmin)
_replace(Nonce, NonceAdmin)
_replace(Association, AssociationAdmin)
