"""Demo data of the runtime (order 40, after campaigns): a demo workload issuer — the SPIFFE trust
domain ``example.org``, whose signing key the demo keeps in ``var/`` — bound to one active demo
integration, so ``manage.py demo_workload_token`` can print a workload token a newcomer trades
at ``/oauth/token`` with one ``curl``. Everything goes through the audited services, as the demo
IAM admin. Idempotent: an existing issuer or binding is left as it is (a lost key file is made
again and the issuer's keys follow it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from governance.models import User
from inventory import services as inventory_services
from inventory.choices import GrantStatus, IntegrationStatus, IssuerKind
from inventory.models import Integration, TrustedIssuer, WorkloadBinding

DEMO_ISSUER = "spiffe://example.org"
DEMO_KEY_ID = "demo-workloads-1"


def key_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-workload-issuer.pem"


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
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
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


def seed() -> None:
    admin = User.objects.filter(username="ivan").first()
    if admin is None:
        return
    issuer = _issuer(admin)
    if WorkloadBinding.objects.filter(issuer=issuer).exists():
        return
    integration = _demo_integration()
    if integration is None:
        return
    declared = integration.workload_identity
    subject = declared if declared.startswith(f"{DEMO_ISSUER}/") else f"{DEMO_ISSUER}/ns/demo/sa/{integration.pk}"
    inventory_services.workload_binding_set(
        actor=admin, integration=integration, issuer=issuer, subject=subject, required_claims={}
    )
