"""Roles are groups with the permissions they imply.

| role          | group           | model permissions                                          |
|---------------|-----------------|------------------------------------------------------------|
| business user | business_user   | add/change/view their own integrations (visibility from ownership) |
| reviewer      | reviewer        | view everything governed, decide steps and review items     |
| IAM admin     | iam_admin       | every permission of the portal's apps (still audited)       |
| auditor       | auditor         | view everything, change nothing                             |
| resource server | resource_server | none: its API token may introspect the portal's access tokens |

Reviewer pools used by workflows are groups too (``iam_reviewers``, ``security_reviewers``);
their members also hold the reviewer role. ``roles_sync`` creates the groups and grants the
permissions; it runs after every migrate, so new models' permissions follow automatically.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models import TextChoices

GOVERNED_APPS = ("governance", "controls", "inventory", "discovery", "approvals", "campaigns", "webhooks", "runtime")


class Role(TextChoices):
    BUSINESS_USER = "business_user", "Business user"
    REVIEWER = "reviewer", "Reviewer"
    IAM_ADMIN = "iam_admin", "IAM admin"
    AUDITOR = "auditor", "Auditor"
    # An API-token account of a resource server or gateway: it asks whether portal-issued access
    # tokens are still live (introspection) and holds no model permission.
    RESOURCE_SERVER = "resource_server", "Resource server (may introspect tokens)"


class Pool(TextChoices):
    """Reviewer pools seeded for the default workflows."""

    IAM_REVIEWERS = "iam_reviewers", "IAM reviewers"
    SECURITY_REVIEWERS = "security_reviewers", "Security reviewers"


# Every group that ``governance.services.user_set_roles`` manages.
ASSIGNABLE_GROUPS = frozenset({r.value for r in Role} | {p.value for p in Pool})
_GROUP_LABELS: dict[str, str] = {str(value): str(label) for value, label in [*Role.choices, *Pool.choices]}


def group_label(name: str) -> str:
    """A group as people read it: a role's or a pool's name in words ("IAM reviewers"), any
    other group (one synced from the directory) by its own name."""
    return _GROUP_LABELS.get(name, name)


# What admins and auditors also read in the admin: the role groups and the background tasks.
# (Not social_django: its rows hold the IdP's tokens.)
_KERNEL_VIEWS = ("auth.view_group", "auth.view_permission", "django_q.view_*")

# Permission patterns ("app_label.codename", shell-style) each role's group receives.
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    Role.BUSINESS_USER: (
        "inventory.add_integration",
        "inventory.change_integration",
        "inventory.view_integration",
        "inventory.view_scope",
        "inventory.view_resourcesystem",
        "approvals.view_accessrequest",
        "approvals.add_accessrequest",
    ),
    # Reviewers read; what they may decide is the assignment itself, checked by the services.
    Role.REVIEWER: tuple(f"{app}.view_*" for app in GOVERNED_APPS if app != "webhooks"),
    Role.IAM_ADMIN: tuple(f"{app}.*" for app in GOVERNED_APPS) + _KERNEL_VIEWS,
    Role.AUDITOR: tuple(f"{app}.view_*" for app in GOVERNED_APPS) + _KERNEL_VIEWS,
    Role.RESOURCE_SERVER: (),
}


def roles_sync(**_: Any) -> None:
    """Create the role and pool groups and give each role exactly its permissions (idempotent)."""
    perms = list(Permission.objects.select_related("content_type"))
    for role, patterns in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        wanted = [
            p
            for p in perms
            if any(fnmatch.fnmatchcase(f"{p.content_type.app_label}.{p.codename}", pat) for pat in patterns)
        ]
        group.permissions.set(wanted)
    for pool in Pool:
        Group.objects.get_or_create(name=pool)


def role_names(user: Any) -> frozenset[str]:
    """The user's group names, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_governance_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._governance_roles = cached
    return cached


def has_role(user: Any, *roles: str) -> bool:
    if getattr(user, "is_superuser", False) and Role.IAM_ADMIN in roles:
        return True
    names = role_names(user)
    if Role.REVIEWER in roles and names & {p.value for p in Pool}:
        return True
    return bool(names & set(roles))


def is_iam_admin(user: Any) -> bool:
    return has_role(user, Role.IAM_ADMIN)


def is_auditor(user: Any) -> bool:
    return has_role(user, Role.AUDITOR)


def sees_everything(user: Any) -> bool:
    """Reviewers, IAM admins and auditors see every governed object."""
    return has_role(user, Role.REVIEWER, Role.IAM_ADMIN, Role.AUDITOR)


def is_read_only(user: Any) -> bool:
    """True for an auditor who holds no role that may change things."""
    if getattr(user, "is_superuser", False):
        return False
    names = role_names(user)
    writers = {Role.BUSINESS_USER, Role.REVIEWER, Role.IAM_ADMIN} | {p.value for p in Pool}
    return Role.AUDITOR in names and not (names & writers)


def primary_role(user: Any) -> str:
    """The role a home page is built for, most privileged first."""
    for role in (Role.IAM_ADMIN, Role.REVIEWER, Role.AUDITOR, Role.BUSINESS_USER):
        if has_role(user, role):
            return role
    return ""


def clear_role_cache(user: Any) -> None:
    if hasattr(user, "_governance_roles"):
        del user._governance_roles
