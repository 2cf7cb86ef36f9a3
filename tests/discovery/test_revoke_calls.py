"""Revocation at the provider: the calls built for each provider, and making them against a real
local HTTP server through the outbound client (with the write token, only where one is set)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from governance.models import User
from inventory.discovery import revoke, tasks
from inventory.discovery.choices import ConsentType, FindingKind, FindingStatus, RemediationStatus
from inventory.discovery.models import DiscoveredApp, DiscoveredConsent, Finding, Remediation
from tests.discovery.factories import make_app, make_consent, make_finding
from tests.discovery.provider_server import ProviderServer, provider_server
from tests.discovery.test_pull import connectors
from tests.outbound_support import listener

pytestmark = pytest.mark.django_db

BASE = "https://provider.example.com"
GOOGLE_CLIENT = "123456789012-meetingnotes.apps.googleusercontent.com"


@pytest.fixture
def configured(settings: Any) -> None:
    settings.DISCOVERY_CONNECTORS = connectors(BASE)


def consent_with_email(app: DiscoveredApp, email: str, **fields: Any) -> DiscoveredConsent:
    """A consent of someone the provider names by id, with the email it also gave."""
    consent = make_consent(app, **fields)
    DiscoveredConsent.objects.filter(pk=consent.pk).update(person_email=email)
    consent.person_email = email
    return consent


def google_finding() -> Finding:
    app = make_app(source="google", tenant="C0invented", app_key=GOOGLE_CLIENT, name="MeetingNotes AI")
    consent_with_email(app, "alice@example.com", person_key="108000000000000000001")
    consent_with_email(app, "carol@example.com", person_key="108000000000000000003")
    make_consent(app, person_key="108000000000000000009", present=False)  # already gone at the provider
    return make_finding(app)


def entra_finding() -> Finding:
    app = make_app(
        source="entra",
        tenant="tenant-invented",
        app_key="a1a1a1a1-0000-4000-8000-aaaaaaaaaaa1",
        alt_key="9e1c6b2a-0000-4a6b-9c1e-111111111111",
        name="InboxAssistant AI",
        scopes=["Mail.Read"],
    )
    make_consent(app, person_key="2f4d9c3e-0000-4e5f-8a9b-222222222201", grant_ids=["grant-1"])
    make_consent(app, person_key="*", consent_type=ConsentType.ADMIN, grant_ids=["grant-2", "grant-3"])
    return make_finding(app)


def slack_finding() -> Finding:
    app = make_app(source="slack", tenant="E0INVENTED", app_key="A07INVENTED1", name="ThreadSummarizer", scopes=[])
    make_consent(app, person_key="*", consent_type=ConsentType.ADMIN)
    return make_finding(app)


def github_finding() -> Finding:
    page = "https://github.com/organizations/acme-invented/settings/installations/51000001"
    app = make_app(
        source="github",
        tenant="acme-invented",
        app_key="910001",
        name="review-copilot-invented",
        scopes=["contents:write"],
        details={"html_url": page},
    )
    make_consent(app, person_key="*", consent_type=ConsentType.ADMIN, grant_ids=["51000001"])
    return make_finding(app)


def okta_finding() -> Finding:
    app = make_app(source="okta", tenant="acme-invented", app_key="0oainventedai1", name="Summarizer AI", scopes=[])
    consent_with_email(app, "alice@example.com", person_key="00uinvented1", grant_ids=["oag1", "oag2"])
    make_consent(app, person_key="00uinvented3", grant_ids=["oag5"])
    return make_finding(app)


# --- The calls, per provider -------------------------------------------------------------------


@pytest.mark.usefixtures("configured")
def test_google_deletes_each_persons_tokens_for_the_client() -> None:
    calls = revoke.revoke_calls(google_finding())

    assert calls == [
        {
            "method": "DELETE",
            "url": f"{BASE}/admin/directory/v1/users/108000000000000000001/tokens/{GOOGLE_CLIENT}",
            "description": "Delete the tokens alice@example.com granted to MeetingNotes AI",
            "ids": {"userKey": "108000000000000000001", "clientId": GOOGLE_CLIENT},
        },
        {
            "method": "DELETE",
            "url": f"{BASE}/admin/directory/v1/users/108000000000000000003/tokens/{GOOGLE_CLIENT}",
            "description": "Delete the tokens carol@example.com granted to MeetingNotes AI",
            "ids": {"userKey": "108000000000000000003", "clientId": GOOGLE_CLIENT},
        },
    ]


@pytest.mark.usefixtures("configured")
def test_one_consent_revokes_only_that_persons_grant() -> None:
    finding = google_finding()
    carol = DiscoveredConsent.objects.get(app=finding.app, person_email="carol@example.com")

    calls = revoke.revoke_calls(finding, carol)

    assert [call["ids"]["userKey"] for call in calls] == ["108000000000000000003"]


@pytest.mark.usefixtures("configured")
def test_entra_deletes_each_permission_grant_including_the_admin_consent() -> None:
    calls = revoke.revoke_calls(entra_finding())

    assert [(call["method"], call["url"]) for call in calls] == [
        ("DELETE", f"{BASE}/v1.0/oauth2PermissionGrants/grant-2"),
        ("DELETE", f"{BASE}/v1.0/oauth2PermissionGrants/grant-3"),
        ("DELETE", f"{BASE}/v1.0/oauth2PermissionGrants/grant-1"),
    ]
    assert calls[0]["description"] == "Delete the permission grant of everyone (admin consent) to InboxAssistant AI"
    assert calls[0]["ids"] == {
        "grant_id": "grant-2",
        "client_id": "9e1c6b2a-0000-4a6b-9c1e-111111111111",
        "app_id": "a1a1a1a1-0000-4000-8000-aaaaaaaaaaa1",
    }


@pytest.mark.usefixtures("configured")
def test_slack_uninstalls_the_app_from_the_enterprise() -> None:
    assert revoke.revoke_calls(slack_finding()) == [
        {
            "method": "POST",
            "url": f"{BASE}/api/admin.apps.uninstall?app_id=A07INVENTED1&enterprise_id=E0INVENTED",
            "description": "Uninstall ThreadSummarizer from the Slack enterprise E0INVENTED (irreversible)",
            "ids": {"app_id": "A07INVENTED1", "enterprise_id": "E0INVENTED"},
        }
    ]


@pytest.mark.usefixtures("configured")
def test_okta_revokes_each_persons_grants_for_the_client() -> None:
    calls = revoke.revoke_calls(okta_finding())

    assert [(call["method"], call["url"]) for call in calls] == [
        ("DELETE", f"{BASE}/api/v1/users/00uinvented1/clients/0oainventedai1/grants"),
        ("DELETE", f"{BASE}/api/v1/users/00uinvented3/clients/0oainventedai1/grants"),
    ]
    assert calls[0]["description"] == "Revoke the grants alice@example.com gave Summarizer AI"
    assert calls[1]["ids"] == {"userId": "00uinvented3", "clientId": "0oainventedai1", "grant_ids": ["oag5"]}


@pytest.mark.usefixtures("configured")
def test_github_has_no_api_so_the_call_is_manual_with_the_installation_page() -> None:
    (call,) = revoke.revoke_calls(github_finding())

    assert call["method"] == "MANUAL"
    assert call["url"] == "https://github.com/organizations/acme-invented/settings/installations/51000001"
    assert "no API" in call["description"] and "Uninstall" in call["description"]
    assert call["ids"] == {"app_id": "910001", "installation_ids": ["51000001"], "org": "acme-invented"}


@pytest.mark.usefixtures("configured")
def test_a_finding_without_an_app_has_nothing_to_revoke() -> None:
    assert revoke.revoke_calls(make_finding(None, kind=FindingKind.STALE)) == []


# --- Calling the provider ------------------------------------------------------------------------


@pytest.fixture
def provider(settings: Any, tmp_path: Path) -> Iterator[ProviderServer]:
    with provider_server() as server:
        settings.OUTBOUND_ALLOWED_HOSTS = [server.host]
        settings.DISCOVERY_CONNECTORS = connectors(server.base)
        yield server


def remediation_for(finding: Finding) -> Remediation:
    return Remediation.objects.create(finding=finding, provider_calls=revoke.revoke_calls(finding), reason="test")


def test_revoking_makes_each_call_with_the_write_token(provider: ProviderServer) -> None:
    remediation = remediation_for(entra_finding())
    for grant in ("grant-1", "grant-2", "grant-3"):
        provider.add(f"DELETE /v1.0/oauth2PermissionGrants/{grant}", 204)

    done, result = revoke.revoke_at_provider(remediation)

    assert done is True
    assert result.startswith("3 of 3 provider calls succeeded.")
    assert "revoked (HTTP 204)" in result
    assert sorted(seen.target for seen in provider.requests("DELETE")) == [
        "/v1.0/oauth2PermissionGrants/grant-1",
        "/v1.0/oauth2PermissionGrants/grant-2",
        "/v1.0/oauth2PermissionGrants/grant-3",
    ]
    assert {seen.headers["Authorization"] for seen in provider.seen} == {"Bearer entra-write-token"}
    assert provider.unexpected == []


def test_okta_revocation_sends_the_write_token_as_ssws(provider: ProviderServer) -> None:
    remediation = remediation_for(okta_finding())
    provider.add("DELETE /api/v1/users/00uinvented1/clients/0oainventedai1/grants", 204)
    provider.add("DELETE /api/v1/users/00uinvented3/clients/0oainventedai1/grants", 204)

    assert revoke.revoke_at_provider(remediation)[0] is True
    assert {seen.headers["Authorization"] for seen in provider.seen} == {"SSWS okta-write-token"}


def test_a_grant_already_gone_counts_as_revoked(provider: ProviderServer) -> None:
    remediation = remediation_for(google_finding())
    provider.add(f"DELETE /admin/directory/v1/users/108000000000000000001/tokens/{GOOGLE_CLIENT}", 204)
    provider.add(f"DELETE /admin/directory/v1/users/108000000000000000003/tokens/{GOOGLE_CLIENT}", 404)

    done, result = revoke.revoke_at_provider(remediation)

    assert done is True
    assert "Delete the tokens carol@example.com granted to MeetingNotes AI: already gone (HTTP 404)" in result


def test_a_failing_call_is_recorded_and_the_others_are_still_made(provider: ProviderServer) -> None:
    remediation = remediation_for(google_finding())
    provider.add(f"DELETE /admin/directory/v1/users/108000000000000000001/tokens/{GOOGLE_CLIENT}", 500)
    provider.add(f"DELETE /admin/directory/v1/users/108000000000000000003/tokens/{GOOGLE_CLIENT}", 204)

    done, result = revoke.revoke_at_provider(remediation)

    assert done is False
    assert len(provider.requests("DELETE")) == 2
    lines = result.splitlines()
    assert lines[0] == "1 of 2 provider calls succeeded."
    assert lines[1] == "Delete the tokens alice@example.com granted to MeetingNotes AI: HTTP 500"  # failures first


def test_slack_answers_its_errors_inside_a_200(provider: ProviderServer) -> None:
    remediation = remediation_for(slack_finding())
    target = "POST /api/admin.apps.uninstall?app_id=A07INVENTED1&enterprise_id=E0INVENTED"
    provider.add(target, 200, {"ok": False, "error": "app_not_eligible"})
    provider.add(target, 200, {"ok": True})

    assert revoke.revoke_at_provider(remediation) == (
        False,
        "0 of 1 provider calls succeeded.\nUninstall ThreadSummarizer from the Slack enterprise E0INVENTED "
        "(irreversible): Slack answered an error (app_not_eligible)",
    )
    done, _ = revoke.revoke_at_provider(remediation)
    assert done is True
    assert {seen.headers["Authorization"] for seen in provider.seen} == {"Bearer slack-write-token"}


def test_without_a_write_token_nothing_is_sent(provider: ProviderServer, settings: Any) -> None:
    settings.DISCOVERY_CONNECTORS = connectors(provider.base, entra={"write_token": ""})
    remediation = remediation_for(entra_finding())

    done, result = revoke.revoke_at_provider(remediation)

    assert done is False
    assert "No write token" in result
    assert provider.seen == []


def test_a_manual_revocation_sends_nothing(provider: ProviderServer) -> None:
    remediation = remediation_for(github_finding())

    done, result = revoke.revoke_at_provider(remediation)

    assert done is False
    assert "done by hand" in result
    assert provider.seen == []


def test_the_write_token_goes_only_to_the_connectors_own_origin(provider: ProviderServer, settings: Any) -> None:
    with listener() as elsewhere:
        settings.OUTBOUND_ALLOWED_HOSTS = [provider.host, f"127.0.0.1:{elsewhere.port}"]
        # Calls recorded while the connector pointed somewhere else are not sent to that place.
        settings.DISCOVERY_CONNECTORS = connectors(f"http://127.0.0.1:{elsewhere.port}")
        remediation = remediation_for(slack_finding())
        settings.DISCOVERY_CONNECTORS = connectors(provider.base)

        done, result = revoke.revoke_at_provider(remediation)

        assert elsewhere.accepted == 0
    assert done is False
    assert "not sent: the URL is not on the connector's base URL" in result
    assert provider.seen == []


def test_the_outbound_policy_applies_to_revocations(settings: Any) -> None:
    with listener() as unlisted:
        settings.OUTBOUND_ALLOWED_HOSTS = []
        settings.DISCOVERY_CONNECTORS = connectors(f"http://127.0.0.1:{unlisted.port}")
        remediation = remediation_for(slack_finding())

        done, result = revoke.revoke_at_provider(remediation)

        assert unlisted.accepted == 0
    assert done is False
    assert result.endswith(": refused by outbound policy")


@pytest.mark.parametrize(("answer", "status"), [(204, RemediationStatus.DONE), (500, RemediationStatus.FAILED)])
def test_the_revocation_task_records_what_the_provider_answered(
    provider: ProviderServer, iam_admin: User, answer: int, status: str
) -> None:
    finding = entra_finding()
    Finding.objects.filter(pk=finding.pk).update(status=FindingStatus.REVOKE_REQUESTED)
    remediation = Remediation.objects.create(
        finding=finding, provider_calls=revoke.revoke_calls(finding), reason="test", requested_by=iam_admin
    )
    for grant in ("grant-1", "grant-2", "grant-3"):
        provider.add(f"DELETE /v1.0/oauth2PermissionGrants/{grant}", answer)

    assert tasks.remediation_execute(remediation.pk) == status

    remediation.refresh_from_db()
    assert remediation.result.startswith(f"{3 if answer == 204 else 0} of 3 provider calls succeeded.")
    assert len(provider.requests("DELETE")) == 3
    # Run again: a finished revocation calls nobody twice.
    tasks.remediation_execute(remediation.pk)
    assert len(provider.requests("DELETE")) == 3
