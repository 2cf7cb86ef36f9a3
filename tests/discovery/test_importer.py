"""The importer: uploads only by IAM admins within the size limit; an import is all or nothing,
recorded with its counts, idempotent, matches people, merges duplicate records and marks what a
complete listing no longer mentions."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test import override_settings

from governance import queue
from governance.actors import Actor
from governance.exceptions import ValidationFailed
from governance.models import AuditEvent, User
from governance.roles import Role
from inventory.discovery import importer, tasks, writing
from inventory.discovery.choices import ConsentType, ImportMethod, ImportStatus
from inventory.discovery.consent_table import ConsentTable
from inventory.discovery.models import DiscoveredApp, DiscoveredConsent, DiscoveryImport, Finding
from inventory.discovery.records import RecordError
from tests.discovery.importing import (
    CALENDAR,
    DRIVE,
    GMAIL_SEND,
    discovery_rows,
    failing_after,
    google_tokens_file,
    numbered,
    queued_import,
    run,
)

pytestmark = pytest.mark.django_db

ADMIN_MAILER = {"name": "Mailer", "consent_type": ConsentType.ADMIN}


@pytest.fixture
def spool(tmp_path: Path) -> Any:
    folder = tmp_path / "spool"
    with override_settings(DISCOVERY_SPOOL_DIR=folder):
        yield folder


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[object, ...]]]:
    """The tasks queued once their transaction commits (the worker is not running here)."""
    calls: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr(queue, "enqueue", lambda task, *args, name: calls.append((task, args)))
    return calls


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


# --- Uploads ----------------------------------------------------------------------------------


def test_only_iam_admins_upload(owner: User, auditor: User, spool: Path) -> None:
    for person in (owner, auditor):
        with pytest.raises(PermissionDenied):
            importer.import_upload(
                actor=person, source="google", tenant="", uploaded=io.BytesIO(b"{}"), file_name="t.json"
            )
    assert not DiscoveryImport.objects.exists()
    assert not spool.exists() or not any(spool.iterdir())


def test_an_upload_over_the_size_limit_is_refused_on_the_file_field_and_nothing_is_kept(
    iam_admin: User, spool: Path
) -> None:
    with override_settings(DISCOVERY_UPLOAD_MAX_BYTES=1000), pytest.raises(ValidationFailed) as refused:
        importer.import_upload(
            actor=iam_admin, source="google", tenant="", uploaded=io.BytesIO(b" " * 1001), file_name="big.json"
        )
    assert "file" in refused.value.errors
    assert not DiscoveryImport.objects.exists()
    assert list(spool.iterdir()) == []


def test_an_unknown_source_is_refused_on_its_field(iam_admin: User, spool: Path) -> None:
    with pytest.raises(ValidationFailed) as refused:
        importer.import_upload(actor=iam_admin, source="myspace", tenant="", uploaded=io.BytesIO(b"{}"), file_name="x")
    assert "source" in refused.value.errors


def test_an_upload_is_spooled_queued_and_imported_by_the_worker(
    iam_admin: User,
    spool: Path,
    tmp_path: Path,
    queued: list[Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    data = google_tokens_file(
        tmp_path / "tokens.jsonl",
        {"ann@example.com": [{"clientId": "notes.apps", "displayText": "Notes AI", "scopes": [DRIVE]}]},
    )
    with django_capture_on_commit_callbacks(execute=True):
        imp = importer.import_upload(
            actor=iam_admin,
            source="google",
            tenant="example.com",
            uploaded=data.open("rb"),
            file_name="C:\\exports\\tokens.jsonl",
        )
    assert imp.status == ImportStatus.QUEUED
    assert (imp.file_name, imp.file_bytes, len(imp.file_sha256)) == ("tokens.jsonl", data.stat().st_size, 64)
    assert Path(imp.spool_path).read_bytes() == data.read_bytes()
    assert queued == [("inventory.discovery.tasks.import_run", (imp.pk,))]
    queued_event = _events("discovery.import_queued")[0]
    assert (queued_event.owner, queued_event.target_id) == (iam_admin, str(imp.pk))

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.import_run(imp.pk) == ImportStatus.SUCCEEDED
    imp.refresh_from_db()
    assert imp.status == ImportStatus.SUCCEEDED
    assert not Path(imp.spool_path).exists()
    assert DiscoveredApp.objects.get().name == "Notes AI"
    assert queued[-1] == ("inventory.discovery.tasks.digests_send", (imp.pk,))
    done = _events("discovery.imported")[0]
    assert (done.owner, done.actor_kind, (done.after or {})["counts"]["consents"]) == (iam_admin, "system", 1)

    # A retried task finds the import done and does nothing twice.
    assert importer.import_run(imp.pk).status == ImportStatus.SUCCEEDED
    assert len(_events("discovery.imported")) == 1


def test_a_lost_spool_file_fails_the_import_and_marks_nothing_absent(iam_admin: User, spool: Path) -> None:
    run(iam_admin, numbered([("notes.apps", "ann@example.com")]))
    imp = queued_import(iam_admin)
    imp.spool_path = str(spool / "gone.json")
    imp.save()
    importer.import_run(imp.pk)
    imp.refresh_from_db()
    assert (imp.status, imp.error_field) == (ImportStatus.FAILED, "file")
    assert DiscoveredConsent.objects.get().present


# --- What an import writes --------------------------------------------------------------------


def test_an_import_records_its_counts_and_matches_people_by_email_or_username(
    make_user: Callable[..., User], iam_admin: User
) -> None:
    ann = make_user("ann")
    bob = make_user("Bob.Smith")
    imp = run(
        iam_admin,
        numbered(
            [
                ("notes.apps", "ANN@Example.com", (DRIVE,)),
                ("notes.apps", "bob.smith", (DRIVE, CALENDAR)),
                ("notes.apps", "1234567", (DRIVE,)),
                ("mail.apps", "u-ann", (GMAIL_SEND,), {"person_email": "Ann@example.com"}),
                ("mail.apps", "*", (GMAIL_SEND,), ADMIN_MAILER),
            ]
        ),
    )
    assert imp.status == ImportStatus.SUCCEEDED
    assert imp.records == 5
    counts = imp.counts
    assert {key: counts[key] for key in ("records", "apps", "consents", "apps_new", "consents_new")} == {
        "records": 5,
        "apps": 2,
        "consents": 5,
        "apps_new": 2,
        "consents_new": 5,
    }
    assert (counts["consents_changed"], counts["people_matched"], counts["people_unmatched"]) == (0, 2, 1)
    people = dict(DiscoveredConsent.objects.values_list("person_key", "person__username"))
    assert people == {"ANN@Example.com": "ann", "bob.smith": "Bob.Smith", "1234567": None, "u-ann": "ann", "*": None}
    notes = DiscoveredApp.objects.get(app_key="notes.apps")
    assert (notes.scopes, notes.people_count, notes.admin_consent) == (sorted([DRIVE, CALENDAR]), 3, False)
    mailer = DiscoveredApp.objects.get(app_key="mail.apps")
    assert (mailer.people_count, mailer.admin_consent, mailer.name) == (1, True, "Mailer")
    assert bob.discovered_consents.get().scopes == sorted([DRIVE, CALENDAR])
    assert ann.discovered_consents.count() == 2


def test_the_records_of_one_app_and_person_are_merged_wherever_they_fall(
    iam_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writing, "CHUNK", 2)
    monkeypatch.setattr(writing, "CHUNK_MAX", 3)
    imp = run(
        iam_admin,
        numbered(
            [
                ("okta.app", "ann", ("openid",), {"grant_ids": ("g1",)}),
                ("okta.app", "ann", ("email",), {"grant_ids": ("g2",)}),
                ("okta.app", "ann", ("profile",), {"grant_ids": ("g3",)}),
                ("okta.app", "bob", ("openid",), {"grant_ids": ("g4",)}),
                ("other.app", "cat", ("openid",)),
                ("okta.app", "ann", ("okta.users.read",), {"grant_ids": ("g5",)}),
            ]
        ),
        source="okta",
    )
    ann = DiscoveredConsent.objects.get(person_key="ann")
    assert ann.scopes == sorted(["openid", "email", "profile", "okta.users.read"])
    assert ann.grant_ids == ["g1", "g2", "g3", "g5"]
    assert DiscoveredConsent.objects.count() == 3
    assert (imp.counts["consents"], imp.counts["consents_new"], imp.counts["records"]) == (3, 3, 6)


def test_reimporting_the_same_data_changes_nothing_but_last_seen_and_last_import(
    make_user: Callable[..., User], iam_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user("ann")
    monkeypatch.setattr(writing, "CHUNK", 3)
    data = numbered(
        [
            ("notes.apps", "ann@example.com", (DRIVE, CALENDAR)),
            ("notes.apps", "zed@example.com", (DRIVE,)),
            ("notes.apps", "zed@example.com", (CALENDAR,)),
            ("mail.apps", "ann@example.com", (GMAIL_SEND,)),
            ("mail.apps", "*", (GMAIL_SEND,), ADMIN_MAILER),
            ("notes.apps", "ann@example.com", (DRIVE,)),
        ]
    )
    first = run(iam_admin, data)
    before = discovery_rows()
    second = run(iam_admin, data)
    after = discovery_rows()
    moving = {"last_seen", "last_import", "last_import_id", "updated_at"}
    assert discovery_rows(without=moving) == {
        name: [{k: v for k, v in row.items() if k not in moving} for row in rows] for name, rows in before.items()
    }
    assert {row["last_import_id"] for row in after["consents"]} == {second.pk}
    assert {row["last_import_id"] for row in after["apps"]} == {second.pk}
    assert all(
        row["updated_at"] == old["updated_at"] for row, old in zip(after["findings"], before["findings"], strict=True)
    )
    assert before["findings"]
    assert (second.counts["consents_new"], second.counts["consents_changed"], second.counts["apps_new"]) == (0, 0, 0)
    assert second.counts["findings"] == {} and second.counts["closed"] == 0
    assert first.counts["findings"] == {"shadow": 2}


def test_a_changed_consent_is_counted_and_rewritten(iam_admin: User) -> None:
    run(iam_admin, numbered([("notes.apps", "ann@example.com", (DRIVE,)), ("notes.apps", "bob@example.com", (DRIVE,))]))
    imp = run(
        iam_admin,
        numbered([("notes.apps", "ann@example.com", (DRIVE, CALENDAR)), ("notes.apps", "bob@example.com", (DRIVE,))]),
    )
    assert (imp.counts["consents_changed"], imp.counts["consents_new"]) == (1, 0)
    assert DiscoveredConsent.objects.get(person_key="ann@example.com").scopes == sorted([DRIVE, CALENDAR])
    assert DiscoveredApp.objects.get().scopes == sorted([DRIVE, CALENDAR])


def test_a_complete_import_marks_what_it_no_longer_lists_absent_and_a_partial_one_does_not(iam_admin: User) -> None:
    run(
        iam_admin,
        numbered(
            [
                ("notes.apps", "ann@example.com", (DRIVE,)),
                ("notes.apps", "bob@example.com", (DRIVE, CALENDAR)),
                ("mail.apps", "ann@example.com", (GMAIL_SEND,)),
            ]
        ),
    )
    partial = run(iam_admin, numbered([("notes.apps", "ann@example.com", (DRIVE,))]), complete=False)
    assert partial.counts["apps_absent"] == partial.counts["consents_absent"] == 0
    assert DiscoveredConsent.objects.filter(present=True).count() == 3
    # A partial import adds to what the app showed: bob's calendar consent still stands.
    assert DiscoveredApp.objects.get(app_key="notes.apps").scopes == sorted([DRIVE, CALENDAR])

    complete = run(iam_admin, numbered([("notes.apps", "ann@example.com", (DRIVE,))]))
    assert (complete.counts["apps_absent"], complete.counts["consents_absent"]) == (1, 2)
    present = dict(DiscoveredConsent.objects.values_list("person_key", "present").filter(app__app_key="notes.apps"))
    assert present == {"ann@example.com": True, "bob@example.com": False}
    notes = DiscoveredApp.objects.get(app_key="notes.apps")
    assert (notes.present, notes.people_count, notes.scopes) == (True, 1, [DRIVE])
    mail = DiscoveredApp.objects.get(app_key="mail.apps")
    assert (mail.present, mail.people_count) == (False, 0)

    back = run(iam_admin, numbered([("mail.apps", "ann@example.com", (GMAIL_SEND,))]), complete=False)
    assert back.counts["consents_changed"] == 1
    assert DiscoveredApp.objects.get(app_key="mail.apps").present


def test_another_tenant_is_left_alone(iam_admin: User) -> None:
    run(iam_admin, numbered([("notes.apps", "ann@example.com")]), tenant="a.example")
    run(iam_admin, numbered([("mail.apps", "ann@example.com")]), tenant="b.example")
    assert DiscoveredApp.objects.filter(present=True).count() == 2


def test_a_bad_record_mid_file_leaves_no_half_import_and_names_record_and_field(
    iam_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writing, "CHUNK", 2)
    run(iam_admin, numbered([("notes.apps", "ann@example.com", (DRIVE,))]))
    before = discovery_rows()
    last_event = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    good = numbered(
        [
            ("notes.apps", "ann@example.com", (DRIVE, CALENDAR)),
            ("notes.apps", "bob@example.com", (DRIVE,)),
            ("mail.apps", "cat@example.com", (GMAIL_SEND,)),
            ("mail.apps", "dan@example.com", (GMAIL_SEND,)),
            ("chat.apps", "eve@example.com", (GMAIL_SEND,)),
        ]
    )
    imp = run(iam_admin, failing_after(good, RecordError("must be a list of strings", record_no=7, field="scopes")))
    imp.refresh_from_db()
    assert (imp.status, imp.error_record, imp.error_field) == (ImportStatus.FAILED, 7, "scopes")
    assert imp.error == "must be a list of strings"
    assert (imp.records, imp.counts) == (0, {})
    assert discovery_rows() == before
    assert [event.action for event in AuditEvent.objects.filter(pk__gt=last_event)] == ["discovery.import_failed"]
    failed = _events("discovery.import_failed")[0]
    assert (failed.owner, (failed.after or {})["record"], (failed.after or {})["field"]) == (iam_admin, 7, "scopes")


def test_a_record_the_tables_cannot_hold_is_refused_by_number(iam_admin: User) -> None:
    imp = run(iam_admin, numbered([("notes.apps", "ann@example.com"), ("notes.apps", "x" * 400)]))
    assert (imp.status, imp.error_record, imp.error_field) == (ImportStatus.FAILED, 2, "person_key")
    assert not DiscoveredApp.objects.exists()
    # The thread reading ahead stopped with the import.
    assert not [thread for thread in threading.enumerate() if thread.name == "discovery-import-reader"]


def test_a_person_who_gets_an_account_is_matched_by_the_next_import(
    make_user: Callable[..., User], iam_admin: User
) -> None:
    data = numbered([("notes.apps", "Dana@Example.com", (DRIVE,)), ("notes.apps", "eve@example.com", (DRIVE,))])
    first = run(iam_admin, data)
    assert (first.counts["people_matched"], first.counts["people_unmatched"]) == (0, 2)
    dana = make_user("dana")
    again = run(iam_admin, data)
    assert (again.counts["consents_changed"], again.counts["people_matched"], again.counts["people_unmatched"]) == (
        1,
        1,
        1,
    )
    assert DiscoveredConsent.objects.get(person_key="Dana@Example.com").person == dana


def test_an_import_not_queued_is_returned_unchanged(iam_admin: User) -> None:
    imp = run(iam_admin, numbered([("notes.apps", "ann@example.com")]))
    again = importer.import_records(imp, numbered([("other.apps", "bob@example.com")]))
    assert again.status == ImportStatus.SUCCEEDED
    assert not DiscoveredApp.objects.filter(app_key="other.apps").exists()


def test_import_path_reads_the_providers_file_and_leaves_it_to_the_caller(iam_admin: User, tmp_path: Path) -> None:
    path = google_tokens_file(
        tmp_path / "google.jsonl",
        {
            "ann@example.com": [
                {"clientId": "notes.apps", "displayText": "Notes AI", "scopes": [DRIVE, CALENDAR]},
                {"clientId": "mail.apps", "displayText": "Mailer", "scopes": [GMAIL_SEND]},
            ],
            "bob@example.com": [{"clientId": "notes.apps", "displayText": "Notes AI", "scopes": [DRIVE]}],
        },
    )
    imp = importer.import_path(
        actor=iam_admin, source="google", tenant="example.com", path=path, method=ImportMethod.UPLOAD
    )
    assert imp.status == ImportStatus.SUCCEEDED, imp.error
    assert (imp.counts["apps"], imp.counts["consents"], imp.file_name) == (2, 3, "google.jsonl")
    assert path.exists()
    assert DiscoveredConsent.objects.filter(person_email="bob@example.com").get().scopes == [DRIVE]
    assert Finding.objects.filter(kind="shadow").count() == 2


def test_a_malformed_provider_file_is_refused_with_its_record_number(iam_admin: User, tmp_path: Path) -> None:
    path = tmp_path / "google.json"
    path.write_text(
        '{"kind": "admin#directory#tokenList", "items": ['
        '{"clientId": "a", "userKey": "ann@example.com", "scopes": ["openid"]},'
        '{"clientId": "b", "userKey": "bob@example.com", "scopes": "openid"}]}'
    )
    imp = importer.import_path(actor=iam_admin, source="google", tenant="", path=path, method=ImportMethod.UPLOAD)
    assert (imp.status, imp.error_record, imp.error_field) == (ImportStatus.FAILED, 2, "scopes")
    assert not DiscoveredApp.objects.exists()


# --- Who answers for pulls --------------------------------------------------------------------


def test_pulls_act_for_the_configured_owner_else_the_oldest_iam_admin(make_user: Callable[..., User]) -> None:
    first = make_user("first-admin", Role.IAM_ADMIN)
    second = make_user("second-admin", Role.IAM_ADMIN)
    make_user("someone", Role.BUSINESS_USER)
    assert importer.pull_owner() == first
    with override_settings(DISCOVERY_PULL_OWNER="second-admin"):
        assert importer.pull_owner() == second
    with override_settings(DISCOVERY_PULL_OWNER="someone"):
        assert importer.pull_owner() == first


def test_a_pull_import_is_audited_for_the_owner_the_system_acts_for(iam_admin: User, tmp_path: Path) -> None:
    path = google_tokens_file(
        tmp_path / "pull.jsonl", {"ann@example.com": [{"clientId": "n", "displayText": "N", "scopes": [DRIVE]}]}
    )
    imp = importer.import_path(
        actor=Actor.system(on_behalf_of=iam_admin),
        source="google",
        tenant="",
        path=path,
        method=ImportMethod.PULL,
    )
    assert imp.started_by == iam_admin
    for action in ("discovery.imported", "discovery.finding_opened"):
        event = _events(action)[0]
        assert (event.owner, event.actor_kind) == (iam_admin, "system")


def test_a_file_in_the_spool_directory_is_deleted_once_imported(iam_admin: User, spool: Path) -> None:
    spool.mkdir(parents=True)
    path = google_tokens_file(
        spool / "pull.jsonl", {"ann@example.com": [{"clientId": "n", "displayText": "N", "scopes": [DRIVE]}]}
    )
    imp = importer.import_path(actor=iam_admin, source="google", tenant="", path=path, method=ImportMethod.PULL)
    assert imp.status == ImportStatus.SUCCEEDED
    assert not path.exists()


def test_only_iam_admins_import_a_path(owner: User, tmp_path: Path) -> None:
    path = google_tokens_file(tmp_path / "g.jsonl", {})
    with pytest.raises(PermissionDenied):
        importer.import_path(actor=owner, source="google", tenant="", path=path, method=ImportMethod.UPLOAD)
    with pytest.raises(PermissionDenied):
        importer.import_path(
            actor=Actor.system(on_behalf_of=None), source="google", tenant="", path=path, method=ImportMethod.PULL
        )
    assert not DiscoveryImport.objects.exists()


DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("google", "google_tokens.jsonl"),
        ("google", "google_tokens_pages.json"),
        ("entra", "entra_grants_first.jsonl"),
        ("entra", "entra_directory_first.json"),
        ("slack", "slack_approved_apps.json"),
        ("github", "github_installations.json"),
        ("okta", "okta_grants.jsonl"),
    ],
)
def test_each_providers_sample_imports_and_imports_again_unchanged(iam_admin: User, source: str, name: str) -> None:
    first = importer.import_path(
        actor=iam_admin, source=source, tenant="t", path=DATA / name, method=ImportMethod.UPLOAD
    )
    assert first.status == ImportStatus.SUCCEEDED, first.error
    assert first.counts["consents"] == DiscoveredConsent.objects.count() > 0
    assert DiscoveredApp.objects.count() == first.counts["apps"] == Finding.objects.filter(kind="shadow").count()
    before = discovery_rows(without={"last_seen", "last_import", "last_import_id"})
    again = importer.import_path(
        actor=iam_admin, source=source, tenant="t", path=DATA / name, method=ImportMethod.UPLOAD
    )
    assert (again.counts["consents_new"], again.counts["consents_changed"], again.counts["findings"]) == (0, 0, {})
    assert discovery_rows(without={"last_seen", "last_import", "last_import_id"}) == before


@pytest.mark.parametrize(
    ("source", "name", "record_no", "field"),
    [
        ("google", "google_bad_scopes.jsonl", 3, "scopes"),
        ("slack", "slack_not_ok.jsonl", None, "ok"),
        ("github", "github_bad_app_id.json", None, "app_id"),
        ("entra", "entra_bad_consent_type.jsonl", None, "consentType"),
    ],
)
def test_a_providers_malformed_sample_fails_naming_record_and_field(
    iam_admin: User, source: str, name: str, record_no: int | None, field: str
) -> None:
    imp = importer.import_path(actor=iam_admin, source=source, tenant="t", path=DATA / name, method=ImportMethod.UPLOAD)
    assert imp.status == ImportStatus.FAILED
    assert imp.error_field == field
    assert imp.error_record is not None and imp.error_record > 0
    if record_no is not None:
        assert imp.error_record == record_no
    assert not DiscoveredApp.objects.exists()


def test_keys_and_scopes_with_quotes_backslashes_and_braces_import_again_unchanged(iam_admin: User) -> None:
    odd = 'we"ird\\key,{x} \u00e9'
    data = numbered(
        [
            ("notes.apps", odd, ('scope"with\\quote', "{brace},comma")),
            ("notes.apps", "NULL", ("plain",), {"person_email": 'a"b@example.com', "grant_ids": ('g"1', "g\\2")}),
        ]
    )
    run(iam_admin, data)
    before = discovery_rows(without={"last_seen", "last_import", "last_import_id"})
    again = run(iam_admin, data)
    assert (again.counts["consents_changed"], again.counts["consents_new"], again.counts["consents"]) == (0, 0, 2)
    assert discovery_rows(without={"last_seen", "last_import", "last_import_id"}) == before
    stored = DiscoveredConsent.objects.get(person_key=odd)
    assert stored.scopes == sorted(['scope"with\\quote', "{brace},comma"])
    assert DiscoveredConsent.objects.get(person_key="NULL").grant_ids == ['g"1', "g\\2"]


def test_a_database_error_while_writing_fails_the_import_and_changes_nothing(
    iam_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(iam_admin, numbered([("notes.apps", "ann@example.com", (DRIVE,))]))
    before = discovery_rows()
    monkeypatch.setattr(writing, "CHUNK", 1)

    def broken(self: ConsentTable, rows: list[object]) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(ConsentTable, "insert", broken)
    imp = queued_import(iam_admin)
    with pytest.raises(RuntimeError):
        importer.import_records(imp, numbered([("notes.apps", "bob@example.com"), ("notes.apps", "cat@example.com")]))
    imp.refresh_from_db()
    assert (imp.status, imp.error) == (
        ImportStatus.FAILED,
        "The import failed unexpectedly (RuntimeError); nothing was imported.",
    )
    assert discovery_rows() == before
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("discovery-import-")]
