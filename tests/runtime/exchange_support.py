"""A small world for the token exchange tests: a resource system with scopes, an active
integration bound to a workload identity of a live test issuer, grants, and helpers to post
exchanges. Rows are written with the ORM (the services that make them are tested elsewhere);
the exchange under test reads them exactly as the portal writes them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from governance.models import User
from inventory import issuer_keys
from inventory.models import Grant, Integration, ResourceSystem, Scope, TrustedIssuer, WorkloadBinding
from inventory.services.identities import claims_key_of
from runtime.exchange import GRANT_TYPE, JWT_TOKEN_TYPE
from tests.runtime.issuer_support import TestIssuer

SUBJECT = "system:serviceaccount:ai:agent"
CLAIMS = {"kubernetes.io.namespace": "ai"}
NAMESPACE_CLAIM = {"kubernetes.io": {"namespace": "ai", "serviceaccount": {"name": "agent"}}}
CRM_AUDIENCE = "https://crm.example.com/api"


@pytest.fixture(autouse=True)
def _issuer_key_caches() -> Iterator[None]:
    """Issuer keys are cached per process by issuer id: each test starts without them."""
    issuer_keys.forget()
    yield
    issuer_keys.forget()


@dataclass
class World:
    """The cast: ``owner`` answers for ``integration`` (bound to ``SUBJECT`` at ``issuer``), which
    holds ``crm:read`` and ``crm:write`` on ``crm``; ``crm:admin`` is JIT eligible, not held."""

    test_issuer: TestIssuer
    issuer: TrustedIssuer
    owner: User
    crm: ResourceSystem
    scopes: dict[str, Scope]
    integration: Integration
    grants: dict[str, Grant]

    def workload_token(self, subject: str = SUBJECT, **claims: Any) -> str:
        return self.test_issuer.sign(self.test_issuer.claims(subject, **{**NAMESPACE_CLAIM, **claims}))

    def params(self, subject_token: str | None = None, **extra: str) -> dict[str, str]:
        """The form of an exchange acting as itself (``extra`` adds or replaces parameters)."""
        return {
            "grant_type": GRANT_TYPE,
            "subject_token": subject_token if subject_token is not None else self.workload_token(),
            "subject_token_type": JWT_TOKEN_TYPE,
            "audience": CRM_AUDIENCE,
            **extra,
        }


def make_integration(owner: User, name: str, **values: Any) -> Integration:
    return Integration.objects.create(
        name=name,
        kind="agent",
        purpose="Answers customers.",
        business_owner=owner,
        status=values.pop("status", "active"),
        risk_tier=values.pop("risk_tier", "low"),
        **values,
    )


def bind(
    integration: Integration, issuer: TrustedIssuer, subject: str, claims: dict[str, Any] | None = None
) -> WorkloadBinding:
    required = dict(CLAIMS if claims is None else claims)
    return WorkloadBinding.objects.create(
        integration=integration,
        issuer=issuer,
        subject=subject,
        required_claims=required,
        claims_key=claims_key_of(required),
    )


def grant(integration: Integration, scope: Scope, **values: Any) -> Grant:
    return Grant.objects.create(integration=integration, scope=scope, source_type="tests", source_id="1", **values)


def build_world(test_issuer: TestIssuer, owner: User, *, kind: str = "static_jwks") -> World:
    issuer = test_issuer.trusted_issuer(kind=kind)
    crm = ResourceSystem.objects.create(code="crm", name="CRM", audience=CRM_AUDIENCE)
    scopes = {
        name: Scope.objects.create(system=crm, name=name, code=f"crm:{name}", jit_eligible=name == "admin")
        for name in ("read", "write", "admin")
    }
    integration = make_integration(owner, "Support agent")
    bind(integration, issuer, SUBJECT)
    grants = {name: grant(integration, scopes[name]) for name in ("read", "write")}
    return World(test_issuer, issuer, owner, crm, scopes, integration, grants)
