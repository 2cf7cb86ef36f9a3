"""Discovery over the REST API: who reads and who acts (IAM admins act, reviewers and auditors
read, a person who consented sees that app and only their own consent, anyone else 404s), the
list filters, fixed query counts, problem details naming the field at fault, Idempotency-Key
replays, and the upload that answers 202 with the queued import."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from approvals.models import AccessRequest
from governance.actors import Actor
from governance.models import AuditEvent, User
from inventory import services as inventory
from inventory.discovery import importer
from inventory.discovery.models import (
    ConsentType,
    DiscoveredApp,
    DiscoveryImport,
    Finding,
    FindingKind,
    FindingStatus,
    ImportStatus,
    Remediation,
    ScopeMapping,
)
from inventory.models import Integration, Scope
from tests.discovery.factories import make_app, make_consent, make_finding, make_import

pytestmark = pytest.mark.django_db

API = "/api/v1/discovery"
DRIVE = "https://www.googleapis.com/auth/drive.readonly"
CALENDAR = "https://www.googleapis.com/auth/calendar.readonly"


@pytest.fixture(autouse=True)
def spool(settings: Any, tmp_path: Path) -> Path:
    """Uploads wait in a folder of the test's own."""
    folder = tmp_path / "spool"
    settings.DISCOVERY_SPOOL_DIR = folder
    return folder


@pytest.fixture
def drive_scope(db: Any) -> Scope:
    """A catalog scope a provider's scope can map to."""
    keeper = User.objects.create(username="catalog-keeper", is_active=False)
    actor = Actor.system(on_behalf_of=keeper)
    system = inventory.resource_system_save(actor=actor, values={"code": "gdrive", "name": "Google Drive"})
    return inventory.scope_save(
        actor=actor, system=system, values={"name": "files.read", "sensitivity": "high", "access": "read"}
    )


@pytest.fixture
def world(owner: User, iam_admin: User, drive_scope: Scope) -> dict[str, Any]:
    """An import that found a shadow app ``owner`` and one unmatched person consented to, and a
    mapping of one of its scopes."""
    imp = make_import(started_by=iam_admin)
    app = make_app(imp=imp, scopes=(CALENDAR, DRIVE))
    mine = make_consent(app, person=owner, grant_ids=("tok-1",))
    theirs = make_consent(app, person_key="stranger@example.com")
    finding = make_finding(app, imp=imp)
    mapping = ScopeMapping.objects.create(source="google", provider_scope=DRIVE, scope=drive_scope)
    return {"import": imp, "app": app, "finding": finding, "mine": mine, "theirs": theirs, "mapping": mapping}


def _reads(world: dict[str, Any]) -> list[str]:
    finding = world["finding"].pk
    return [
        f"{API}/imports/",
        f"{API}/imports/{world['import'].pk}/",
        f"{API}/findings/",
        f"{API}/findings/{finding}/",
        f"{API}/findings/{finding}/consents/",
        f"{API}/scope-mappings/",
        f"{API}/scope-mappings/{world['mapping'].pk}/",
    ]


ACTIONS: dict[str, dict[str, Any]] = {
    "claim": {},
    "dismiss": {"reason": "Known tool"},
    "revoke": {"reason": "Not allowed here"},
    "assign": {"owner": "owner"},
    "sanction": {},
    "review": {},
}


def _upload(client: APIClient, content: bytes = b"{}", **fields: Any) -> Any:
    body = {"source": "google", "tenant": "example.com", "complete": "true", **fields}
    if "file" not in fields:
        body["file"] = SimpleUploadedFile("tokens.json", content, content_type="application/json")
    return client.post(f"{API}/imports/", {k: v for k, v in body.items() if v is not None}, format="multipart")


def _problem(response: Any, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert field in problem["errors"], problem
    return problem


# --- Who reads, who acts -----------------------------------------------------------------------


def test_unauthenticated_calls_get_401_problem_details(world: dict[str, Any], api_client: APIClient) -> None:
    for path in _reads(world):
        response = api_client.get(path)
        assert response.status_code == 401, path
        assert response["Content-Type"].startswith("application/problem+json")
    for name, body in ACTIONS.items():
        assert api_client.post(f"{API}/findings/{world['finding'].pk}/{name}/", body, format="json").status_code == 401
    assert _upload(api_client).status_code == 401
    assert DiscoveryImport.objects.count() == 1


def test_iam_admin_reads_every_endpoint(world: dict[str, Any], iam_admin: User, api_as: Callable[..., Any]) -> None:
    api = api_as(iam_admin)
    for path in _reads(world):
        assert api.get(path).status_code == 200, path
    finding = api.get(f"{API}/findings/{world['finding'].pk}/").json()
    assert finding["type"] == "shadow"
    assert finding["status"] == "open"
    assert finding["app_name"] == "MeetingNotes AI"
    assert finding["discovered_app"]["scopes"] == [CALENDAR, DRIVE]
    assert finding["people_affected"] == 2
    rows = {row["provider_scope"]: row for row in finding["scopes"]}
    assert rows[DRIVE]["scope"] == "gdrive:files.read"
    assert rows[CALENDAR]["scope"] is None
    assert rows[CALENDAR]["estimated"] is True
    consents = api.get(f"{API}/findings/{world['finding'].pk}/consents/").json()
    assert {c["person_key"] for c in consents["results"]} == {"owner@example.com", "stranger@example.com"}
    assert {c["person"] for c in consents["results"]} == {"owner", None}
    imp = api.get(f"{API}/imports/{world['import'].pk}/").json()
    assert imp["started_by"] == iam_admin.username
    assert imp["source"] == "google"
    mapping = api.get(f"{API}/scope-mappings/").json()["results"]
    assert mapping == [
        {
            "id": world["mapping"].pk,
            "source": "google",
            "provider_scope": DRIVE,
            "scope": "gdrive:files.read",
            "updated_by": None,
            "updated_at": mapping[0]["updated_at"],
        }
    ]


def test_auditor_reads_everything_and_every_action_is_403(
    world: dict[str, Any], auditor: User, api_as: Callable[..., Any]
) -> None:
    api = api_as(auditor)
    for path in _reads(world):
        assert api.get(path).status_code == 200, path
    finding = world["finding"]
    for name, body in ACTIONS.items():
        response = api.post(f"{API}/findings/{finding.pk}/{name}/", body, format="json")
        assert response.status_code == 403, name
        assert response["Content-Type"].startswith("application/problem+json")
    assert _upload(api).status_code == 403
    body = {"source": "google", "provider_scope": CALENDAR, "scope": "gdrive:files.read"}
    assert api.post(f"{API}/scope-mappings/", body, format="json").status_code == 403
    assert api.delete(f"{API}/scope-mappings/{world['mapping'].pk}/").status_code == 403
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN
    assert finding.assigned_owner is None
    assert DiscoveryImport.objects.count() == 1
    assert ScopeMapping.objects.count() == 1
    assert not Remediation.objects.exists()


def test_reviewer_reads_everything_and_may_not_act(
    world: dict[str, Any], reviewer: User, api_as: Callable[..., Any]
) -> None:
    api = api_as(reviewer)
    for path in _reads(world):
        assert api.get(path).status_code == 200, path
    finding = world["finding"]
    for name, body in ACTIONS.items():
        response = api.post(f"{API}/findings/{finding.pk}/{name}/", body, format="json")
        assert response.status_code == 403, (name, response.content[:300])
    assert _upload(api).status_code == 403
    body = {"source": "google", "provider_scope": CALENDAR, "scope": "gdrive:files.read"}
    assert api.post(f"{API}/scope-mappings/", body, format="json").status_code == 403
    assert api.delete(f"{API}/scope-mappings/{world['mapping'].pk}/").status_code == 403
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN
    assert DiscoveryImport.objects.count() == 1
    assert ScopeMapping.objects.count() == 1


def test_outsider_sees_nothing_and_gets_404_on_every_object(
    world: dict[str, Any], outsider: User, api_as: Callable[..., Any]
) -> None:
    api = api_as(outsider)
    for path in (f"{API}/imports/", f"{API}/findings/", f"{API}/scope-mappings/"):
        listed = api.get(path)
        assert listed.status_code == 200
        assert listed.json()["count"] == 0, path
    for path in _reads(world):
        if not path.endswith(("/imports/", "/findings/", "/scope-mappings/")):
            response = api.get(path)
            assert response.status_code == 404, path
            assert response["Content-Type"].startswith("application/problem+json")
    finding = world["finding"]
    for name, body in ACTIONS.items():
        assert api.post(f"{API}/findings/{finding.pk}/{name}/", body, format="json").status_code == 404, name
    assert api.delete(f"{API}/scope-mappings/{world['mapping'].pk}/").status_code == 404
    assert _upload(api).status_code == 403
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN
    assert DiscoveryImport.objects.count() == 1


def test_a_person_who_consented_sees_the_finding_and_only_their_own_consent(
    world: dict[str, Any], owner: User, api_as: Callable[..., Any]
) -> None:
    api = api_as(owner)
    finding = world["finding"]
    assert [row["id"] for row in api.get(f"{API}/findings/").json()["results"]] == [finding.pk]
    assert api.get(f"{API}/findings/{finding.pk}/").status_code == 200
    consents = api.get(f"{API}/findings/{finding.pk}/consents/").json()["results"]
    assert [c["person"] for c in consents] == ["owner"]
    # Imports and mappings are IAM's business; acting on the finding beyond a claim is IAM's too.
    assert api.get(f"{API}/imports/").json()["count"] == 0
    assert api.get(f"{API}/imports/{world['import'].pk}/").status_code == 404
    assert api.post(f"{API}/findings/{finding.pk}/dismiss/", {"reason": "x"}, format="json").status_code == 403


# --- Actions -----------------------------------------------------------------------------------


def test_iam_admin_claims_on_someones_behalf_and_the_integration_enters_approval(
    world: dict[str, Any], iam_admin: User, owner: User, api_as: Callable[..., Any]
) -> None:
    finding = world["finding"]
    response = api_as(iam_admin).post(
        f"{API}/findings/{finding.pk}/claim/", {"owner": "owner", "purpose": "Meeting notes."}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "claimed"
    integration = Integration.objects.get(pk=body["integration"])
    assert integration.business_owner == owner
    assert integration.purpose == "Meeting notes."
    assert integration.status == "pending"
    assert [scope.code for scope in integration.requested_scopes.all()] == ["gdrive:files.read"]
    assert AuditEvent.objects.filter(action="discovery.finding_claimed", target_id=str(finding.pk)).exists()


def test_a_person_who_consented_claims_the_app_for_themselves(
    world: dict[str, Any], owner: User, api_as: Callable[..., Any]
) -> None:
    finding = world["finding"]
    response = api_as(owner).post(f"{API}/findings/{finding.pk}/claim/", {"submit": False}, format="json")
    assert response.status_code == 200, response.json()
    integration = Integration.objects.get(pk=response.json()["integration"])
    assert integration.business_owner == owner
    assert integration.status == "draft"


def test_dismiss_needs_a_reason_named_in_the_problem(
    world: dict[str, Any], iam_admin: User, api_as: Callable[..., Any]
) -> None:
    api = api_as(iam_admin)
    finding = world["finding"]
    _problem(api.post(f"{API}/findings/{finding.pk}/dismiss/", {}, format="json"), 400, "reason")
    _problem(api.post(f"{API}/findings/{finding.pk}/dismiss/", {"reason": "  "}, format="json"), 400, "reason")
    _problem(api.post(f"{API}/findings/{finding.pk}/dismiss/", {"reason": 7}, format="json"), 400, "reason")
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN
    response = api.post(f"{API}/findings/{finding.pk}/dismiss/", {"reason": "Approved by legal"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "dismissed"


def test_revoke_records_the_provider_calls_and_answers_the_finding_with_them(
    world: dict[str, Any], iam_admin: User, api_as: Callable[..., Any]
) -> None:
    finding = world["finding"]
    response = api_as(iam_admin).post(
        f"{API}/findings/{finding.pk}/revoke/", {"reason": "Unapproved data access"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "revoke_requested"
    [remediation] = body["remediations"]
    assert remediation["reason"] == "Unapproved data access"
    assert remediation["requested_by"] == iam_admin.username
    assert remediation["status"] == "requested"
    assert any(
        call["method"] == "DELETE" and world["app"].app_key in call["url"] for call in remediation["provider_calls"]
    )


def test_revoke_of_one_consent_names_it_and_a_foreign_consent_is_a_422(
    world: dict[str, Any], iam_admin: User, api_as: Callable[..., Any]
) -> None:
    api = api_as(iam_admin)
    finding = world["finding"]
    other = make_consent(make_app(name="Other app"), person_key="x@example.com")
    path = f"{API}/findings/{finding.pk}/revoke/"
    _problem(api.post(path, {"reason": "r", "consent": other.pk}, format="json"), 422, "consent")
    _problem(api.post(path, {"reason": "r", "consent": "7"}, format="json"), 400, "consent")
    assert not Remediation.objects.exists()
    response = api.post(path, {"reason": "Left the team", "consent": world["mine"].pk}, format="json")
    assert response.status_code == 200, response.json()
    [remediation] = response.json()["remediations"]
    assert remediation["consent"] == world["mine"].pk
    assert remediation["person"] == "owner@example.com"


def test_assign_names_a_person_and_an_unknown_username_is_a_422(
    world: dict[str, Any], iam_admin: User, owner: User, api_as: Callable[..., Any]
) -> None:
    api = api_as(iam_admin)
    finding = world["finding"]
    _problem(api.post(f"{API}/findings/{finding.pk}/assign/", {"owner": "nobody"}, format="json"), 422, "owner")
    _problem(api.post(f"{API}/findings/{finding.pk}/assign/", {}, format="json"), 400, "owner")
    response = api.post(f"{API}/findings/{finding.pk}/assign/", {"owner": "owner"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["assigned_owner"] == "owner"


def test_sanction_registers_an_admin_consented_app_once_with_the_admin_as_owner(
    iam_admin: User, api_as: Callable[..., Any], drive_scope: Scope
) -> None:
    ScopeMapping.objects.create(source="google", provider_scope=DRIVE, scope=drive_scope)
    app = make_app(name="Company Copilot", scopes=(DRIVE,))
    make_consent(app, consent_type=ConsentType.ADMIN, person_key="*")
    finding = make_finding(app)
    response = api_as(iam_admin).post(f"{API}/findings/{finding.pk}/sanction/", {}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "sanctioned"
    assert Integration.objects.get(pk=body["integration"]).business_owner == iam_admin


def test_review_of_a_drift_opens_a_scope_expansion(
    iam_admin: User, owner: User, api_as: Callable[..., Any], drive_scope: Scope
) -> None:
    integration = inventory.integration_register(
        actor=owner,
        values={"name": "Notes", "kind": "agent", "purpose": "Notes.", "business_owner": owner},
        submit=False,
    )
    # Approved earlier (what approvals does): only an active integration's scopes are reviewed.
    system = Actor.system(on_behalf_of=owner)
    for step in ("pending", "active"):
        inventory.integration_transition(actor=system, integration=integration, to_status=step)
    app = make_app(name="Notes", scopes=(DRIVE,), integration=integration)
    ScopeMapping.objects.create(source="google", provider_scope=DRIVE, scope=drive_scope)
    finding = make_finding(app, kind=FindingKind.DRIFT, extra_scopes=[DRIVE])
    response = api_as(iam_admin).post(f"{API}/findings/{finding.pk}/review/", format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "review_opened"
    assert drive_scope in integration.requested_scopes.all()
    assert AccessRequest.objects.filter(integration=integration, requested_scopes=drive_scope).exists()


# --- Filters and query counts ------------------------------------------------------------------


def test_findings_filter_by_source_type_status_risk_tier_and_person(
    owner: User, iam_admin: User, api_as: Callable[..., Any]
) -> None:
    google = make_app(name="Google thing")
    make_consent(google, person=owner)
    slack = make_app(source="slack", app_key="A1", name="Slack thing")
    make_consent(slack, person_key="someone@example.com")
    shadow = make_finding(google, risk_tier="high", risk_score=40)
    drift = make_finding(slack, kind=FindingKind.DRIFT, status=FindingStatus.DISMISSED, extra_scopes=["chat:write"])
    api = api_as(iam_admin)

    def ids(query: str) -> set[int]:
        response = api.get(f"{API}/findings/?{query}")
        assert response.status_code == 200, response.content[:300]
        return {row["id"] for row in response.json()["results"]}

    assert ids("") == {shadow.pk, drift.pk}
    assert ids("source=google") == {shadow.pk}
    assert ids("source=slack") == {drift.pk}
    assert ids("type=drift") == {drift.pk}
    assert ids("type=gone") == set()
    assert ids("status=open") == {shadow.pk}
    assert ids("status=active") == {shadow.pk}
    assert ids("status=closed") == {drift.pk}
    assert ids("risk_tier=high") == {shadow.pk}
    assert ids("person=owner") == {shadow.pk}
    assert ids("person=SOMEONE@example.com") == {drift.pk}
    assert ids("person=nobody") == set()
    assert ids("q=slack") == {drift.pk}
    assert ids("people_min=1&type=shadow") == {shadow.pk}
    ordered = api.get(f"{API}/findings/?ordering=-risk").json()["results"]
    assert [row["id"] for row in ordered] == [shadow.pk, drift.pk]
    for query, field in (("type=ghost", "type"), ("status=maybe", "status"), ("people_min=-1", "people_min")):
        _problem(api.get(f"{API}/findings/?{query}"), 400, field)


def test_imports_and_mappings_filter_by_source(iam_admin: User, api_as: Callable[..., Any], drive_scope: Scope) -> None:
    google = make_import(source="google")
    okta = make_import(source="okta", status=ImportStatus.FAILED, error="record 3, field scopeId: missing")
    ScopeMapping.objects.create(source="google", provider_scope=DRIVE, scope=drive_scope)
    ScopeMapping.objects.create(source="okta", provider_scope="okta.users.read", scope=drive_scope)
    api = api_as(iam_admin)
    assert [row["id"] for row in api.get(f"{API}/imports/?source=okta").json()["results"]] == [okta.pk]
    assert [row["id"] for row in api.get(f"{API}/imports/?status=succeeded").json()["results"]] == [google.pk]
    mappings = api.get(f"{API}/scope-mappings/?source=okta").json()["results"]
    assert [row["provider_scope"] for row in mappings] == ["okta.users.read"]
    _problem(api.get(f"{API}/imports/?source=myspace"), 400, "source")


def _grow(count: int, people: list[User], tag: str, drive_scope: Scope) -> None:
    """``count`` more imports, apps with two consents each, findings (half of them assigned,
    half about a registered integration) and scope mappings."""
    owner = people[0]
    for n in range(count):
        imp = make_import(started_by=people[1])
        integration = None
        if n % 2:
            integration = inventory.integration_register(
                actor=owner,
                values={"name": f"App {tag}{n}", "kind": "agent", "purpose": "p", "business_owner": owner},
                submit=False,
            )
        app = make_app(imp=imp, name=f"App {tag}{n}", integration=integration)
        make_consent(app, person=owner)
        make_consent(app, person_key=f"p{tag}{n}@example.com")
        make_finding(app, imp=imp, assigned_owner=people[1] if n % 2 else None)
        ScopeMapping.objects.create(
            source="google", provider_scope=f"scope-{tag}{n}", scope=drive_scope, updated_by=people[1]
        )


@pytest.mark.parametrize("path", ["imports", "findings", "scope-mappings", "findings/{finding}/consents"])
def test_lists_run_the_same_queries_for_few_rows_and_many(
    path: str, owner: User, iam_admin: User, api_as: Callable[..., Any], drive_scope: Scope
) -> None:
    api = api_as(iam_admin)
    _grow(2, [owner, iam_admin], "a", drive_scope)
    finding = Finding.objects.order_by("id").first()
    assert finding is not None
    url = f"{API}/{path.format(finding=finding.pk)}/"
    api.get(url)  # caches that fill once per process (roles, content types)
    with CaptureQueriesContext(connection) as small:
        few = api.get(url).json()["results"]
    _grow(12, [owner, iam_admin], "b", drive_scope)
    # The consents of one finding grow with more people consenting to its app.
    for n in range(12):
        make_consent(finding.app, person_key=f"more{n}@example.com")  # type: ignore[arg-type]
    with CaptureQueriesContext(connection) as large:
        many = api.get(url).json()["results"]
    assert len(many) > len(few) >= 2
    assert len(large.captured_queries) == len(small.captured_queries), path


def test_finding_detail_runs_the_same_queries_whatever_its_scopes_and_revocations(
    world: dict[str, Any], iam_admin: User, api_as: Callable[..., Any]
) -> None:
    api = api_as(iam_admin)
    finding = world["finding"]
    url = f"{API}/findings/{finding.pk}/"
    api.get(url)
    with CaptureQueriesContext(connection) as small:
        api.get(url)
    DiscoveredApp.objects.filter(pk=world["app"].pk).update(scopes=[CALENDAR, DRIVE, *(f"s{n}" for n in range(20))])
    for n in range(5):
        Remediation.objects.create(finding=finding, consent=world["mine"], reason=f"r{n}", requested_by=iam_admin)
    with CaptureQueriesContext(connection) as large:
        body = api.get(url).json()
    assert len(body["remediations"]) == 5
    assert len(body["scopes"]) == 22
    assert len(large.captured_queries) == len(small.captured_queries)


# --- Uploads -----------------------------------------------------------------------------------

GOOGLE_PAGE = (
    b'{"kind":"admin#directory#tokenList","items":[{"kind":"admin#directory#token",'
    b'"clientId":"123-abc.apps.googleusercontent.com","displayText":"MeetingNotes AI",'
    b'"scopes":["https://www.googleapis.com/auth/drive.readonly"],"userKey":"owner@example.com",'
    b'"anonymous":false,"nativeApp":false}]}'
)


def test_upload_answers_202_with_the_queued_import_and_the_worker_imports_it(
    owner: User, iam_admin: User, api_as: Callable[..., Any], spool: Path
) -> None:
    api = api_as(iam_admin)
    response = _upload(api, GOOGLE_PAGE, tenant="example.com", complete="false")
    assert response.status_code == 202, response.content[:500]
    body = response.json()
    assert body["status"] == "queued"
    assert body["method"] == "upload"
    assert body["source"] == "google"
    assert body["tenant"] == "example.com"
    assert body["complete"] is False
    assert body["file_name"] == "tokens.json"
    assert body["file_bytes"] == len(GOOGLE_PAGE)
    assert body["file_sha256"] == hashlib.sha256(GOOGLE_PAGE).hexdigest()
    assert body["started_by"] == iam_admin.username
    assert AuditEvent.objects.filter(action="discovery.import_queued", target_id=str(body["id"])).exists()
    importer.import_run(body["id"])
    done = api.get(f"{API}/imports/{body['id']}/").json()
    assert done["status"] == "succeeded", done
    assert done["records"] == 1
    assert not any(spool.rglob("*.*"))
    [finding] = api.get(f"{API}/findings/?type=shadow").json()["results"]
    assert finding["app_name"] == "MeetingNotes AI"


def test_a_malformed_record_fails_the_import_naming_the_record_and_field(
    iam_admin: User, api_as: Callable[..., Any]
) -> None:
    api = api_as(iam_admin)
    bad = GOOGLE_PAGE.replace(b'"scopes":["https://www.googleapis.com/auth/drive.readonly"]', b'"scopes":"all"')
    response = _upload(api, bad)
    assert response.status_code == 202
    importer.import_run(response.json()["id"])
    failed = api.get(f"{API}/imports/{response.json()['id']}/").json()
    assert failed["status"] == "failed"
    assert failed["error_record"] == 1
    assert failed["error_field"] == "scopes"
    assert api.get(f"{API}/findings/").json()["count"] == 0


def test_upload_problems_name_the_field_at_fault(
    iam_admin: User, api_as: Callable[..., Any], settings: Any, spool: Path
) -> None:
    api = api_as(iam_admin)
    _problem(_upload(api, source="myspace"), 400, "source")
    _problem(_upload(api, file=None), 400, "file")
    _problem(_upload(api, b""), 400, "file")
    _problem(_upload(api, complete="yes"), 400, "complete")
    _problem(_upload(api, tenant="a\nb"), 400, "tenant")
    settings.DISCOVERY_UPLOAD_MAX_BYTES = 10
    too_big = _upload(api, GOOGLE_PAGE)
    assert 400 <= too_big.status_code < 500
    _problem(too_big, too_big.status_code, "file")
    assert not DiscoveryImport.objects.exists()
    assert not any(spool.rglob("*.*"))
    as_json = api.post(f"{API}/imports/", {"source": "google"}, format="json")
    assert as_json.status_code == 415


def test_scope_mapping_is_created_then_replaced_and_an_unknown_scope_is_a_422(
    iam_admin: User, api_as: Callable[..., Any], drive_scope: Scope
) -> None:
    api = api_as(iam_admin)
    body = {"source": "google", "provider_scope": DRIVE, "scope": "gdrive:files.read"}
    created = api.post(f"{API}/scope-mappings/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["updated_by"] == iam_admin.username
    assert api.post(f"{API}/scope-mappings/", body, format="json").status_code == 200
    assert ScopeMapping.objects.count() == 1
    _problem(api.post(f"{API}/scope-mappings/", {**body, "scope": "nope:nothing"}, format="json"), 422, "scope")
    _problem(api.post(f"{API}/scope-mappings/", {**body, "source": "aol"}, format="json"), 400, "source")
    deleted = api.delete(f"{API}/scope-mappings/{created.json()['id']}/")
    assert deleted.status_code == 204
    assert not ScopeMapping.objects.exists()


# --- Idempotency-Key ---------------------------------------------------------------------------


def test_a_claim_replayed_with_its_idempotency_key_answers_the_same_and_claims_once(
    world: dict[str, Any], iam_admin: User, token_client: Callable[..., APIClient]
) -> None:
    api = token_client(iam_admin)
    path = f"{API}/findings/{world['finding'].pk}/claim/"
    first = api.post(path, {"owner": "owner"}, format="json", HTTP_IDEMPOTENCY_KEY="claim-1")
    again = api.post(path, {"owner": "owner"}, format="json", HTTP_IDEMPOTENCY_KEY="claim-1")
    assert first.status_code == again.status_code == 200, first.content[:300]
    assert again["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()
    assert Integration.objects.count() == 1
    assert AuditEvent.objects.filter(action="discovery.finding_claimed").count() == 1
    # Without the key, claiming a claimed finding again is refused, not done twice.
    assert api.post(path, {"owner": "owner"}, format="json").status_code in (400, 409)
    assert Integration.objects.count() == 1


def test_a_revoke_replayed_with_its_idempotency_key_answers_the_same_and_revokes_once(
    world: dict[str, Any], iam_admin: User, token_client: Callable[..., APIClient]
) -> None:
    api = token_client(iam_admin)
    path = f"{API}/findings/{world['finding'].pk}/revoke/"
    first = api.post(path, {"reason": "Unapproved"}, format="json", HTTP_IDEMPOTENCY_KEY="revoke-1")
    again = api.post(path, {"reason": "Unapproved"}, format="json", HTTP_IDEMPOTENCY_KEY="revoke-1")
    assert first.status_code == again.status_code == 200, first.content[:300]
    assert again["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()
    assert Remediation.objects.count() == 1
    assert AuditEvent.objects.filter(action="discovery.revoke_requested").count() == 1
    other = api.post(path, {"reason": "Another reason"}, format="json", HTTP_IDEMPOTENCY_KEY="revoke-1")
    assert other.status_code == 422


def test_an_upload_replayed_with_its_idempotency_key_queues_one_import(
    iam_admin: User, token_client: Callable[..., APIClient]
) -> None:
    api = token_client(iam_admin)
    boundary_free = {"source": "google", "tenant": "example.com", "complete": "true"}

    def send() -> Any:
        upload = SimpleUploadedFile("tokens.json", GOOGLE_PAGE, content_type="application/json")
        return api.post(
            f"{API}/imports/", {**boundary_free, "file": upload}, format="multipart", HTTP_IDEMPOTENCY_KEY="up-1"
        )

    first, again = send(), send()
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert DiscoveryImport.objects.count() == 1
