"""Demo data of the runtime (order 40, after campaigns): a demo workload issuer — the SPIFFE trust
domain ``example.org``, whose signing key the demo keeps in ``var/`` — bound to one active demo
integration, so ``manage.py demo_workload_token`` can print a workload token a newcomer trades
at ``/oauth/token`` with one ``curl``. Everything goes through the audited services, as the demo
IAM admin. Idempotent: an existing issuer or binding is left as it is (a lost key file is made
again and the issuer's keys follow it)."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from governance.models import User
from inventory import services as inventory_services
from inventory.choices import GrantStatus, IntegrationStatus, IssuerKind
from inventory.models import Integration, Scope, TrustedIssuer, WorkloadBinding
from runtime.errors import ExchangeRefused
from runtime.exchange import GRANT_TYPE, JWT_TOKEN_TYPE, token_exchange
from runtime.models import TokenEvent

DEMO_ISSUER = "spiffe://example.org"
DEMO_KEY_ID = "demo-workloads-1"


def key_file() -> Path:
    return Path(settings.RUNTIME_DEMO_KEY_FILE)


def private_key() -> ec.EllipticCurvePrivateKey:
    """The demo issuer's signing key, made once (mode 0600). It stands for the key a real SPIFFE
    server or cluster holds: the portal itself never signs workload tokens."""
    path = key_file()
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key
    key = ec.generate_private_key(ec.SECP256R1())
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created owner-only: never readable by others, not even for a moment before a chmod.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return key


def public_jwks(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**jwk, "kid": DEMO_KEY_ID, "use": "sig", "alg": "ES256"}]}


def _issuer(admin: User) -> TrustedIssuer:
    keys = public_jwks(private_key())
    issuer = TrustedIssuer.objects.filter(issuer=DEMO_ISSUER).first()
    if issuer is None:
        return inventory_services.trusted_issuer_create(
            actor=admin,
            values={
                "name": "Demo workloads (SPIFFE example.org)",
                "kind": IssuerKind.SPIFFE,
                "issuer": DEMO_ISSUER,
                "jwks": keys,
                "allowed_algorithms": ["ES256"],
            },
        )
    if issuer.jwks != keys:
        issuer = inventory_services.trusted_issuer_update(actor=admin, issuer=issuer, values={"jwks": keys})
    return issuer


def _demo_integration() -> Integration | None:
    """An active demo integration holding grants, preferring one that declared a SPIFFE ID. Low
    and medium risk only: binding a high one opens a re-review, which the demo has no need of."""
    active = Integration.objects.filter(
        status=IntegrationStatus.ACTIVE, grants__status=GrantStatus.ACTIVE, risk_tier__in=["low", "medium"]
    ).distinct()
    return (
        active.filter(workload_identity__startswith=f"{DEMO_ISSUER}/").order_by("id").first()
        or active.order_by("id").first()
    )


def workload_token(binding: WorkloadBinding, *, minutes: int = 5) -> str:
    """A JWT-SVID of the demo trust domain proving ``binding``'s identity."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": DEMO_ISSUER,
        "sub": binding.subject,
        "aud": binding.issuer.audience or settings.RUNTIME_TOKEN_AUDIENCE,
        "iat": now,
        "exp": now + minutes * 60,
        "jti": uuid.uuid4().hex,
        **binding.required_claims,
    }
    return jwt.encode(claims, private_key(), algorithm="ES256", headers={"kid": DEMO_KEY_ID, "typ": "JWT"})


def _first_exchanges(binding: WorkloadBinding) -> None:
    """Two real exchanges so the runtime pages have something to show: one issued (every scope it
    holds on one system), one refused (a scope it was never granted)."""
    if TokenEvent.objects.exists():
        return
    grant = binding.integration.grants.filter(status=GrantStatus.ACTIVE).select_related("scope__system").first()
    if grant is None:
        return
    system = grant.scope.system
    base = {
        "grant_type": GRANT_TYPE,
        "subject_token_type": JWT_TOKEN_TYPE,
        "audience": system.token_audience,
        "task": "Demo: summarise this week's meetings",
    }
    token_exchange({**base, "subject_token": workload_token(binding)})
    ungranted = Scope.objects.filter(system=system).exclude(grants__integration=binding.integration).first()
    if ungranted is not None:
        try:
            token_exchange({**base, "subject_token": workload_token(binding), "scope": ungranted.code})
        except ExchangeRefused:
            pass  # recorded in the token log: that is the point


TRIAL_POLICY = """
@id("trial-writes-need-a-task")
@description("Trial: a token that may write says what it is for (a task).")
forbid (principal, action, resource is Scope)
when { resource.access == "write" && context.task == "" };
"""


def _shadow_trial(admin: User) -> None:
    """A second version in shadow beside the enforced default set, so the decisions page shows
    what a trial rule would have decided."""
    from runtime.models import PolicyVersion
    from runtime.policy.defaults import default_tests
    from runtime.services import policies

    enforced = PolicyVersion.objects.filter(status="enforced").first()
    if enforced is None or PolicyVersion.objects.exclude(pk=enforced.pk).exists():
        return
    trial = policies.policy_draft_create(
        actor=admin,
        title="Trial: writes need a task",
        cedar_text=enforced.cedar_text + TRIAL_POLICY,
        tests=[
            *default_tests(),
            {
                "name": "a write without a task is denied",
                "action": "exchange_token",
                "scope": {"access": "write"},
                "expect": "deny",
            },
        ],
        based_on=enforced,
    )
    policies.policy_shadow(actor=admin, version=trial)


def seed() -> None:
    admin = User.objects.filter(username="ivan").first()
    if admin is None:
        return
    issuer = _issuer(admin)
    binding = WorkloadBinding.objects.filter(issuer=issuer).select_related("integration", "issuer").first()
    if binding is None:
        integration = _demo_integration()
        if integration is None:
            return
        declared = integration.workload_identity
        subject = declared if declared.startswith(f"{DEMO_ISSUER}/") else f"{DEMO_ISSUER}/ns/demo/sa/{integration.pk}"
        binding = inventory_services.workload_binding_set(
            actor=admin, integration=integration, issuer=issuer, subject=subject, required_claims={}
        )
    _shadow_trial(admin)
    _first_exchanges(binding)
