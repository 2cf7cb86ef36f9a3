"""A separate process for the cross-process tests: reads one JSON command per line on stdin,
answers one JSON line on stdout. Its decision point keeps its caches warm between commands, as a
long-running web or gateway worker would."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import django


def _setup(owner_name: str) -> dict[str, Any]:
    from governance.models import User
    from inventory.models import Grant, Integration, ResourceSystem, Scope

    owner = User.objects.create_user(owner_name, email=f"{owner_name}@example.com")
    crm = ResourceSystem.objects.create(code="crm", name="CRM")
    scope = Scope.objects.create(system=crm, name="read", code="crm:read")
    integration = Integration.objects.create(
        name="Support agent", kind="agent", purpose="Answers customers.", business_owner=owner, status="active"
    )
    Grant.objects.create(integration=integration, scope=scope, source_type="tests", source_id="1")
    return {"integration": integration.pk}


def _decide(integration_id: int, scope_code: str) -> dict[str, Any]:
    from django.utils import timezone

    from runtime.policy import entities, pdp

    now = timezone.now()
    integration = entities.load_integrations([integration_id], now)[integration_id]
    scope = entities.load_scopes([scope_code])[scope_code]
    [outcome] = pdp.decide([pdp.PolicyRequest(integration=integration, action="use_scope", scope=scope)], point="api")
    return {
        "decision": outcome.enforced.decision,
        "reasons": outcome.enforced.reasons,
        "version": outcome.enforced.number,
    }


def _enforce(text: str) -> dict[str, Any]:
    """Enforce a new version straight in the database (what the approval does, minus the people)."""
    from django.db import transaction
    from django.utils import timezone

    from runtime.models import PolicyStatus, PolicyVersion
    from runtime.policy.source import text_sha256

    with transaction.atomic():
        number = (PolicyVersion.objects.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        PolicyVersion.objects.filter(status=PolicyStatus.ENFORCED).update(status=PolicyStatus.RETIRED)
        PolicyVersion.objects.create(
            number=number,
            title="cross-process test",
            cedar_text=text,
            sha256=text_sha256(text),
            status=PolicyStatus.ENFORCED,
            enforced_at=timezone.now(),
        )
    return {"version": number}


def _suspend(integration_id: int) -> dict[str, Any]:
    from inventory.models import Integration

    return {"updated": Integration.objects.filter(pk=integration_id).update(status="suspended")}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    django.setup()
    for line in sys.stdin:
        command = json.loads(line)
        operation = command.pop("op")
        handlers: dict[str, Callable[..., dict[str, Any]]] = {
            "setup": _setup,
            "decide": _decide,
            "enforce": _enforce,
            "suspend": _suspend,
        }
        print(json.dumps(handlers[operation](**command)), flush=True)


if __name__ == "__main__":
    main()
