"""Findings follow the data: shadow apps nobody registered, drift beyond an integration's grants,
stale external app ids, apps gone from a complete listing; a dismissal holds until the app shows
something new; every opening and closing is audited for the import's accountable owner."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from governance.models import AuditEvent, User
from governance.roles import Role
from inventory.discovery.choices import FindingKind, FindingStatus
from inventory.discovery.models import DiscoveredApp, Finding, Remediation, ScopeMapping
from inventory.models import ExternalAppId, Integration, Scope
from tests.discovery.factories import make_scope
from tests.discovery.importing import CALENDAR, DRIVE, GMAIL_SEND, PROFILE, grant, numbered, registered, run

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db: None) -> dict[str, Scope]:
    """The Google scopes of these tests mapped to the catalog (Gmail's send scope stays unmapped)."""
    scopes = {
        DRIVE: make_scope("gdrive:files.read", sensitivity="high"),
        CALENDAR: make_scope("gcal:events.read", sensitivity="low"),
        PROFILE: make_scope("google:profile", sensitivity="low"),
    }
    for provider_scope, scope in scopes.items():
        ScopeMapping.objects.create(source="google", provider_scope=provider_scope, scope=scope)
    return scopes


@pytest.fixture
def app_owner(make_user: Callable[..., User]) -> User:
    return make_user("ann", Role.BUSINESS_USER)


def _finding(kind: str, app_key: str = "notes.apps") -> Finding:
    return Finding.objects.filter(kind=kind, app_key=app_key).latest("pk")


def _actions(finding: Finding) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_type="discovery.finding", target_id=str(finding.pk))
        .order_by("pk")
        .values_list("action", flat=True)
    )


NOTES = [("notes.apps", "ann@example.com", (DRIVE, CALENDAR)), ("notes.apps", "bob@example.com", (DRIVE,))]


def test_an_unregistered_app_opens_a_shadow_finding_scored_from_its_scopes(
    iam_admin: User, catalog: dict[str, Scope], app_owner: User
) -> None:
    imp = run(iam_admin, numbered([*NOTES, ("notes.apps", "*", (GMAIL_SEND,), {"consent_type": "admin"})]))
    finding = _finding(FindingKind.SHADOW)
    app = DiscoveredApp.objects.get()
    assert (finding.status, finding.title, finding.people_affected) == (FindingStatus.OPEN, app.name, 2)
    assert finding.extra_scopes == sorted([DRIVE, CALENDAR, GMAIL_SEND])
    assert (finding.opened_by_import, finding.last_import, finding.app) == (imp, imp, app)
    codes = {factor["code"] for factor in finding.risk_factors}
    # Drive maps to a high-sensitivity catalog scope; Gmail's send scope is estimated as a write.
    assert {"delegated_user_context", "confidential_data", "write_scopes", "third_party_vendor"} <= codes
    assert (finding.risk_score, finding.risk_tier) == (app.risk_score, app.risk_tier)
    event = AuditEvent.objects.get(action="discovery.finding_opened")
    assert (event.owner, event.actor_kind, (event.after or {})["kind"]) == (iam_admin, "system", "shadow")
    assert imp.counts["findings"] == {"shadow": 1}


def test_a_registered_app_closes_its_shadow_finding_and_drift_is_what_its_grants_lack(
    iam_admin: User, catalog: dict[str, Scope], app_owner: User
) -> None:
    run(iam_admin, numbered([*NOTES, ("notes.apps", "cat@example.com", (GMAIL_SEND,))]))
    shadow = _finding(FindingKind.SHADOW)
    integration = registered(
        app_owner,
        name="Notes",
        requested=[catalog[CALENDAR]],
        granted=[catalog[CALENDAR]],
        external_ids=[("google", "notes.apps")],
    )
    imp = run(iam_admin, numbered([*NOTES, ("notes.apps", "cat@example.com", (GMAIL_SEND,))]))
    shadow.refresh_from_db()
    assert (shadow.status, shadow.closed_at is not None) == (FindingStatus.RESOLVED, True)
    assert shadow.resolution == "Registered as Notes."
    assert DiscoveredApp.objects.get().integration == integration
    drift = _finding(FindingKind.DRIFT)
    # Drive is mapped and not granted; Gmail's send scope is unmapped and never counts.
    assert (drift.extra_scopes, drift.integration, drift.status) == ([DRIVE], integration, FindingStatus.OPEN)
    assert imp.counts["findings"] == {"drift": 1} and imp.counts["closed"] == 1
    assert _actions(shadow) == ["discovery.finding_opened", "discovery.finding_closed"]


def test_a_drift_finding_closes_once_the_scopes_are_granted(
    iam_admin: User, catalog: dict[str, Scope], app_owner: User
) -> None:
    integration = registered(
        app_owner,
        name="Notes",
        requested=[catalog[CALENDAR]],
        granted=[catalog[CALENDAR]],
        external_ids=[("google", "notes.apps")],
    )
    run(iam_admin, numbered(NOTES))
    drift = _finding(FindingKind.DRIFT)
    assert not Finding.objects.filter(kind=FindingKind.SHADOW).exists()
    grant(Integration.objects.get(pk=integration.pk), [catalog[DRIVE]])
    run(iam_admin, numbered(NOTES))
    drift.refresh_from_db()
    assert (drift.status, drift.resolution) == (FindingStatus.RESOLVED, "Its scopes are all granted now.")


def test_an_integration_still_in_approval_has_no_drift(
    iam_admin: User, catalog: dict[str, Scope], app_owner: User
) -> None:
    registered(
        app_owner, name="Notes", requested=[catalog[DRIVE]], external_ids=[("google", "notes.apps")], active=False
    )
    run(iam_admin, numbered(NOTES))
    assert not Finding.objects.exists()


def test_the_second_key_of_an_app_matches_an_integration(
    iam_admin: User, catalog: dict[str, Scope], app_owner: User
) -> None:
    registered(
        app_owner,
        name="Notes",
        requested=[catalog[DRIVE], catalog[CALENDAR]],
        granted=[catalog[DRIVE], catalog[CALENDAR]],
        external_ids=[("entra", "sp-object-id")],
    )
    run(iam_admin, numbered([("app-id", "ann@example.com", (DRIVE,), {"alt_key": "sp-object-id"})]), source="entra")
    assert DiscoveredApp.objects.get().integration is not None
    assert not Finding.objects.exists()


def test_a_complete_listing_without_the_app_closes_its_finding_and_opens_a_gone_one(
    iam_admin: User, catalog: dict[str, Scope]
) -> None:
    run(iam_admin, numbered([*NOTES, ("mail.apps", "ann@example.com", (GMAIL_SEND,))]))
    shadow = _finding(FindingKind.SHADOW)
    partial = run(iam_admin, numbered([("mail.apps", "ann@example.com", (GMAIL_SEND,))]), complete=False)
    assert partial.counts["closed"] == 0 and not Finding.objects.filter(kind=FindingKind.GONE).exists()

    run(iam_admin, numbered([("mail.apps", "ann@example.com", (GMAIL_SEND,))]))
    shadow.refresh_from_db()
    assert (shadow.status, shadow.resolution) == (FindingStatus.RESOLVED, "No longer listed by the provider.")
    gone = _finding(FindingKind.GONE)
    assert (gone.status, gone.previous_kind, gone.people_affected, gone.app) == (
        FindingStatus.OPEN,
        FindingKind.SHADOW,
        2,
        shadow.app,
    )
    assert gone.closed_at is None
    assert _actions(gone) == ["discovery.finding_opened"]

    run(iam_admin, numbered([*NOTES, ("mail.apps", "ann@example.com", (GMAIL_SEND,))]))
    gone.refresh_from_db()
    assert (gone.status, gone.resolution) == (FindingStatus.RESOLVED, "Listed by the provider again.")
    assert Finding.objects.filter(kind=FindingKind.SHADOW, app_key="notes.apps", closed_at__isnull=True).count() == 1


def test_an_app_gone_after_its_revocation_was_requested_confirms_it(iam_admin: User, catalog: dict[str, Scope]) -> None:
    run(iam_admin, numbered([*NOTES, ("mail.apps", "ann@example.com", (GMAIL_SEND,))]))
    shadow = _finding(FindingKind.SHADOW)
    Finding.objects.filter(pk=shadow.pk).update(status=FindingStatus.REVOKE_REQUESTED)
    Remediation.objects.create(finding=shadow, provider_calls=[], requested_by=iam_admin)
    imp = run(iam_admin, numbered([("mail.apps", "ann@example.com", (GMAIL_SEND,))]))
    gone = _finding(FindingKind.GONE)
    assert (gone.status, gone.closed_at is not None) == (FindingStatus.RESOLVED, True)
    assert gone.resolution.startswith("Revocation confirmed")
    assert _actions(gone) == ["discovery.finding_opened", "discovery.finding_closed"]
    assert (imp.counts["findings"], imp.counts["closed"]) == ({"gone": 1}, 2)


def test_a_dismissed_app_stays_dismissed_until_it_shows_new_scopes(iam_admin: User, catalog: dict[str, Scope]) -> None:
    run(iam_admin, numbered(NOTES))
    shadow = _finding(FindingKind.SHADOW)
    # What dismissing leaves (the decision services close a dismissed finding).
    Finding.objects.filter(pk=shadow.pk).update(status=FindingStatus.DISMISSED, closed_at=shadow.opened_at)
    same = run(iam_admin, numbered(NOTES))
    assert Finding.objects.filter(kind=FindingKind.SHADOW).count() == 1
    assert same.counts["findings"] == {}

    fewer = run(iam_admin, numbered([("notes.apps", "ann@example.com", (DRIVE,))]))
    assert fewer.counts["findings"] == {}

    more = run(iam_admin, numbered([*NOTES, ("notes.apps", "bob@example.com", (GMAIL_SEND,))]))
    assert more.counts["findings"] == {"shadow": 1}
    reopened = Finding.objects.get(kind=FindingKind.SHADOW, closed_at__isnull=True)
    assert reopened.pk != shadow.pk
    assert reopened.extra_scopes == sorted([DRIVE, CALENDAR, GMAIL_SEND])


def test_an_unclosed_dismissal_is_reopened_only_for_new_scopes(iam_admin: User, catalog: dict[str, Scope]) -> None:
    run(iam_admin, numbered(NOTES))
    shadow = _finding(FindingKind.SHADOW)
    Finding.objects.filter(pk=shadow.pk).update(status=FindingStatus.DISMISSED)
    run(iam_admin, numbered(NOTES))
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.DISMISSED
    run(iam_admin, numbered([*NOTES, ("notes.apps", "cat@example.com", (GMAIL_SEND,))]))
    shadow.refresh_from_db()
    assert (shadow.status, shadow.people_affected) == (FindingStatus.OPEN, 3)
    assert _actions(shadow) == ["discovery.finding_opened", "discovery.finding_opened"]


def test_an_external_app_id_the_complete_listing_lacks_is_stale_until_listed_again(
    iam_admin: User, catalog: dict[str, Scope], app_owner: User
) -> None:
    integration = registered(
        app_owner,
        name="Old bot",
        requested=[catalog[DRIVE]],
        granted=[catalog[DRIVE]],
        external_ids=[("google", "old.apps")],
    )
    partial = run(iam_admin, numbered(NOTES), complete=False)
    assert "stale" not in partial.counts["findings"]
    imp = run(iam_admin, numbered(NOTES))
    stale = _finding(FindingKind.STALE, "old.apps")
    assert (stale.integration, stale.title, stale.app, stale.status) == (
        integration,
        "Old bot",
        None,
        FindingStatus.OPEN,
    )
    assert imp.counts["findings"] == {"stale": 1}
    assert run(iam_admin, numbered(NOTES)).counts["findings"] == {}

    run(iam_admin, numbered([*NOTES, ("old.apps", "ann@example.com", (DRIVE,))]))
    stale.refresh_from_db()
    assert (stale.status, stale.resolution) == (FindingStatus.RESOLVED, "Listed by the provider again.")


def test_a_stale_finding_closes_when_no_integration_claims_the_id(
    iam_admin: User, catalog: dict[str, Scope], app_owner: User
) -> None:
    registered(app_owner, name="Old bot", requested=[catalog[DRIVE]], external_ids=[("google", "old.apps")])
    run(iam_admin, numbered(NOTES))
    stale = _finding(FindingKind.STALE, "old.apps")
    ExternalAppId.objects.filter(app_key="old.apps").delete()
    run(iam_admin, numbered(NOTES))
    stale.refresh_from_db()
    assert stale.status == FindingStatus.RESOLVED


def test_open_findings_follow_the_people_and_risk_of_their_app(iam_admin: User, catalog: dict[str, Scope]) -> None:
    run(iam_admin, numbered(NOTES))
    shadow = _finding(FindingKind.SHADOW)
    imp = run(iam_admin, numbered([*NOTES, ("notes.apps", "cat@example.com", (GMAIL_SEND,))]))
    shadow.refresh_from_db()
    assert (shadow.people_affected, shadow.last_import, shadow.status) == (3, imp, FindingStatus.OPEN)
    assert GMAIL_SEND in shadow.extra_scopes
    assert shadow.risk_score == DiscoveredApp.objects.get().risk_score
    assert imp.counts["findings"] == {}


def test_an_app_id_another_tenant_lists_is_not_stale_here(
    iam_admin: User, catalog: dict[str, Scope], app_owner: User
) -> None:
    registered(app_owner, name="Notes", requested=[catalog[DRIVE]], external_ids=[("google", "notes.apps")])
    run(iam_admin, numbered(NOTES), tenant="b.example")
    assert run(iam_admin, numbered([("mail.apps", "ann@example.com")]), tenant="a.example").counts["findings"] == {
        "shadow": 1
    }
    assert not Finding.objects.filter(kind=FindingKind.STALE).exists()
    gone_from_b = run(iam_admin, numbered([("mail.apps", "ann@example.com")]), tenant="b.example")
    stale = _finding(FindingKind.STALE)
    assert (stale.tenant, stale.app, stale.title) == (
        "b.example",
        DiscoveredApp.objects.get(tenant="b.example", app_key="notes.apps"),
        "Notes",
    )
    # Its drift finding (nothing granted) is gone with it.
    assert gone_from_b.counts["findings"] == {"gone": 1, "shadow": 1, "stale": 1}
