"""Token events for the activity page and API tests: integrations registered through the
inventory's services, events written with the ORM (what ``runtime.log`` appends at the token
endpoint, with any digest: these tests read the log, they do not verify its seals)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import count
from typing import Any

import pytest
from django.utils import timezone

from governance.models import User
from inventory import services
from inventory.models import Integration
from runtime.models import TokenEvent, TokenOutcome

_SEQUENCE = count(1)


@pytest.fixture
def make_integration(roles: None) -> Callable[..., Integration]:
    def make(owner: User, *, name: str = "Notes bot", **values: Any) -> Integration:
        data: dict[str, Any] = {
            "name": name,
            "kind": "agent",
            "purpose": "Summarises meetings.",
            "business_owner": owner,
            "autonomy": "suggest_only",
            **values,
        }
        return services.integration_register(actor=owner, values=data)

    return make


def token_event(
    integration: Integration | None,
    *,
    outcome: str = TokenOutcome.ISSUED,
    at: datetime | None = None,
    expires_in: timedelta | None = timedelta(minutes=10),
    **fields: Any,
) -> TokenEvent:
    """One logged issuance (or refusal: ``outcome="refused"``, with ``error`` and ``reason``)."""
    n = next(_SEQUENCE)
    when = at or timezone.now()
    issued = outcome == TokenOutcome.ISSUED
    values: dict[str, Any] = {
        "at": when,
        "outcome": outcome,
        "integration": integration,
        "owner": integration.business_owner if integration else None,
        "workload_issuer": "https://issuer.example.com",
        "workload_subject": f"system:serviceaccount:ai:bot-{n}",
        "chain": [integration.pk] if integration else [],
        "audience": "https://crm.example.com",
        "scopes_requested": ["crm:read"],
        "scopes_granted": ["crm:read"] if issued else [],
        "jti": f"jti-{n}" if issued else "",
        "expires_at": when + expires_in if issued and expires_in is not None else None,
        "digest": hashlib.sha256(str(n).encode()).hexdigest(),
    }
    if not issued:
        values.update(error="invalid_scope", reason="Scope crm:write is not granted to this integration.")
    values.update(fields)
    return TokenEvent.objects.create(**values)
