"""Portal access tokens as the token endpoint would leave them: minted with ``runtime.tokens``
and logged as issued (``TokenEvent`` written with the ORM; any digest, these tests do not verify
seals). The integration, its scopes and grants are plain rows: the services that make them are
tested elsewhere, and the kill switch and grant revocation in these tests go through them."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from governance.models import User
from governance.services import api_token_issue
from inventory.models import Grant, Integration, ResourceSystem, Scope
from runtime import tokens
from runtime.models import TokenEvent, TokenOutcome

FORM = "application/x-www-form-urlencoded"


def api_key(user: User) -> str:
    _token, key = api_token_issue(actor=user, user=user, name="tests")
    return key


def post_form(client: Any, path: str, data: dict[str, str], **headers: Any) -> Any:
    return client.post(path, data=urlencode(data), content_type=FORM, **headers)


@dataclass
class Issued:
    token: str
    claims: dict[str, Any]
    event: TokenEvent


@dataclass
class Agent:
    """An active integration holding ``crm:read`` and ``crm:write``, owned by ``owner``."""

    owner: User
    integration: Integration
    grants: dict[str, Grant]
    scopes: dict[str, Scope] = field(default_factory=dict)

    def issue(self, *, acting_for: User | None = None, chain: list[int] | None = None, **claims: Any) -> Issued:
        now = int(time.time())
        values = {
            "iss": settings.RUNTIME_ISSUER,
            "aud": "https://crm.example.com/api",
            "sub": acting_for.username if acting_for else f"integration:{self.integration.pk}",
            "act": {"sub": f"integration:{self.integration.pk}"},
            "client_id": f"integration:{self.integration.pk}",
            "scope": " ".join(sorted(self.grants_scopes())),
            "owner": self.owner.username,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        token = tokens.mint(values)
        event = TokenEvent.objects.create(
            outcome=TokenOutcome.ISSUED,
            integration=self.integration,
            owner=self.owner,
            acting_for=acting_for,
            workload_issuer="https://issuer.example.com",
            workload_subject="system:serviceaccount:ai:agent",
            chain=chain or [self.integration.pk],
            audience=values["aud"],
            scopes_requested=sorted(self.grants_scopes()),
            scopes_granted=sorted(self.grants_scopes()),
            grant_ids=[grant.pk for grant in self.grants.values()],
            jti=values["jti"],
            expires_at=datetime.fromtimestamp(values["exp"], tz=UTC),
            digest=hashlib.sha256(values["jti"].encode()).hexdigest(),
        )
        return Issued(token=token, claims=values, event=event)

    def grants_scopes(self) -> list[str]:
        return [grant.scope.code for grant in self.grants.values()]


def make_agent(owner: User, *, name: str = "Support agent", system: ResourceSystem | None = None) -> Agent:
    crm = system or ResourceSystem.objects.create(code="crm", name="CRM", audience="https://crm.example.com/api")
    scopes = {
        short: Scope.objects.get_or_create(system=crm, name=short, defaults={"code": f"crm:{short}"})[0]
        for short in ("read", "write")
    }
    integration = Integration.objects.create(
        name=name, kind="agent", purpose="Answers customers.", business_owner=owner, status="active", risk_tier="low"
    )
    grants = {
        short: Grant.objects.create(integration=integration, scope=scope, source_type="tests", source_id="1")
        for short, scope in scopes.items()
    }
    return Agent(owner=owner, integration=integration, grants=grants, scopes=scopes)
