"""Data for the home-page tests: the demo people with the demo scope catalog and the default
workflows (without the demo's integrations), and integrations registered and granted through the
services as their owners' forms and the approvals would."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from governance.actors import Actor, system_user
from governance.context import task_context
from governance.models import User
from inventory import services as inventory_services
from inventory.models import Grant, Integration, Scope


def person(username: str) -> User:
    return User.objects.get(username=username)


def seed_org() -> None:
    """The nine demo people, the demo scope catalog and the default workflows."""
    from approvals.services import default_workflows_ensure
    from governance import demo
    from governance.roles import roles_sync
    from inventory.demo import _seed_catalog

    roles_sync()
    with task_context(user=system_user()), transaction.atomic():
        demo.seed_people()
    _seed_catalog(Actor.coerce(person("ivan")))
    default_workflows_ensure()


def register(owner: User, name: str, *, submit: bool, scopes: list[str] | None = None) -> Integration:
    """An integration registered as its owner does on the form (a draft, or submitted)."""
    values = {
        "name": name,
        "kind": "plugin",
        "purpose": "Summarises the week's tickets.",
        "business_owner": owner,
        "technical_owner": owner,
        "data_classifications": ["internal"],
        "autonomy": "suggest_only",
        "requested_scopes": list(Scope.objects.filter(code__in=scopes or ["slack:users:read"])),
    }
    return inventory_services.integration_register(actor=owner, values=values, submit=submit)


def grant_expiring(integration: Integration, days: int, scope_code: str = "slack:users:read") -> Grant:
    """A grant of ``scope_code`` to ``integration`` ending in ``days`` days, approved by ivan."""
    approver = person("ivan")
    [grant] = inventory_services.grant_create_many(
        actor=approver,
        integration=integration,
        scopes=[Scope.objects.get(code=scope_code)],
        source_type="tests.home",
        source_id=integration.name,
        approvers=[approver],
        expires_at=timezone.now() + timedelta(days=days),
    )
    return grant
