"""Discovery's demo: every provider's sample imports, and a newcomer finds shadow apps, a drift
and a claim in approval; seeding again changes no row."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from governance import demo
from governance.actors import system_user
from governance.context import task_context
from governance.roles import roles_sync
from inventory.discovery import demo as discovery_demo
from inventory.discovery.models import (
    DiscoveredApp,
    DiscoveredConsent,
    DiscoveryImport,
    Finding,
    Remediation,
    ScopeMapping,
)
from inventory.models import ExternalAppId, Integration

# What the discovery seeder needs before it: the people, the catalog and integrations, and the
# approvals that made the drift integration active. The campaigns' and runtime's are not needed.
NEEDED = {"people", "inventory", "approvals", "discovery"}


def _seed(names: set[str]) -> None:
    """Run the named seeders as ``manage.py seed_demo`` runs them."""
    with task_context(user=system_user(), request_id="seed-demo"):
        for seeder in demo.seeders():
            if seeder.name in names:
                with transaction.atomic():
                    seeder.run()


@pytest.fixture
def seeded(roles: None) -> None:
    roles_sync()
    _seed(NEEDED)


def _rows() -> dict[str, list[Any]]:
    """Every row discovery's seeder writes (and the integrations it touches), column by column."""
    models = [DiscoveryImport, DiscoveredApp, DiscoveredConsent, ScopeMapping, Finding, Remediation, ExternalAppId]
    rows: dict[str, list[Any]] = {
        model._meta.label: list(model._default_manager.order_by("pk").values()) for model in models
    }
    rows["integrations"] = list(Integration.objects.order_by("pk").values("pk", "name", "status", "updated_at"))
    return rows


def test_every_sample_imports_and_the_demo_shows_shadow_apps_a_drift_and_a_claim(seeded: None) -> None:
    imports = DiscoveryImport.objects.all()
    assert sorted(imports.values_list("source", flat=True)) == ["entra", "github", "google", "okta", "slack"]
    assert all(imp.status == "succeeded" and imp.records > 0 for imp in imports)
    shadow = set(Finding.objects.filter(kind="shadow", status="open").values_list("title", flat=True))
    # A chat summariser (Slack), a code assistant (GitHub), an email assistant (Entra) and a
    # meeting assistant (Okta) wait for a decision.
    assert {"ThreadSummarizer", "codepilot-reviewer", "MailMind Assistant", "MeetingBuddy AI"} <= shadow
    # People are matched by email; those who are not portal users are kept as the provider gave them.
    dana = DiscoveredConsent.objects.get(
        app__source="google", person_email="dana.lee@example.com", app__name__startswith="Minutemind"
    )
    assert dana.person is None
    alice = DiscoveredConsent.objects.get(
        app__source="google", person__username="alice", app__name__startswith="DeckWizard"
    )
    assert "https://www.googleapis.com/auth/drive.readonly" in alice.scopes
    # Okta: a grant that is no longer active is no consent.
    assert not DiscoveredConsent.objects.filter(
        app__source="okta", app__name="HelpdeskGPT", person__username="bob"
    ).exists()

    # A registered integration Entra shows with a mapped scope it holds no grant of: a drift.
    drift = Finding.objects.get(kind="drift", source="entra")
    assert drift.integration is not None and drift.integration.name == discovery_demo.DRIFT_INTEGRATION
    assert drift.extra_scopes == ["Files.Read.All"] and drift.status == "open"

    # alice claimed the meeting note taker she consented to: a registration in approval.
    source, app_key = discovery_demo.CLAIM_APP
    claimed = Finding.objects.get(source=source, app_key=app_key, kind="shadow")
    assert claimed.status == "claimed" and claimed.integration is not None
    registration = claimed.integration
    assert registration.business_owner.username == "alice" and registration.status == "pending"
    assert registration.requested_scopes.filter(code="gworkspace:drive.file").exists()
    assert ExternalAppId.objects.get(source=source, app_key=app_key).integration == registration
    assert registration.access_requests.filter(status="in_review").exists()


def test_seeding_again_changes_no_row(seeded: None) -> None:
    before = _rows()
    _seed(NEEDED)
    assert _rows() == before
