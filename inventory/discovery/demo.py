"""Demo data of discovery (order 50, after approvals has decided the demo requests): a sample of
each provider's own JSON (``demo_data/``, invented values) imported as the demo IAM admin, so a
newcomer sees shadow apps (meeting note takers, chat summarisers, code assistants), a drift and a
claim in approval right away.

Before importing it keeps a few scope mappings to the demo catalog and gives the active
"Meeting notes summariser" its Entra application id: Entra shows that app with ``Files.Read.All``
(mapped to a catalog scope it holds no grant of), hence a drift. After importing, alice claims the
meeting note taker she consented to in Google, which registers it and opens its approval.

Idempotent: a mapping, an external app id or a sample already there is kept, and a finding already
claimed is not claimed again."""

from __future__ import annotations

from pathlib import Path

from governance import demo
from governance.models import User
from inventory.discovery.choices import FindingKind, FindingStatus, ImportMethod, ImportStatus
from inventory.discovery.importer import import_path
from inventory.discovery.models import DiscoveryImport, Finding, ScopeMapping
from inventory.discovery.scopes import scope_mapping_save
from inventory.discovery.services import finding_claim
from inventory.models import ExternalAppId, Integration, Scope
from inventory.services.external_ids import external_app_ids_set

DATA = Path(__file__).resolve().parent / "demo_data"

# source, tenant, sample file: the tenants are the demo organisation's (invented) ones.
SAMPLES: list[tuple[str, str, str]] = [
    ("google", "C03x7demo", "google.jsonl"),
    ("entra", "3f2b9a64-71c5-4d08-b6e2-0a9d5c4e7f13", "entra.jsonl"),
    ("slack", "E07EXAMPLE1", "slack.json"),
    ("github", "example-org", "github.json"),
    ("okta", "example.okta.com", "okta.jsonl"),
]

GOOGLE = "https://www.googleapis.com/auth/"
# source, the provider's scope name, the demo catalog's scope code
MAPPINGS: list[tuple[str, str, str]] = [
    ("google", GOOGLE + "gmail.readonly", "gworkspace:gmail.readonly"),
    ("google", GOOGLE + "drive.readonly", "gworkspace:drive.readonly"),
    ("google", GOOGLE + "drive.file", "gworkspace:drive.file"),
    ("google", GOOGLE + "calendar.events", "gworkspace:calendar.events"),
    ("entra", "User.Read", "msgraph:User.Read"),
    ("entra", "Mail.Read", "msgraph:Mail.Read"),
    ("entra", "Mail.Send", "msgraph:Mail.Send"),
    ("entra", "Files.Read.All", "msgraph:Files.Read.All"),
    ("slack", "channels:history", "slack:channels:history"),
    ("slack", "chat:write", "slack:chat:write"),
    ("slack", "users:read", "slack:users:read"),
    ("github", "contents:read", "github:repo:read"),
    ("github", "contents:write", "github:repo:write"),
]

# The registered integration Entra shows with more than it was granted (its application id).
DRIFT_INTEGRATION = "Meeting notes summariser"
DRIFT_APP_ID = ("entra", "6c9e2f41-8b3d-4a57-9e10-2d4c6b8a0f37")

# The shadow app a demo person claims: Google's meeting note taker alice consented to.
CLAIM_APP = ("google", "604218377512-q8v2m1k7d3n9p0s5t4x6z1c8b2r7w3e5.apps.googleusercontent.com")
CLAIMANT = "alice"
CLAIM_PURPOSE = "Takes notes in my customer calls and files them in Drive, so the account team sees what was agreed."


def _keep_mappings(admin: User) -> None:
    for source, provider_scope, code in MAPPINGS:
        scope = Scope.objects.filter(code=code).first()
        if scope is None or ScopeMapping.objects.filter(source=source, provider_scope=provider_scope).exists():
            continue
        scope_mapping_save(actor=admin, source=source, provider_scope=provider_scope, scope=scope)


def _give_drift_app_id(admin: User) -> None:
    """The drift integration's Entra application id, beside any ids it already has."""
    integration = Integration.objects.filter(name=DRIFT_INTEGRATION).first()
    source, app_key = DRIFT_APP_ID
    if integration is None or ExternalAppId.objects.filter(source=source, app_key=app_key).exists():
        return
    ids = [(row.source, row.app_key) for row in integration.external_app_ids.all()]
    external_app_ids_set(actor=admin, integration=integration, ids=[*ids, DRIFT_APP_ID])


def _import_samples(admin: User) -> None:
    for source, tenant, name in SAMPLES:
        done = DiscoveryImport.objects.filter(
            source=source, tenant=tenant, file_name=name, status=ImportStatus.SUCCEEDED
        ).exists()
        if done:
            continue
        imp = import_path(
            actor=admin,
            source=source,
            tenant=tenant,
            path=DATA / name,
            method=ImportMethod.UPLOAD,
            complete=True,
            file_name=name,
        )
        if imp.status != ImportStatus.SUCCEEDED:
            # The samples are part of the code: one the importer refuses is a bug to fix here.
            raise RuntimeError(f"the demo sample {name} was refused: {imp.error}")


def _claim_one() -> None:
    """The claimant registers the shadow app they consented to (its approval opens)."""
    source, app_key = CLAIM_APP
    finding = Finding.objects.filter(
        source=source, app_key=app_key, kind=FindingKind.SHADOW, status=FindingStatus.OPEN
    ).first()
    claimant = User.objects.filter(username=CLAIMANT).first()
    if finding is None or claimant is None:
        return
    finding_claim(actor=claimant, finding=finding, owner=claimant, values={"purpose": CLAIM_PURPOSE}, submit=True)


def seed() -> None:
    admin = User.objects.filter(username="ivan").first()
    if admin is None:
        # Imports are an IAM admin's to run; without the demo people there is nobody to run them.
        return
    _keep_mappings(admin)
    _give_drift_app_id(admin)
    _import_samples(admin)
    _claim_one()


def register() -> None:
    demo.register("discovery", 50, seed)
