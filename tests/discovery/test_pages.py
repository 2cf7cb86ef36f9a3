"""The discovery pages: IAM admins read and act, reviewers and auditors read without a single
action form, a person sees their own connected apps (and may claim or say "not needed"), anyone
else gets 404; the dashboard, the work list and a finding's page run a fixed number of queries;
a refused form comes back with what was typed and the error beside its field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.services import default_workflows_ensure
from governance import queue
from governance.audit import audit_record
from governance.models import AuditEvent, User
from governance.roles import Role
from inventory.choices import IntegrationStatus
from inventory.discovery.choices import ConsentResponse, FindingKind, FindingStatus, ImportStatus
from inventory.discovery.models import DiscoveredConsent, DiscoveryImport, Finding, Remediation, ScopeMapping
from inventory.models import Integration
from tests.discovery.factories import (
    GOOGLE_SCOPES,
    make_app,
    make_consent,
    make_finding,
    make_import,
    make_scope,
    map_scope,
)

pytestmark = pytest.mark.django_db

CALENDAR, DRIVE = GOOGLE_SCOPES


@pytest.fixture
def shadow(owner: User, iam_admin: User) -> Finding:
    """A shadow app that ``owner`` and someone without an account consented to, waiting for
    ``owner``'s answer, found by an import ``iam_admin`` ran."""
    imp = make_import(started_by=iam_admin, records=2, counts={"records": 2, "apps": 1, "findings": {"shadow": 1}})
    app = make_app(imp=imp, name="MeetingNotes AI")
    make_consent(app, person=owner, response=ConsentResponse.PENDING, respond_by=timezone.now() + timedelta(days=14))
    make_consent(app, person_key="stranger@elsewhere.example")
    return make_finding(app, risk_score=35, risk_tier="medium", risk_factors=[_factor("broad_scopes", 20)])


def _factor(code: str, points: int) -> dict[str, Any]:
    return {"code": code, "points": points, "reason": f"{code.replace('_', ' ')} applies"}


def _pages(finding: Finding) -> dict[str, str]:
    imp = finding.opened_by_import
    assert imp is not None
    return {
        "dashboard": reverse("discovery:dashboard"),
        "findings": reverse("discovery:findings"),
        "finding": reverse("discovery:finding", args=[finding.pk]),
        "imports": reverse("discovery:imports"),
        "import": reverse("discovery:import", args=[imp.pk]),
        "mappings": reverse("discovery:scope-mappings"),
        "mine": reverse("discovery:mine"),
    }


def _action_urls(finding: Finding) -> list[str]:
    return [
        reverse(f"discovery:finding-{action}", args=[finding.pk])
        for action in ("claim", "sanction", "assign", "dismiss", "revoke")
    ]


# --- Who sees what ---------------------------------------------------------------------------------


def test_iam_admin_reads_every_page_and_is_offered_every_decision(
    iam_admin: User, owner: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    client = web_as(iam_admin)
    for name, url in _pages(shadow).items():
        assert client.get(url).status_code == 200, name
    html = client.get(reverse("discovery:finding", args=[shadow.pk])).content.decode()
    for url in _action_urls(shadow):
        assert url in html
    assert "stranger@elsewhere.example" in html and owner.label in html
    assert "broad scopes applies" in html and "History" in html
    imports = client.get(reverse("discovery:imports")).content.decode()
    assert 'enctype="multipart/form-data"' in imports
    mappings = client.get(reverse("discovery:scope-mappings")).content.decode()
    assert 'name="provider_scope"' in mappings


@pytest.mark.parametrize("role", ["auditor", "reviewer"])
def test_auditors_and_reviewers_read_every_page_without_an_action_form(
    role: str, request: pytest.FixtureRequest, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    reader: User = request.getfixturevalue(role)
    client = web_as(reader)
    for name, url in _pages(shadow).items():
        response = client.get(url)
        assert response.status_code == 200, name
        html = response.content.decode()
        for action in _action_urls(shadow):
            assert action not in html, (name, action)
        assert 'enctype="multipart/form-data"' not in html and 'name="provider_scope"' not in html
    html = client.get(reverse("discovery:finding", args=[shadow.pk])).content.decode()
    assert "stranger@elsewhere.example" in html  # who consented: read in full
    assert client.get(reverse("discovery:finding-claim", args=[shadow.pk])).status_code == 403
    response = client.post(reverse("discovery:finding-dismiss", args=[shadow.pk]), {"dismiss-reason": "Fine."})
    assert response.status_code == 403
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.OPEN


def test_outsider_gets_404_on_every_page_but_their_own_apps(
    outsider: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    client = web_as(outsider)
    for name, url in _pages(shadow).items():
        expected = 200 if name == "mine" else 404
        assert client.get(url).status_code == expected, name
    assert "No connected app is on record for you." in client.get(reverse("discovery:mine")).content.decode()
    for url in _action_urls(shadow):
        assert client.post(url, {}).status_code == 404, url
    assert "Discovery" not in client.get("/").content.decode().split("<main")[0]


def test_the_person_who_consented_sees_their_app_their_consent_only_and_may_claim(
    owner: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    client = web_as(owner)
    mine = client.get(reverse("discovery:mine")).content.decode()
    assert "MeetingNotes AI" in mine
    assert reverse("discovery:finding-claim", args=[shadow.pk]) in mine
    consent = DiscoveredConsent.objects.get(person=owner)
    assert reverse("discovery:consent-not-needed", args=[consent.pk]) in mine
    assert "Answer by" in mine
    html = client.get(reverse("discovery:finding", args=[shadow.pk])).content.decode()
    assert "Your consent" in html and "stranger@elsewhere.example" not in html
    assert 'id="h-history"' not in html and 'id="h-actions"' not in html
    assert "Claim: I use this for work" in html
    claim = client.get(reverse("discovery:finding-claim", args=[shadow.pk])).content.decode()
    assert 'name="owner"' not in claim and 'value="MeetingNotes AI"' in claim
    # The rest of discovery stays closed to them.
    assert client.get(reverse("discovery:findings")).status_code == 404
    home = client.get("/").content.decode()
    assert "Apps you connected" in home and reverse("discovery:mine") in home


def test_an_auditor_who_consented_is_not_offered_the_claim_the_service_would_refuse(
    owner: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    owner.groups.set([Group.objects.get(name=Role.AUDITOR)])  # an auditor and nothing else
    client = web_as(owner)
    html = client.get(reverse("discovery:finding", args=[shadow.pk])).content.decode()
    assert "MeetingNotes AI" in html and "Claim: I use this for work" not in html
    assert (
        reverse("discovery:finding-claim", args=[shadow.pk])
        not in client.get(reverse("discovery:mine")).content.decode()
    )
    assert client.get(reverse("discovery:finding-claim", args=[shadow.pk])).status_code == 403


def test_a_person_may_not_answer_for_someone_elses_consent(
    outsider: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    other = DiscoveredConsent.objects.get(person__isnull=False)
    response = web_as(outsider).post(reverse("discovery:consent-not-needed", args=[other.pk]), {})
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.response == ConsentResponse.PENDING
    assert not Remediation.objects.exists()


def test_nav_shows_discovery_to_readers_only(
    iam_admin: User, auditor: User, owner: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    link = f'href="{reverse("discovery:dashboard")}"'
    for user, shown in ((iam_admin, True), (auditor, True), (owner, False)):
        header = web_as(user).get("/").content.decode().split("<main")[0]
        assert (link in header) is shown, user.username


# --- The work list -----------------------------------------------------------------------------------


def test_work_list_shows_active_findings_by_default_and_filters(
    iam_admin: User, owner: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    slack = make_app(source="slack", tenant="E1", app_key="A1", name="Standup bot", publisher="Bots Inc")
    make_finding(slack, people_affected=40, risk_tier="high", risk_score=45)
    drift = make_app(name="Drive helper")
    make_finding(drift, kind=FindingKind.DRIFT, extra_scopes=[DRIVE], people_affected=3)
    gone = make_app(name="Old tool")
    make_finding(gone, status=FindingStatus.DISMISSED, resolution="Known.")
    client = web_as(iam_admin)

    def listed(**query: Any) -> str:
        response = client.get(reverse("discovery:findings"), query)
        assert response.status_code == 200
        return response.content.decode()

    html = listed()
    assert "MeetingNotes AI" in html and "Standup bot" in html and "Drive helper" in html
    assert "Old tool" not in html
    assert html.index("Standup bot") < html.index("Drive helper")  # most people affected first
    assert "Old tool" in listed(status="closed") and "Old tool" in listed(status="all")
    assert "Standup bot" not in listed(source="google")
    html = listed(kind="drift")
    assert "Drive helper" in html and "MeetingNotes AI" not in html
    assert "Standup bot" in listed(risk_tier="high") and "Drive helper" not in listed(risk_tier="high")
    assert "Drive helper" not in listed(people_min="10") and "Standup bot" in listed(people_min="10")
    html = listed(person=owner.username)
    assert "MeetingNotes AI" in html and "Standup bot" not in html
    assert "MeetingNotes AI" in listed(person="STRANGER@elsewhere.example")
    assert "Standup bot" in listed(q="bots inc") and "MeetingNotes AI" not in listed(q="bots inc")
    html = listed(ordering="title")
    assert html.index("Drive helper") < html.index("MeetingNotes AI") < html.index("Standup bot")
    # A value that does not parse is named beside its field; the other filters still apply.
    html = listed(people_min="many", source="slack")
    assert 'id="id_people_min-error"' in html and "Standup bot" in html and "MeetingNotes AI" not in html


def _count(client: Any, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


def _more_findings(count: int, tag: str, people: list[User], admin: User) -> None:
    """``count`` findings of every kind and state, with consents and imports around them."""
    for index in range(count):
        imp = make_import(source=["google", "slack", "okta"][index % 3], started_by=admin)
        app = make_app(source=imp.source, name=f"{tag} app {index}", imp=imp)
        for person in people:
            make_consent(app, person=person)
        kind = [FindingKind.SHADOW, FindingKind.DRIFT, FindingKind.STALE][index % 3]
        status = FindingStatus.OPEN if index % 4 else FindingStatus.DISMISSED
        finding = make_finding(app, kind=kind, status=status, assigned_owner=people[0], people_affected=index)
        if status == FindingStatus.DISMISSED:
            Finding.objects.filter(pk=finding.pk).update(closed_at=timezone.now())


def test_dashboard_and_work_list_run_the_same_queries_for_few_and_many(
    iam_admin: User, owner: User, shadow: Finding, make_user: Callable[..., User], web_as: Callable[[User], Any]
) -> None:
    client = web_as(iam_admin)
    people = [owner, make_user("p1"), make_user("p2")]
    _more_findings(3, "few", people, iam_admin)
    small_dash, _ = _count(client, reverse("discovery:dashboard"))
    small_list, _ = _count(client, reverse("discovery:findings") + "?status=all")
    small_filtered, _ = _count(client, reverse("discovery:findings") + f"?person={owner.username}&q=app")
    _more_findings(40, "many", people + [make_user("p3")], iam_admin)
    large_dash, html = _count(client, reverse("discovery:dashboard"))
    assert "many app 39" in html
    large_list, html = _count(client, reverse("discovery:findings") + "?status=all")
    assert html.count('href="/discovery/findings/') >= 25
    large_filtered, _ = _count(client, reverse("discovery:findings") + f"?person={owner.username}&q=app")
    assert (large_dash, large_list, large_filtered) == (small_dash, small_list, small_filtered)


def test_finding_page_runs_the_same_queries_for_few_and_many_people_and_events(
    iam_admin: User, shadow: Finding, make_user: Callable[..., User], web_as: Callable[[User], Any]
) -> None:
    client = web_as(iam_admin)
    url = reverse("discovery:finding", args=[shadow.pk])
    map_scope("google", CALENDAR, make_scope("gcal:calendar.read", sensitivity="low"))
    _history_of(shadow, iam_admin, 1)
    small, _ = _count(client, url)
    assert shadow.app is not None
    for index in range(60):
        make_consent(shadow.app, person=make_user(f"many{index}") if index % 2 else None)
    _history_of(shadow, iam_admin, 12)
    large, html = _count(client, url)
    assert "People 1–50 of 62" in html and "Revocation" in html
    assert large == small


def test_a_persons_page_runs_the_same_queries_for_few_and_many_apps(
    owner: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    client = web_as(owner)
    small, _ = _count(client, reverse("discovery:mine"))
    for index in range(20):
        app = make_app(name=f"Tool {index:02}")
        make_consent(app, person=owner, response=ConsentResponse.PENDING)
        if index % 2:
            make_finding(app)
    large, html = _count(client, reverse("discovery:mine"))
    assert "Tool 19" in html and html.count("Disconnect it</button>") == 11
    assert large == small


def _history_of(finding: Finding, admin: User, count: int) -> None:
    """``count`` audited events about the finding and as many revocations of it."""
    with transaction.atomic():
        for index in range(count):
            remediation = Remediation.objects.create(
                finding=finding,
                provider_calls=[{"method": "DELETE", "url": f"/tokens/{index}", "description": "", "ids": []}],
                requested_by=admin,
            )
            audit_record(actor=admin, action="discovery.finding_assigned", target=finding, after={"assigned": index})
            audit_record(
                actor=admin, action="discovery.revoke_requested", target=remediation, after={"remediation": index}
            )


# --- The dashboard -------------------------------------------------------------------------------------


def test_dashboard_counts_by_kind_and_source_ranks_unregistered_apps_and_names_last_imports(
    iam_admin: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    big = make_app(source="okta", tenant="acme", app_key="0oa1", name="Sheets wizard")
    make_finding(big, people_affected=120, risk_score=50, risk_tier="high")
    drift = make_app(name="Drive helper")
    make_finding(drift, kind=FindingKind.DRIFT, extra_scopes=[DRIVE])
    make_import(source="slack", status=ImportStatus.FAILED, error="record 3, field ok: the page says ok: false")
    html = web_as(iam_admin).get(reverse("discovery:dashboard")).content.decode()
    assert "Findings that need a decision: 3" in html
    assert reverse("discovery:findings") + "?kind=shadow&amp;source=okta" in html
    top = html.split('id="top-apps"')[1].split("</table>")[0]
    assert top.index("Sheets wizard") < top.index("MeetingNotes AI") and "Drive helper" not in top
    assert "3 findings opened and 0 closed" in html
    imports = html.split('id="last-imports"')[1].split("</table>")[0]
    assert "Failed" in imports and "Never imported" in imports and "Succeeded" in imports
    assert "<svg" in html and "The same as a table" in html


# --- Forms: refused input comes back as it was typed ----------------------------------------------


def test_dismiss_without_reason_shows_the_page_again_with_the_error_beside_the_field(
    iam_admin: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    client = web_as(iam_admin)
    response = client.post(reverse("discovery:finding-dismiss", args=[shadow.pk]), {"dismiss-reason": "  "})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_dismiss-reason-error"' in html and 'aria-invalid="true"' in html
    response = client.post(
        reverse("discovery:finding-assign", args=[shadow.pk]), {"assign-owner": "nobody-by-that-name"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'value="nobody-by-that-name"' in html and 'id="id_assign-owner-error"' in html
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.OPEN and shadow.assigned_owner is None


@pytest.fixture
def workflows(roles: None) -> None:
    default_workflows_ensure()


def _claim_data(**over: Any) -> dict[str, Any]:
    data = {
        "owner": "",
        "name": "MeetingNotes AI",
        "kind": "chatbot",
        "vendor": "Notes Corp",
        "purpose": "Writes the minutes of the sales team's customer calls.",
        "environment": "production",
        "data_classifications": ["confidential"],
    }
    data.update(over)
    return data


def test_claim_form_refused_keeps_everything_typed(
    iam_admin: User, shadow: Finding, workflows: None, web_as: Callable[[User], Any]
) -> None:
    scope = make_scope("gcal:calendar.read", sensitivity="low")
    response = web_as(iam_admin).post(
        reverse("discovery:finding-claim", args=[shadow.pk]),
        _claim_data(owner="nobody-by-that-name", name="", requested_scopes=[str(scope.pk)]),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_owner-error"' in html and 'id="id_name-error"' in html
    assert "Writes the minutes of the sales team&#x27;s customer calls." in html
    assert 'value="nobody-by-that-name"' in html and 'value="Notes Corp"' in html
    assert f'value="{scope.pk}" id="scope-{scope.pk}" checked' in html
    assert 'value="confidential" id="id_data_classifications_2" checked' in html
    assert "Please fix the problems below" in html
    assert not Integration.objects.exists()
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.OPEN


def test_claim_form_refuses_a_name_or_vendor_longer_than_the_integration_keeps_beside_the_field(
    iam_admin: User, owner: User, shadow: Finding, workflows: None, web_as: Callable[[User], Any]
) -> None:
    long_name, long_vendor = "N" * 151, "V" * 121
    response = web_as(iam_admin).post(
        reverse("discovery:finding-claim", args=[shadow.pk]),
        _claim_data(owner=owner.username, name=long_name, vendor=long_vendor),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_name-error"' in html and 'id="id_vendor-error"' in html
    assert f'value="{long_name}"' in html
    assert not Integration.objects.exists()
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.OPEN


def test_claim_form_starts_from_what_the_provider_shows(
    iam_admin: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    calendar = make_scope("gcal:calendar.read", sensitivity="low")
    map_scope("google", CALENDAR, calendar)
    html = web_as(iam_admin).get(reverse("discovery:finding-claim", args=[shadow.pk])).content.decode()
    assert 'value="MeetingNotes AI"' in html and 'value="Notes Corp"' in html
    assert f'value="{calendar.pk}" id="scope-{calendar.pk}" checked' in html
    assert 'name="owner"' in html


# --- Decisions taken through the pages -------------------------------------------------------------


def test_iam_admin_claims_on_someones_behalf_and_the_registration_goes_for_approval(
    iam_admin: User, owner: User, shadow: Finding, workflows: None, web_as: Callable[[User], Any]
) -> None:
    calendar = make_scope("gcal:calendar.read", sensitivity="low")
    map_scope("google", CALENDAR, calendar)
    response = web_as(iam_admin).post(
        reverse("discovery:finding-claim", args=[shadow.pk]),
        _claim_data(owner=owner.username, requested_scopes=[str(calendar.pk)]),
    )
    integration = Integration.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("inventory:detail", args=[integration.pk])
    assert integration.business_owner == owner and integration.status == IntegrationStatus.PENDING
    assert list(integration.requested_scopes.all()) == [calendar]
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.CLAIMED and shadow.integration == integration
    html = web_as(iam_admin).get(reverse("discovery:finding", args=[shadow.pk])).content.decode()
    assert "discovery.finding_claimed" in html and 'id="h-actions"' not in html


def test_a_person_claims_an_app_they_connected_for_themselves(
    owner: User, shadow: Finding, workflows: None, web_as: Callable[[User], Any]
) -> None:
    calendar = make_scope("gcal:calendar.read", sensitivity="low")
    response = web_as(owner).post(
        reverse("discovery:finding-claim", args=[shadow.pk]), _claim_data(requested_scopes=[str(calendar.pk)])
    )
    assert response.status_code == 302
    integration = Integration.objects.get()
    assert integration.business_owner == owner
    assert DiscoveredConsent.objects.get(person=owner).response == ConsentResponse.CLAIMED
    mine = web_as(owner).get(reverse("discovery:mine")).content.decode()
    assert "Claimed: uses it for work" in mine


def test_a_person_answers_not_needed_on_their_page(
    owner: User, shadow: Finding, web_as: Callable[[User], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "enqueue", lambda task, *args, name: None)
    consent = DiscoveredConsent.objects.get(person=owner)
    response = web_as(owner).post(
        reverse("discovery:consent-not-needed", args=[consent.pk]), {f"c{consent.pk}-comment": "Tried it once."}
    )
    assert response.status_code == 302 and response["Location"] == reverse("discovery:mine")
    consent.refresh_from_db()
    assert consent.response == ConsentResponse.NOT_NEEDED
    remediation = Remediation.objects.get()
    assert remediation.consent == consent and remediation.reason == "Tried it once."
    html = web_as(owner).get(reverse("discovery:mine")).content.decode()
    assert "Not needed" in html and reverse("discovery:consent-not-needed", args=[consent.pk]) not in html


def test_a_refused_not_needed_comes_back_on_the_page_with_the_comment_as_typed(
    owner: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    consent = DiscoveredConsent.objects.get(person=owner)
    typed = "Tried it once. " * 150  # over the 2000 characters a comment may have
    response = web_as(owner).post(
        reverse("discovery:consent-not-needed", args=[consent.pk]), {f"c{consent.pk}-comment": typed}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="id_c{consent.pk}-comment-error"' in html
    assert typed.strip() in html
    assert "<details open><summary>Not needed" in html
    consent.refresh_from_db()
    assert consent.response == ConsentResponse.PENDING
    assert not Remediation.objects.exists()


def test_iam_admin_assigns_revokes_and_dismisses_from_the_finding_page(
    iam_admin: User, owner: User, shadow: Finding, web_as: Callable[[User], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "enqueue", lambda task, *args, name: None)
    client = web_as(iam_admin)
    url = reverse("discovery:finding", args=[shadow.pk])
    response = client.post(reverse("discovery:finding-assign", args=[shadow.pk]), {"assign-owner": owner.username})
    assert response.status_code == 302 and response["Location"] == url
    shadow.refresh_from_db()
    assert shadow.assigned_owner == owner
    consent = DiscoveredConsent.objects.get(person=owner)
    response = client.post(
        reverse("discovery:finding-revoke", args=[shadow.pk]),
        {"revoke-reason": "Not for work.", "revoke-consent": str(consent.pk)},
    )
    assert response.status_code == 302
    assert Remediation.objects.get().consent == consent
    response = client.post(reverse("discovery:finding-dismiss", args=[shadow.pk]), {"dismiss-reason": "Known tool."})
    assert response.status_code == 302
    shadow.refresh_from_db()
    assert shadow.status == FindingStatus.DISMISSED and shadow.resolution == "Known tool."
    html = client.get(url).content.decode()
    assert "Known tool." in html and "Not for work." in html and "DELETE" in html


def test_iam_admin_keeps_the_scope_mappings_on_their_page(
    iam_admin: User, shadow: Finding, web_as: Callable[[User], Any]
) -> None:
    calendar = make_scope("gcal:calendar.read", sensitivity="low")
    client = web_as(iam_admin)
    prefilled = client.get(reverse("discovery:scope-mappings"), {"source": "google", "provider_scope": CALENDAR})
    assert f'value="{CALENDAR}"' in prefilled.content.decode()
    refused = client.post(reverse("discovery:scope-mappings"), {"source": "google", "provider_scope": CALENDAR})
    assert refused.status_code == 400 and 'id="id_scope-error"' in refused.content.decode()
    assert f'value="{CALENDAR}"' in refused.content.decode()
    response = client.post(
        reverse("discovery:scope-mappings"),
        {"source": "google", "provider_scope": CALENDAR, "scope": str(calendar.pk)},
    )
    assert response.status_code == 302
    mapping = ScopeMapping.objects.get()
    assert mapping.scope == calendar
    detail = client.get(reverse("discovery:finding", args=[shadow.pk])).content.decode()
    assert "gcal:calendar.read" in detail
    client.post(reverse("discovery:scope-mapping-delete", args=[mapping.pk]))
    assert not ScopeMapping.objects.exists()
    assert AuditEvent.objects.filter(action="discovery.scope_mapping_deleted").count() == 1


# --- Uploads -----------------------------------------------------------------------------------------


GOOGLE_PAGE = (
    b'{"kind": "admin#directory#tokenList", "items": [{"kind": "admin#directory#token", "clientId": "1-x.apps.'
    b'googleusercontent.com", "displayText": "Uploaded AI", "scopes": ["https://www.googleapis.com/auth/drive"], '
    b'"userKey": "owner@example.com", "anonymous": false, "nativeApp": false}]}'
)


def test_upload_without_a_file_or_source_names_the_fields_and_keeps_the_rest(
    iam_admin: User, web_as: Callable[[User], Any]
) -> None:
    response = web_as(iam_admin).post(reverse("discovery:imports"), {"source": "", "tenant": "example.com"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_file-error"' in html and 'id="id_source-error"' in html
    assert 'value="example.com"' in html and "The file was not accepted" in html
    assert not DiscoveryImport.objects.exists()


@override_settings(DISCOVERY_UPLOAD_MAX_BYTES=100)
def test_upload_over_the_limit_is_refused_beside_the_file_field(
    iam_admin: User, web_as: Callable[[User], Any], tmp_path: Any
) -> None:
    with override_settings(DISCOVERY_SPOOL_DIR=tmp_path):
        response = web_as(iam_admin).post(
            reverse("discovery:imports"),
            {"source": "google", "tenant": "example.com", "complete": "on", "file": _upload(GOOGLE_PAGE)},
        )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_file-error"' in html and 'value="example.com"' in html
    assert not DiscoveryImport.objects.exists()
    assert not list(tmp_path.iterdir())


def _upload(content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("tokens.json", content, content_type="application/json")


def test_upload_is_queued_and_its_page_shows_what_it_found(
    iam_admin: User, owner: User, web_as: Callable[[User], Any], tmp_path: Any
) -> None:
    from inventory.discovery import importer

    client = web_as(iam_admin)
    with override_settings(DISCOVERY_SPOOL_DIR=tmp_path):
        response = client.post(
            reverse("discovery:imports"),
            {"source": "google", "tenant": "example.com", "complete": "on", "file": _upload(GOOGLE_PAGE)},
        )
        imp = DiscoveryImport.objects.get()
        assert response.status_code == 302 and response["Location"] == reverse("discovery:import", args=[imp.pk])
        assert imp.status == ImportStatus.QUEUED and imp.started_by == iam_admin and imp.file_name == "tokens.json"
        importer.import_run(imp.pk)
    html = client.get(reverse("discovery:import", args=[imp.pk])).content.decode()
    assert "Succeeded" in html and "Uploaded AI" in html
    assert "Uploaded AI" in client.get(reverse("discovery:findings")).content.decode()


def test_only_iam_admins_upload(
    auditor: User, reviewer: User, owner: User, web_as: Callable[[User], Any], tmp_path: Any
) -> None:
    data = {"source": "google", "tenant": "", "complete": "on"}
    with override_settings(DISCOVERY_SPOOL_DIR=tmp_path):
        assert (
            web_as(reviewer).post(reverse("discovery:imports"), {**data, "file": _upload(GOOGLE_PAGE)}).status_code
            == 403
        )
        assert (
            web_as(auditor).post(reverse("discovery:imports"), {**data, "file": _upload(GOOGLE_PAGE)}).status_code
            == 403
        )
        assert (
            web_as(owner).post(reverse("discovery:imports"), {**data, "file": _upload(GOOGLE_PAGE)}).status_code == 404
        )
    assert not DiscoveryImport.objects.exists()


def test_a_failed_import_names_the_record_and_field(iam_admin: User, web_as: Callable[[User], Any]) -> None:
    imp = make_import(
        status=ImportStatus.FAILED, error="must be a list of strings", error_record=12, error_field="scopes"
    )
    html = web_as(iam_admin).get(reverse("discovery:import", args=[imp.pk])).content.decode()
    assert "Nothing was imported" in html and "Record 12" in html and "<code>scopes</code>" in html
