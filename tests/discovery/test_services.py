"""Decisions on what discovery found, through its services: a claim registers and submits the
app (approvals opens the request from inventory's signal) with its external app id; "Not
needed" and an admin's revocation make a remediation and a webhook event naming the provider's
calls; assign, sanction, dismiss and a drift's scope review; the portal's own call to the
provider recorded; and every refusal leaves nothing changed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test import override_settings

from approvals.models import AccessRequest, RequestType
from approvals.services import default_workflows_ensure
from governance import queue
from governance.exceptions import Conflict, Unprocessable, ValidationFailed
from governance.models import AuditEvent, OutboundEmail, User
from governance.webhooks import services as webhooks
from governance.webhooks.models import WebhookDelivery
from inventory.choices import IntegrationStatus
from inventory.discovery import services
from inventory.discovery.choices import ConsentResponse, FindingKind, FindingStatus, RemediationStatus
from inventory.discovery.models import DiscoveredApp, DiscoveredConsent, Finding, Remediation
from inventory.models import ExternalAppId, Integration, Scope
from tests.discovery.factories import (
    GOOGLE_SCOPES,
    make_app,
    make_consent,
    make_finding,
    make_import,
    make_scope,
    map_scope,
)
from tests.outbound_support import http_stub

pytestmark = pytest.mark.django_db

CALENDAR, DRIVE = GOOGLE_SCOPES


@pytest.fixture
def workflows(roles: None) -> None:
    default_workflows_ensure()


@pytest.fixture
def mapped(db: Any) -> dict[str, Scope]:
    """The two Google scopes of the sample app mapped to the catalog."""
    scopes = {
        "calendar": make_scope("gcal:calendar.read", sensitivity="low"),
        "drive": make_scope("gdrive:files.read", sensitivity="medium"),
    }
    map_scope("google", CALENDAR, scopes["calendar"])
    map_scope("google", DRIVE, scopes["drive"])
    return scopes


@pytest.fixture
def shadow(owner: User, iam_admin: User) -> Finding:
    """A shadow app ``owner`` consented to, found by an import ``iam_admin`` ran."""
    imp = make_import(started_by=iam_admin)
    app = make_app(imp=imp)
    make_consent(app, person=owner)
    return make_finding(app)


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[object, ...]]]:
    """The tasks handed to the worker (by dotted path, with their arguments)."""
    seen: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr(queue, "enqueue", lambda task, *args, name: seen.append((task, args)))
    return seen


def _events(action: str, finding: Finding) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_id=str(finding.pk)).order_by("pk"))


def _after(event: AuditEvent) -> dict[str, Any]:
    assert isinstance(event.after, dict)
    return event.after


def _subscribe(iam_admin: User) -> None:
    webhooks.subscription_create(
        actor=iam_admin,
        name="ticketing",
        target_url="https://ticketing.example.com/hook",
        event_types=["discovery.*"],
    )


def _unchanged(finding: Finding) -> None:
    """Nothing of a refused decision is left: no registration, no request, no remediation, the
    finding as it was, no discovery event about it."""
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN and finding.closed_at is None and finding.integration is None
    assert not Integration.objects.exists() and not AccessRequest.objects.exists()
    assert not ExternalAppId.objects.exists() and not Remediation.objects.exists()
    assert not AuditEvent.objects.filter(target_type="discovery.finding").exists()


# --- Claim ---------------------------------------------------------------------------------


def test_a_person_who_consented_claims_the_app_and_approvals_opens_the_registration_request(
    owner: User, shadow: Finding, mapped: dict[str, Scope], workflows: None
) -> None:
    integration = services.finding_claim(actor=owner, finding=shadow, owner=owner)

    assert integration.status == IntegrationStatus.PENDING
    assert integration.business_owner == owner and integration.technical_owner == owner
    assert integration.name == "MeetingNotes AI" and integration.vendor == "Notes Corp"
    assert sorted(integration.requested_scopes.values_list("code", flat=True)) == [
        "gcal:calendar.read",
        "gdrive:files.read",
    ]
    request = AccessRequest.objects.get(integration=integration)
    assert request.type == RequestType.REGISTRATION and request.requester == owner
    assert sorted(request.requested_scopes.values_list("code", flat=True)) == [
        "gcal:calendar.read",
        "gdrive:files.read",
    ]
    app = DiscoveredApp.objects.get(pk=shadow.app.pk)  # type: ignore[union-attr]
    assert list(integration.external_app_ids.values_list("source", "app_key")) == [("google", app.app_key)]
    assert app.integration == integration
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.CLAIMED and shadow.integration == integration
    assert shadow.closed_at is not None
    assert DiscoveredConsent.objects.get(app=app, person=owner).response == ConsentResponse.CLAIMED
    [event] = _events("discovery.finding_claimed", shadow)
    assert event.owner == owner and event.actor == owner
    assert _after(event)["integration"] == integration.pk and _after(event)["submitted"] is True
    assert _after(event)["consents_answered"] == [owner.email]


def test_an_iam_admin_claims_on_someones_behalf_with_the_form_values(
    iam_admin: User, owner: User, outsider: User, shadow: Finding, mapped: dict[str, Scope], workflows: None
) -> None:
    integration = services.finding_claim(
        actor=iam_admin,
        finding=shadow,
        owner=outsider,
        values={"name": "Meeting notes", "purpose": "Writes the minutes of sales calls.", "kind": "agent"},
    )
    assert integration.business_owner == outsider and integration.status == IntegrationStatus.PENDING
    assert (integration.name, integration.kind) == ("Meeting notes", "agent")
    assert AccessRequest.objects.filter(integration=integration, type=RequestType.REGISTRATION).exists()
    [event] = _events("discovery.finding_claimed", shadow)
    assert event.actor == iam_admin and event.owner == outsider
    # The person who consented did not answer: their question stays as it was.
    assert DiscoveredConsent.objects.get(person=owner).response == ConsentResponse.NOT_ASKED


def test_a_person_who_did_not_consent_cannot_claim(outsider: User, shadow: Finding, mapped: dict[str, Scope]) -> None:
    with pytest.raises(PermissionDenied):
        services.finding_claim(actor=outsider, finding=shadow, owner=outsider)
    _unchanged(shadow)


def test_a_person_claims_for_themselves_only(
    owner: User, outsider: User, shadow: Finding, mapped: dict[str, Scope]
) -> None:
    with pytest.raises(PermissionDenied):
        services.finding_claim(actor=owner, finding=shadow, owner=outsider)
    _unchanged(shadow)


def test_the_person_assigned_to_a_finding_may_claim_it(
    iam_admin: User, outsider: User, shadow: Finding, mapped: dict[str, Scope], workflows: None
) -> None:
    services.finding_assign(actor=iam_admin, finding=shadow, owner=outsider)
    integration = services.finding_claim(actor=outsider, finding=shadow, owner=outsider)
    assert integration.business_owner == outsider and integration.status == IntegrationStatus.PENDING


def test_a_claim_without_a_mapped_scope_names_the_field_and_changes_nothing(owner: User, shadow: Finding) -> None:
    with pytest.raises(Unprocessable) as refused:
        services.finding_claim(actor=owner, finding=shadow, owner=owner)
    assert "requested_scopes" in refused.value.errors
    _unchanged(shadow)


def test_a_claim_of_an_app_key_another_integration_holds_changes_nothing(
    owner: User, iam_admin: User, shadow: Finding, mapped: dict[str, Scope], workflows: None
) -> None:
    other = Integration.objects.create(name="Older", kind="agent", purpose="p", business_owner=iam_admin)
    ExternalAppId.objects.create(integration=other, source="google", app_key=shadow.app_key)
    with pytest.raises(Unprocessable) as refused:
        services.finding_claim(actor=owner, finding=shadow, owner=owner)
    assert "external_app_ids" in refused.value.errors
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.OPEN and shadow.integration is None
    assert list(Integration.objects.all()) == [other] and not AccessRequest.objects.exists()
    assert DiscoveredConsent.objects.get(person=owner).response == ConsentResponse.NOT_ASKED


def test_a_claimed_finding_cannot_be_claimed_again(
    owner: User, iam_admin: User, shadow: Finding, mapped: dict[str, Scope], workflows: None
) -> None:
    services.finding_claim(actor=owner, finding=shadow, owner=owner)
    with pytest.raises(Conflict):
        services.finding_claim(actor=iam_admin, finding=shadow, owner=iam_admin)
    assert Integration.objects.count() == 1


def test_the_prefill_is_what_the_provider_shows(owner: User, shadow: Finding, mapped: dict[str, Scope]) -> None:
    values = services.claim_prefill(shadow, owner)
    assert values["name"] == "MeetingNotes AI" and values["vendor"] == "Notes Corp"
    assert values["business_owner"] == owner and values["technical_owner"] == owner
    assert values["environment"] == "production" and values["acts_for_users"] is True
    assert [scope.code for scope in values["requested_scopes"]] == ["gcal:calendar.read", "gdrive:files.read"]
    assert values["external_app_ids"] == [("google", shadow.app_key)]
    assert "MeetingNotes AI" in values["purpose"]


# --- Not needed and revocations -------------------------------------------------------------


def test_not_needed_requests_the_revocation_with_the_provider_calls_as_a_webhook_event(
    owner: User, iam_admin: User, shadow: Finding
) -> None:
    _subscribe(iam_admin)
    consent = DiscoveredConsent.objects.get(person=owner)
    remediation = services.consent_not_needed(actor=owner, consent=consent, comment="Tried it once.")

    consent.refresh_from_db()
    assert consent.response == ConsentResponse.NOT_NEEDED and consent.responded_at is not None
    assert remediation.consent == consent and remediation.status == RemediationStatus.REQUESTED
    [call] = remediation.provider_calls
    assert call["method"] == "DELETE"
    assert call["url"].endswith(f"/admin/directory/v1/users/{owner.email}/tokens/{shadow.app_key}")
    # The only person who held it does not need it: the finding is being revoked.
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.REVOKE_REQUESTED
    [delivery] = WebhookDelivery.objects.filter(event_type="discovery.revoke_requested")
    after = delivery.details["after"]
    assert after["remediation"] == remediation.pk and after["provider_calls"] == [call]
    assert (after["source"], after["app_key"], after["people"]) == ("google", shadow.app_key, [owner.email])
    assert delivery.details["owner"] == owner.username and delivery.details["reason"] == "Tried it once."


def test_not_needed_by_one_of_two_people_leaves_the_finding_open_for_the_other(
    owner: User, outsider: User, shadow: Finding
) -> None:
    make_consent(shadow.app, person=outsider)  # type: ignore[arg-type]
    services.consent_not_needed(actor=owner, consent=DiscoveredConsent.objects.get(person=owner))
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.OPEN
    assert DiscoveredConsent.objects.get(person=outsider).response == ConsentResponse.NOT_ASKED


def test_only_the_person_who_consented_answers_and_only_once(owner: User, outsider: User, shadow: Finding) -> None:
    consent = DiscoveredConsent.objects.get(person=owner)
    with pytest.raises(PermissionDenied):
        services.consent_not_needed(actor=outsider, consent=consent)
    assert not Remediation.objects.exists()
    services.consent_not_needed(actor=owner, consent=consent)
    with pytest.raises(Conflict):
        services.consent_not_needed(actor=owner, consent=consent)
    assert Remediation.objects.count() == 1


def test_an_admin_revokes_every_consent_and_the_portal_calls_the_provider_when_it_may(
    iam_admin: User,
    owner: User,
    outsider: User,
    shadow: Finding,
    queued: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    make_consent(shadow.app, person=outsider)  # type: ignore[arg-type]
    connectors = _connectors("google", base_url="https://admin.googleapis.com", write_token="write-token")
    with override_settings(DISCOVERY_CONNECTORS=connectors), django_capture_on_commit_callbacks(execute=True):
        remediation = services.finding_revoke(actor=iam_admin, finding=shadow, reason="Not allowed here.")
    assert len(remediation.provider_calls) == 2 and remediation.consent is None
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.REVOKE_REQUESTED and shadow.closed_at is None
    [event] = _events("discovery.revoke_requested", shadow)
    assert sorted(_after(event)["people"]) == sorted([owner.email, outsider.email])
    assert event.owner == iam_admin and event.reason == "Not allowed here."
    assert queued == [("inventory.discovery.tasks.remediation_execute", (remediation.pk,))]


def test_without_a_write_token_the_revocation_is_left_to_the_ticketing_system(
    iam_admin: User, shadow: Finding, queued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        remediation = services.finding_revoke(actor=iam_admin, finding=shadow, reason="No.")
    assert queued == []
    assert services.remediation_execute(remediation.pk).status == RemediationStatus.REQUESTED


def test_only_iam_admins_revoke_dismiss_sanction_assign_and_review(owner: User, auditor: User, shadow: Finding) -> None:
    for person in (owner, auditor):
        for decide in (
            lambda who: services.finding_revoke(actor=who, finding=shadow, reason="x"),
            lambda who: services.finding_dismiss(actor=who, finding=shadow, reason="x"),
            lambda who: services.finding_sanction(actor=who, finding=shadow),
            lambda who: services.finding_assign(actor=who, finding=shadow, owner=who),
            lambda who: services.finding_open_review(actor=who, finding=shadow),
        ):
            with pytest.raises(PermissionDenied):
                decide(person)
    _unchanged(shadow)


# --- Carrying a revocation out at the provider (a local server stands in for Slack) -----------


def _connectors(source: str, **values: str) -> dict[str, dict[str, str]]:
    from django.conf import settings

    connectors = {name: dict(config) for name, config in settings.DISCOVERY_CONNECTORS.items()}
    connectors[source].update(values)
    return connectors


@pytest.fixture
def slack_provider() -> Iterator[Any]:
    with http_stub() as stub:
        connectors = _connectors(
            "slack", base_url=f"http://127.0.0.1:{stub.port}", tenant="E0INVENTED", write_token="xoxp-write"
        )
        with override_settings(DISCOVERY_CONNECTORS=connectors, OUTBOUND_ALLOWED_HOSTS=[f"127.0.0.1:{stub.port}"]):
            yield stub


@pytest.fixture
def slack_revocation(iam_admin: User, queued: list[Any]) -> Callable[[], Remediation]:
    def make() -> Remediation:
        imp = make_import(source="slack", tenant="E0INVENTED", started_by=iam_admin)
        app = make_app(source="slack", tenant="E0INVENTED", app_key="A07INVENTED1", name="ThreadSummarizer", imp=imp)
        make_consent(app, consent_type="admin")
        finding = make_finding(app)
        return services.finding_revoke(actor=iam_admin, finding=finding, reason="Unapproved app.")

    return make


def test_a_revocation_done_at_the_provider_is_recorded_and_the_finding_revoked(
    slack_provider: Any, slack_revocation: Callable[[], Remediation], iam_admin: User
) -> None:
    from tests.outbound_support import Reply

    slack_provider.reply = Reply(200, {"Content-Type": "application/json"}, b'{"ok": true}')
    remediation = slack_revocation()
    done = services.remediation_execute(remediation.pk)
    assert done.status == RemediationStatus.DONE and done.executed_at is not None
    [seen] = slack_provider.seen
    assert seen.method == "POST" and seen.path.startswith("/api/admin.apps.uninstall?")
    assert "app_id=A07INVENTED1" in seen.path and seen.headers["Authorization"] == "Bearer xoxp-write"
    finding = done.finding
    finding.refresh_from_db()
    assert finding.status == FindingStatus.REVOKED
    [event] = _events("discovery.revoked", finding)
    assert event.owner == iam_admin and _after(event)["remediation_status"] == "done"
    # Run again (a retried task): nothing more is called or recorded.
    assert services.remediation_execute(remediation.pk).status == RemediationStatus.DONE
    assert len(slack_provider.seen) == 1 and len(_events("discovery.revoked", finding)) == 1


def test_a_refused_revocation_is_recorded_as_failed_and_the_finding_stays_requested(
    slack_provider: Any, slack_revocation: Callable[[], Remediation]
) -> None:
    from tests.outbound_support import Reply

    slack_provider.reply = Reply(200, {"Content-Type": "application/json"}, b'{"ok": false, "error": "not_allowed"}')
    remediation = slack_revocation()
    failed = services.remediation_execute(remediation.pk)
    assert failed.status == RemediationStatus.FAILED and "not_allowed" in failed.result
    finding = failed.finding
    finding.refresh_from_db()
    assert finding.status == FindingStatus.REVOKE_REQUESTED
    [event] = _events("discovery.revoke_failed", finding)
    assert _after(event)["remediation_status"] == "failed"


def test_a_revocation_asked_again_after_a_failure_revokes_the_finding_once_it_is_done(
    slack_provider: Any, slack_revocation: Callable[[], Remediation], iam_admin: User
) -> None:
    from tests.outbound_support import Reply

    slack_provider.reply = Reply(200, {"Content-Type": "application/json"}, b'{"ok": false, "error": "not_allowed"}')
    first = services.remediation_execute(slack_revocation().pk)
    assert first.status == RemediationStatus.FAILED
    # The admin fixes the token's rights and asks again: the new request covers the whole app.
    slack_provider.reply = Reply(200, {"Content-Type": "application/json"}, b'{"ok": true}')
    again = services.finding_revoke(actor=iam_admin, finding=first.finding, reason="Token fixed.")
    assert services.remediation_execute(again.pk).status == RemediationStatus.DONE
    finding = again.finding
    finding.refresh_from_db()
    assert finding.status == FindingStatus.REVOKED


# --- Assign, sanction, dismiss ----------------------------------------------------------------


def test_assigning_an_owner_tells_them_by_email(iam_admin: User, outsider: User, shadow: Finding) -> None:
    services.finding_assign(actor=iam_admin, finding=shadow, owner=outsider)
    shadow.refresh_from_db()
    assert shadow.assigned_owner == outsider and shadow.status == FindingStatus.OPEN
    [email] = OutboundEmail.objects.filter(recipient=outsider)
    assert email.to_address == outsider.email and "MeetingNotes AI" in email.subject
    assert f"/discovery/findings/{shadow.pk}/" in email.body_text
    [event] = _events("discovery.finding_assigned", shadow)
    assert event.after == {"assigned_owner": outsider.username} and event.owner == outsider
    with pytest.raises(Unprocessable):
        services.finding_assign(actor=iam_admin, finding=shadow, owner=outsider)
    assert OutboundEmail.objects.filter(recipient=outsider).count() == 1


def test_sanctioning_registers_the_app_once_with_the_iam_admin_as_owner(
    iam_admin: User, shadow: Finding, mapped: dict[str, Scope], workflows: None
) -> None:
    integration = services.finding_sanction(actor=iam_admin, finding=shadow, values={})
    assert integration.business_owner == iam_admin and integration.status == IntegrationStatus.PENDING
    assert AccessRequest.objects.filter(integration=integration, type=RequestType.REGISTRATION).exists()
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.SANCTIONED and shadow.integration == integration
    assert _events("discovery.finding_sanctioned", shadow)[0].owner == iam_admin
    with pytest.raises(Conflict):
        services.finding_sanction(actor=iam_admin, finding=shadow, values={})
    assert Integration.objects.count() == 1


def test_dismissing_needs_a_reason(iam_admin: User, shadow: Finding) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.finding_dismiss(actor=iam_admin, finding=shadow, reason="  ")
    assert "reason" in refused.value.errors
    _unchanged(shadow)
    services.finding_dismiss(actor=iam_admin, finding=shadow, reason="A test tenant's app.")
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.DISMISSED and shadow.closed_at is not None
    assert shadow.resolution == "A test tenant's app."
    assert _events("discovery.finding_dismissed", shadow)[0].reason == "A test tenant's app."


# --- A drift's scope review -------------------------------------------------------------------


@pytest.fixture
def drift(owner: User, mapped: dict[str, Scope], workflows: None) -> Finding:
    """An active integration that asked for calendar access; the provider shows drive too."""
    integration = Integration.objects.create(
        name="MeetingNotes AI", kind="agent", purpose="Notes.", business_owner=owner, status=IntegrationStatus.ACTIVE
    )
    integration.requested_scopes.set([mapped["calendar"]])
    app = make_app(imp=make_import(), integration=integration)
    ExternalAppId.objects.create(integration=integration, source="google", app_key=app.app_key)
    return make_finding(app, kind=FindingKind.DRIFT, extra_scopes=[DRIVE], integration=integration)


def test_a_drift_review_asks_approvals_for_the_extra_scopes(iam_admin: User, drift: Finding) -> None:
    services.finding_open_review(actor=iam_admin, finding=drift)
    request = AccessRequest.objects.get(integration=drift.integration)
    assert request.type == RequestType.EXPANSION
    assert list(request.requested_scopes.values_list("code", flat=True)) == ["gdrive:files.read"]
    drift.refresh_from_db()
    assert drift.status == FindingStatus.REVIEW_OPENED and drift.closed_at is None
    assert _after(_events("discovery.review_opened", drift)[0])["scopes"] == ["gdrive:files.read"]
    with pytest.raises(Conflict):
        services.finding_open_review(actor=iam_admin, finding=drift)


def test_a_drift_of_unmapped_scopes_cannot_be_reviewed_and_nothing_changes(iam_admin: User, drift: Finding) -> None:
    Finding.objects.filter(pk=drift.pk).update(extra_scopes=["https://www.googleapis.com/auth/gmail.send"])
    with pytest.raises(Unprocessable) as refused:
        services.finding_open_review(actor=iam_admin, finding=drift)
    assert "extra_scopes" in refused.value.errors
    drift.refresh_from_db()
    assert drift.status == FindingStatus.OPEN and not AccessRequest.objects.exists()
    assert list(drift.integration.requested_scopes.values_list("code", flat=True)) == ["gcal:calendar.read"]  # type: ignore[union-attr]
