"""The five providers' formats: their own JSON read into consent records, every record numbered in
file order, and a malformed record refused with its number and the provider's field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from inventory.discovery import formats
from inventory.discovery.formats import parse
from inventory.discovery.models import DiscoveredApp, DiscoveredConsent, ScopeMapping
from inventory.discovery.records import ConsentRecord, RecordError

DATA = Path(__file__).parent / "data"

GOOGLE_NOTES = "123456789012-meetingnotesai0invented.apps.googleusercontent.com"
GOOGLE_SLIDES = "210987654321-slidescopilot0invented.apps.googleusercontent.com"
GOOGLE_ANONYMOUS = "555555555555-anonymousclient0invented.apps.googleusercontent.com"


def records(source: str, name: str) -> list[ConsentRecord]:
    return list(parse(source, DATA / name))


def write(tmp_path: Path, *documents: Any, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(document) + "\n" for document in documents), encoding="utf-8")
    return path


def refusal(source: str, path: Path) -> RecordError:
    with pytest.raises(RecordError) as caught:
        list(parse(source, path))
    return caught.value


def without_numbers(found: list[ConsentRecord]) -> list[ConsentRecord]:
    return [dataclasses.replace(record, record_no=0) for record in found]


def google_token(**changes: Any) -> dict[str, Any]:
    token: dict[str, Any] = {
        "kind": "admin#directory#token",
        "clientId": GOOGLE_NOTES,
        "displayText": "MeetingNotes AI",
        "scopes": ["https://www.googleapis.com/auth/calendar.readonly"],
        "userKey": "108234567890123456789",
        "anonymous": False,
        "nativeApp": False,
        "etag": '"tok"',
    }
    token.update(changes)
    return {key: value for key, value in token.items() if value is not ...}


def google_page(*tokens: Any) -> dict[str, Any]:
    return {"kind": "admin#directory#tokenList", "etag": '"list"', "items": list(tokens)}


# --- dispatch ---------------------------------------------------------------------------------


def test_an_unknown_source_is_refused() -> None:
    error = refusal("myspace", DATA / "google_token_single.json")
    assert (error.record_no, error.field) == (0, "source")


def test_the_column_limits_are_the_models() -> None:
    def max_length(model: Any, name: str) -> int:
        return int(model._meta.get_field(name).max_length)

    assert formats.KEY_MAX == max_length(DiscoveredApp, "app_key") == max_length(DiscoveredApp, "alt_key")
    assert formats.NAME_MAX == max_length(DiscoveredApp, "name") == max_length(DiscoveredApp, "publisher")
    assert formats.PERSON_MAX == max_length(DiscoveredConsent, "person_key")
    assert formats.PERSON_MAX == max_length(DiscoveredConsent, "person_email")
    assert formats.SCOPE_MAX == max_length(ScopeMapping, "provider_scope")


# --- Google -----------------------------------------------------------------------------------


def test_google_pages_become_one_consent_per_token() -> None:
    found = records("google", "google_tokens_pages.json")
    assert [record.record_no for record in found] == [4, 5, 6, 7, 8]  # records 1-3 are the users
    first = found[0]
    assert first == ConsentRecord(
        record_no=4,
        app_key=GOOGLE_NOTES,
        app_name="MeetingNotes AI",
        consent_type="user",
        person_key="108234567890123456789",
        person_email="ada.lovelace@example.com",
        scopes=(
            "https://www.googleapis.com/auth/calendar.readonly",
            "https://www.googleapis.com/auth/drive.readonly",
        ),
        details={"anonymous": False, "nativeApp": False},
    )
    assert [(record.app_key, record.person_email) for record in found[1:]] == [
        (GOOGLE_SLIDES, "ada.lovelace@example.com"),
        (GOOGLE_NOTES, "alan.turing@example.com"),
        (GOOGLE_ANONYMOUS, "alan.turing@example.com"),
        (GOOGLE_SLIDES, "marie.curie@example.org"),  # the user key is an email: no lookup needed
    ]


def test_google_a_token_without_display_text_is_named_by_its_client_id() -> None:
    anonymous = records("google", "google_tokens_pages.json")[3]
    assert anonymous.app_name == GOOGLE_ANONYMOUS
    assert anonymous.details == {"anonymous": True, "nativeApp": True}
    assert anonymous.grant_ids == ()


def test_google_json_lines_read_like_concatenated_pages() -> None:
    assert records("google", "google_tokens.jsonl") == records("google", "google_tokens_pages.json")


def test_google_a_single_token_is_record_one() -> None:
    (token,) = records("google", "google_token_single.json")
    assert (token.record_no, token.app_key, token.person_key, token.person_email) == (
        1,
        "123456789012-abcdefghijk.apps.googleusercontent.com",
        "108234567890123456789",
        "",
    )


def test_google_a_top_level_array_of_tokens_counts_each_item(tmp_path: Path) -> None:
    path = write(tmp_path, [google_token(), google_token(userKey="2")], google_token(userKey="3"))
    assert [(record.record_no, record.person_key) for record in parse("google", path)] == [
        (1, "108234567890123456789"),
        (2, "2"),
        (3, "3"),
    ]


def test_google_users_after_their_tokens_do_not_name_them(tmp_path: Path) -> None:
    users = {"kind": "admin#directory#users", "users": [{"id": "7", "primaryEmail": "late@example.com"}]}
    path = write(tmp_path, google_page(google_token(userKey="7")), users, google_page(google_token(userKey="7")))
    assert [record.person_email for record in parse("google", path)] == ["", "late@example.com"]


def test_google_duplicate_scopes_count_once(tmp_path: Path) -> None:
    (token,) = parse("google", write(tmp_path, google_token(scopes=["openid", "email", "openid"])))
    assert token.scopes == ("openid", "email")


def test_google_a_file_of_empty_pages_has_no_consents(tmp_path: Path) -> None:
    path = write(tmp_path, {"kind": "admin#directory#tokenList", "etag": '"a"'}, google_page())
    assert list(parse("google", path)) == []


def test_google_the_records_stream_lazily(tmp_path: Path) -> None:
    # The first consent is available before the rest of the file is read: a fault further on is
    # raised only when the reading gets there.
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(google_page(google_token())) + "\n{broken\n", encoding="utf-8")
    found = parse("google", path)
    assert next(found).record_no == 1
    with pytest.raises(RecordError):
        next(found)


@pytest.mark.parametrize(
    ("token", "field", "message"),
    [
        pytest.param(google_token(clientId=...), "clientId", "is required", id="missing"),
        pytest.param(google_token(clientId=None), "clientId", "is required", id="null"),
        pytest.param(google_token(clientId=42), "clientId", "must be a string, not a number", id="number"),
        pytest.param(google_token(clientId=""), "clientId", "must not be empty", id="empty"),
        pytest.param(google_token(clientId="x" * 201), "clientId", "must be at most 200 characters", id="long"),
        pytest.param(
            google_token(clientId="abc\ndef"),
            "clientId",
            "must not contain control characters or other unprintable characters",
            id="control",
        ),
        pytest.param(google_token(userKey="u" * 321), "userKey", "must be at most 320 characters", id="long-user"),
        pytest.param(google_token(userKey=["1"]), "userKey", "must be a string, not an array", id="user-array"),
        pytest.param(google_token(scopes=...), "scopes", "is required", id="no-scopes"),
        pytest.param(
            google_token(scopes="openid email"), "scopes", "must be an array of strings, not a string", id="scopes-str"
        ),
        pytest.param(
            google_token(scopes=["openid", 7]), "scopes", "must be an array of strings, not of a number", id="scope-int"
        ),
        pytest.param(google_token(scopes=["openid", ""]), "scopes", "each item must not be empty", id="scope-empty"),
        pytest.param(
            google_token(scopes=["s" * 301]), "scopes", "each item must be at most 300 characters", id="scope-long"
        ),
        pytest.param(
            google_token(scopes=["open\x00id"]),
            "scopes",
            "each item must not contain control characters or other unprintable characters",
            id="scope-nul",
        ),
        pytest.param(google_token(displayText=True), "displayText", "must be a string, not a boolean", id="name-bool"),
        pytest.param(
            google_token(displayText="n" * 301), "displayText", "must be at most 300 characters", id="name-long"
        ),
        pytest.param(
            google_token(displayText="Meeting\x00Notes"),
            "displayText",
            "must not contain NUL characters",
            id="name-nul",
        ),
        pytest.param(google_token(anonymous="no"), "anonymous", "must be true or false, not a string", id="flag-str"),
        pytest.param(google_token(nativeApp=0), "nativeApp", "must be true or false, not a number", id="flag-int"),
    ],
)
def test_google_a_malformed_token_names_its_record_and_field(
    tmp_path: Path, token: dict[str, Any], field: str, message: str
) -> None:
    good = google_token()
    path = write(tmp_path, google_page(good, good), {"kind": "admin#directory#tokenList"}, google_page(good, token))
    error = refusal("google", path)
    assert (error.record_no, error.field) == (4, field)
    assert error.message.startswith(message)
    assert str(error).startswith(f"record 4, field {field}: ")


def test_google_details_keep_what_the_provider_gives(tmp_path: Path) -> None:
    path = write(tmp_path, google_token(anonymous=True, nativeApp=None), google_token(anonymous=..., nativeApp=...))
    assert [record.details for record in parse("google", path)] == [{"anonymous": True}, {}]


def test_google_a_malformed_user_names_its_record_and_field(tmp_path: Path) -> None:
    users = {"kind": "admin#directory#users", "users": [{"id": "1", "primaryEmail": "a@example.com"}, {"id": "2"}]}
    error = refusal("google", write(tmp_path, google_page(google_token()), users))
    assert (error.record_no, error.field, error.message) == (3, "primaryEmail", "is required")


def test_google_a_control_character_in_a_field_name_is_refused(tmp_path: Path) -> None:
    token = google_token()
    token["client\x07Id"] = "x"
    error = refusal("google", write(tmp_path, google_page(google_token(), token)))
    assert (error.record_no, error.field) == (2, "client\\x07Id")
    assert "field name" in error.message


def test_google_items_that_are_not_a_list_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, google_page(google_token()), {"kind": "admin#directory#tokenList", "items": {"a": 1}})
    error = refusal("google", path)
    assert (error.record_no, error.field, error.message) == (2, "items", "must be an array, not an object")


def test_google_an_item_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    error = refusal("google", write(tmp_path, google_page(google_token(), "token")))
    assert (error.record_no, error.field) == (2, "items")
    assert error.message == "each item of items must be a JSON object, not a string"
    error = refusal("google", write(tmp_path, [google_token(), 3], name="array.json"))
    assert (error.record_no, error.field, error.message) == (2, "", "a record must be a JSON object, not a number")


def test_google_a_document_that_is_neither_object_nor_array_is_refused(tmp_path: Path) -> None:
    error = refusal("google", write(tmp_path, google_token(), "just text"))
    assert (error.record_no, error.message) == (2, "a document must be a JSON object or array, not a string")


def test_google_bad_scopes_in_the_test_data_name_record_three() -> None:
    found = parse("google", DATA / "google_bad_scopes.jsonl")
    assert [next(found).record_no, next(found).record_no] == [1, 2]
    with pytest.raises(RecordError) as caught:
        next(found)
    assert str(caught.value) == "record 3, field scopes: must be an array of strings, not a string"


def test_google_invalid_json_names_the_next_record_and_the_position() -> None:
    # The cut-off page's tokens never count: the fault comes before the record they would start.
    error = refusal("google", DATA / "google_invalid_json.jsonl")
    assert error.record_no == 3
    assert error.message == "invalid JSON at line 3, column 1: Expecting ',' delimiter"


def test_google_bad_utf8_names_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(
        json.dumps(google_page(google_token(), google_token())).encode() + b'\n{"displayText": "caf\xe9"}\n'
    )
    error = refusal("google", path)
    assert error.record_no == 3
    assert error.message.startswith("the file is not UTF-8 text: invalid byte at line 2, column 21")


def test_google_a_document_over_the_size_limit_names_the_next_record(tmp_path: Path, settings: Any) -> None:
    settings.DISCOVERY_DOCUMENT_MAX_BYTES = 2000
    large = google_page(*[google_token(userKey=str(number)) for number in range(20)])
    error = refusal("google", write(tmp_path, google_page(google_token()), large))
    assert error.record_no == 2
    assert error.message.startswith("the JSON document starting at line 2, column 1 is larger than 2,000 bytes")


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("\n", encoding="utf-8")
    for source in ("google", "entra", "slack", "github", "okta"):
        error = refusal(source, path)
        assert (error.record_no, error.field) == (0, "")
        assert error.message == "the file is empty: it holds no JSON document"


# --- Entra ------------------------------------------------------------------------------------

ENTRA_NOTES_SP = "9e1c6b2a-0000-4a6b-9c1e-111111111111"
ENTRA_NOTES_APP = "c0ffee00-0000-4bad-a11c-aaaaaaaaaaaa"


def test_entra_grants_are_joined_to_service_principals_and_users() -> None:
    found = records("entra", "entra_grants_first.jsonl")
    assert [record.record_no for record in found] == [1, 2, 3, 4]
    assert found[0] == ConsentRecord(
        record_no=1,
        app_key=ENTRA_NOTES_APP,
        alt_key=ENTRA_NOTES_SP,
        app_name="MeetingNotes AI",
        publisher="Invented Notes Ltd",
        publisher_verified=True,
        consent_type="user",
        person_key="2f4d9c3e-0000-4e5f-8a9b-222222222222",
        person_email="ada@contoso.example",
        scopes=("openid", "profile", "offline_access", "User.Read", "Mail.Read", "Files.Read.All"),
        grant_ids=("l5nZ3kq2bUK1e2Xx_invented_grant_id_1",),
        details={
            "appOwnerOrganizationId": "7a7a7a7a-0000-4000-8000-777777777777",
            "servicePrincipalType": "Application",
        },
    )
    # Without a mail, the user principal name is the email.
    assert found[3].person_email == "grace.hopper@contoso.example"
    assert found[3].app_key == ENTRA_NOTES_APP


def test_entra_an_admin_consent_is_for_everyone() -> None:
    admin = records("entra", "entra_grants_first.jsonl")[1]
    assert (admin.consent_type, admin.person_key, admin.person_email) == ("admin", "*", "")
    assert admin.scopes == ("User.Read", "Mail.ReadWrite")
    assert (admin.app_key, admin.alt_key) == (
        "deadbeef-0000-4bad-b0b0-bbbbbbbbbbbb",
        "4b4b4b4b-0000-4c4c-9d9d-444444444444",
    )
    # A verified publisher object with nothing in it is no verification; the publisher's own name stays.
    assert (admin.publisher, admin.publisher_verified) == ("Contoso Invented", False)
    assert admin.grant_ids == ("l5nZ3kq2bUK1e2Xx_invented_grant_id_2",)


def test_entra_a_grant_whose_service_principal_is_missing_keeps_the_client_id() -> None:
    orphan = records("entra", "entra_grants_first.jsonl")[2]
    assert (orphan.app_key, orphan.alt_key, orphan.app_name) == (
        "0d0d0d0d-0000-4e4e-8f8f-555555555555",
        "0d0d0d0d-0000-4e4e-8f8f-555555555555",
        "0d0d0d0d-0000-4e4e-8f8f-555555555555",
    )
    assert (orphan.publisher, orphan.publisher_verified, orphan.person_email, orphan.details) == ("", None, "", {})


def test_entra_the_order_of_grants_and_directory_objects_does_not_matter() -> None:
    grants_first = records("entra", "entra_grants_first.jsonl")
    directory_first = records("entra", "entra_directory_first.json")
    # The directory comes first in the second file: users are records 1-2, service principals 3-4.
    assert [record.record_no for record in directory_first] == [5, 6, 7, 8]
    assert without_numbers(directory_first) == without_numbers(grants_first)


def test_entra_items_are_told_apart_by_their_fields_without_context(tmp_path: Path) -> None:
    grant = {"id": "g1", "clientId": "sp1", "consentType": "Principal", "principalId": "u1", "scope": "User.Read"}
    principal = {"id": "sp1", "appId": "app1", "displayName": "Bare App"}
    user = {"id": "u1", "userPrincipalName": "bare@example.com"}
    (record,) = parse("entra", write(tmp_path, [grant, principal, user]))
    assert (record.app_key, record.app_name, record.person_email) == ("app1", "Bare App", "bare@example.com")


def test_entra_an_unknown_consent_type_names_its_record() -> None:
    error = refusal("entra", DATA / "entra_bad_consent_type.jsonl")
    assert str(error) == "record 4, field consentType: must be AllPrincipals or Principal"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"principalId": None}, "principalId", "is required"),
        ({"scope": ["User.Read"]}, "scope", "must be a string, not an array"),
        ({"scope": None}, "scope", "is required"),
        ({"id": 17}, "id", "must be a string, not a number"),
        ({"clientId": "c" * 201}, "clientId", "must be at most 200 characters"),
    ],
)
def test_entra_a_malformed_grant_names_its_record_and_field(
    tmp_path: Path, change: dict[str, Any], field: str, message: str
) -> None:
    grant = {"id": "g1", "clientId": "sp1", "consentType": "Principal", "principalId": "u1", "scope": "User.Read"}
    page = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#oauth2PermissionGrants", "value": [grant]}
    bad_page = {**page, "value": [grant, {**grant, **change}]}
    error = refusal("entra", write(tmp_path, page, bad_page))
    assert (error.record_no, error.field, error.message) == (3, field, message)


def test_entra_a_malformed_service_principal_is_refused_even_after_the_grants(tmp_path: Path) -> None:
    grant = {"id": "g1", "clientId": "sp1", "consentType": "AllPrincipals", "principalId": None, "scope": "User.Read"}
    principal = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity",
        "id": "sp1",
        "appId": "app1",
        "verifiedPublisher": "yes",
    }
    error = refusal("entra", write(tmp_path, {"value": [grant, grant]}, principal))
    assert (error.record_no, error.field, error.message) == (3, "verifiedPublisher", "must be an object, not a string")


def test_entra_a_nested_field_is_named_with_dots(tmp_path: Path) -> None:
    principal = {"id": "sp1", "appId": "app1", "verifiedPublisher": {"displayName": 5}}
    error = refusal("entra", write(tmp_path, principal))
    assert (error.record_no, error.field) == (1, "verifiedPublisher.displayName")


def test_entra_an_unrecognisable_record_is_refused(tmp_path: Path) -> None:
    error = refusal("entra", write(tmp_path, {"value": [{"id": "x", "displayName": "what am I"}]}))
    assert (error.record_no, error.field) == (1, "clientId")
    assert error.message.startswith("is required: the record is not a permission grant")


# --- Slack ------------------------------------------------------------------------------------


def test_slack_approved_apps_are_admin_consents_for_everyone() -> None:
    found = records("slack", "slack_approved_apps.json")
    assert [record.record_no for record in found] == [1, 2, 3]
    assert found[0] == ConsentRecord(
        record_no=1,
        app_key="A07INVENTED1",
        app_name="ThreadSummarizer",
        publisher_verified=True,
        consent_type="admin",
        person_key="*",
        scopes=("channels:history", "chat:write"),
        details={
            "is_internal": False,
            "app_homepage_url": "https://threadsummarizer.example/",
            "app_directory_url": "https://slack.com/apps/A07INVENTED1-threadsummarizer",
            "date_updated": 1790000000,
            "sensitive_scopes": {"channels:history": True, "chat:write": False},
        },
    )


def test_slack_keeps_sensitivity_only_where_slack_gives_it() -> None:
    internal = records("slack", "slack_approved_apps.json")[1]
    assert internal.scopes == ("commands", "users:read.email")
    assert internal.details["sensitive_scopes"] == {"commands": False}
    assert (internal.publisher_verified, internal.details["is_internal"]) == (False, True)


def test_slack_ok_false_is_refused_naming_the_field_ok() -> None:
    found = parse("slack", DATA / "slack_not_ok.jsonl")
    assert [next(found).record_no, next(found).record_no] == [1, 2]
    with pytest.raises(RecordError) as caught:
        next(found)
    assert (caught.value.record_no, caught.value.field) == (3, "ok")
    assert caught.value.message == "Slack refused the request (ok: false, error: ratelimited)"


def test_slack_ok_that_is_not_a_boolean_is_refused(tmp_path: Path) -> None:
    error = refusal("slack", write(tmp_path, {"ok": "yes", "approved_apps": []}))
    assert (error.record_no, error.field, error.message) == (1, "ok", "must be true or false")


def test_slack_a_missing_app_id_is_named_with_its_parent() -> None:
    assert str(refusal("slack", DATA / "slack_missing_app_id.jsonl")) == "record 3, field app.id: is required"


@pytest.mark.parametrize(
    ("approved", "field", "message"),
    [
        ({"app": "A1", "scopes": []}, "app", "must be an object, not a string"),
        ({"app": {"id": "A1"}, "scopes": {"name": "x"}}, "scopes", "must be an array of objects, not an object"),
        ({"app": {"id": "A1"}, "scopes": ["chat:write"]}, "scopes", "must be an array of objects, not of a string"),
        ({"app": {"id": "A1"}, "scopes": [{"is_sensitive": True}]}, "scopes.name", "is required"),
        ({"app": {"id": "A1"}, "scopes": [{"name": "x", "is_sensitive": "no"}]}, "scopes.is_sensitive", "must be"),
        ({"app": {"id": "A1", "is_app_directory_approved": 1}, "scopes": []}, "app.is_app_directory_approved", "must"),
    ],
)
def test_slack_a_malformed_approved_app_names_its_record_and_field(
    tmp_path: Path, approved: dict[str, Any], field: str, message: str
) -> None:
    error = refusal("slack", write(tmp_path, approved))
    assert (error.record_no, error.field) == (1, field)
    assert error.message.startswith(message)


# --- GitHub -----------------------------------------------------------------------------------


def test_github_installations_are_admin_consents_with_permissions_as_scopes() -> None:
    found = records("github", "github_installations.json")
    assert [record.record_no for record in found] == [1, 2, 3]
    assert found[1] == ConsentRecord(
        record_no=2,
        app_key="310002",
        app_name="issue-triage-llm",
        consent_type="admin",
        person_key="*",
        scopes=("issues:write", "members:read", "organization_administration:admin"),
        grant_ids=("48000002",),
        details={
            "html_url": "https://github.com/organizations/invented-org/settings/installations/48000002",
            "repository_selection": "selected",
            "suspended_at": "2026-09-01T08:00:00Z",
            "target_type": "Organization",
        },
    )
    assert found[0].scopes == ("contents:read", "pull_requests:write", "metadata:read")
    assert "suspended_at" not in found[0].details


def test_github_a_bare_array_reads_like_pages() -> None:
    assert records("github", "github_installations_array.json") == records("github", "github_installations.json")


def test_github_an_app_id_that_is_not_a_number_is_refused() -> None:
    assert str(refusal("github", DATA / "github_bad_app_id.json")) == (
        "record 2, field app_id: must be a whole number, not a string"
    )


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"id": True}, "id", "must be a whole number, not a boolean"),
        ({"app_slug": None}, "app_slug", "is required"),
        ({"permissions": None}, "permissions", "is required"),
        ({"permissions": {"contents": 1}}, "permissions.contents", "must be a string, not a number"),
        ({"permissions": {"contents": ""}}, "permissions.contents", "must not be empty"),
        ({"html_url": ["x"]}, "html_url", "must be a string, number or boolean, not an array"),
        ({"html_url": "https://github.com/\x00"}, "html_url", "must not contain NUL characters"),
        ({"target_type": "T" * 2001}, "target_type", "must be at most 2000 characters"),
    ],
)
def test_github_a_malformed_installation_names_its_record_and_field(
    tmp_path: Path, change: dict[str, Any], field: str, message: str
) -> None:
    good = {"id": 1, "app_id": 2, "app_slug": "bot", "permissions": {"contents": "read"}}
    error = refusal("github", write(tmp_path, {"total_count": 2, "installations": [good, {**good, **change}]}))
    assert (error.record_no, error.field, error.message) == (2, field, message)


# --- Okta -------------------------------------------------------------------------------------


def test_okta_grants_become_one_consent_per_scope() -> None:
    found = records("okta", "okta_grants.jsonl")
    # Record 1 is Ada's user object, record 4 a revoked grant, record 5 Grace's user object.
    assert [record.record_no for record in found] == [2, 3, 6, 7]
    assert found[0] == ConsentRecord(
        record_no=2,
        app_key="0oa1meetingnotes",
        app_name="MeetingNotes AI",
        consent_type="user",
        person_key="00u1inventedada",
        person_email="ada@invented.example",
        scopes=("okta.users.read",),
        grant_ids=("oag1invented",),
    )
    # Two grants of one person to one app share (app, person): the importer merges them.
    assert (found[1].app_key, found[1].person_key, found[1].scopes) == (
        "0oa1meetingnotes",
        "00u1inventedada",
        ("calendar.read",),
    )


def test_okta_a_grant_without_user_id_belongs_to_the_user_before_it() -> None:
    found = records("okta", "okta_grants.jsonl")
    assert {record.person_key for record in found[:2]} == {"00u1inventedada"}


def test_okta_a_grant_names_the_scope_by_its_id_without_the_embedded_scope() -> None:
    grace = records("okta", "okta_grants.jsonl")[2]
    assert (grace.person_key, grace.scopes) == ("00u2inventedgrace", ("okta.users.read",))
    # Her login is not an email address and her profile has none.
    assert grace.person_email == ""


def test_okta_a_grant_of_a_user_not_in_the_file_has_no_email() -> None:
    other = records("okta", "okta_grants.jsonl")[3]
    assert (other.person_key, other.person_email, other.app_name, other.scopes) == (
        "00u9notinfile",
        "",
        "Chat Bot AI",
        ("openid",),
    )


def test_okta_grants_that_are_not_active_are_skipped_but_counted(tmp_path: Path) -> None:
    user = {"id": "00u1", "profile": {"login": "a@example.com", "email": None}}
    grant = {"id": "g1", "clientId": "c1", "scopeId": "openid", "status": "ACTIVE"}
    revoked = {"status": "REVOKED"}  # only the status of a skipped grant is checked
    path = write(tmp_path, user, [revoked, grant, {**grant, "id": "g2", "status": "SUSPENDED"}, {**grant, "id": "g3"}])
    assert [(record.record_no, record.grant_ids, record.person_email) for record in parse("okta", path)] == [
        (3, ("g1",), "a@example.com"),
        (5, ("g3",), "a@example.com"),
    ]


def test_okta_the_app_name_falls_back_to_the_client_title_then_the_client_id(tmp_path: Path) -> None:
    grant = {"id": "g1", "userId": "u1", "clientId": "c1", "scopeId": "openid", "status": "ACTIVE"}
    client_only = {**grant, "_links": {"client": {"href": "https://x.example", "title": "Client Title"}}}
    assert [record.app_name for record in parse("okta", write(tmp_path, [client_only, grant]))] == [
        "Client Title",
        "c1",
    ]


def test_okta_a_grant_with_no_user_anywhere_is_refused() -> None:
    assert str(refusal("okta", DATA / "okta_grants_without_user.json")) == (
        "record 1, field userId: is required: no user object comes before the grant"
    )


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"status": None}, "status", "is required"),
        ({"status": 1}, "status", "must be a string, not a number"),
        ({"clientId": None}, "clientId", "is required"),
        ({"scopeId": ["openid"]}, "scopeId", "must be a string, not an array"),
        ({"_embedded": {"scope": {"name": None}}}, "_embedded.scope.name", "is required"),
        ({"_links": {"app": {"title": 5}}}, "_links.app.title", "must be a string, not a number"),
        ({"_links": {"app": "MeetingNotes"}}, "_links.app", "must be an object, not a string"),
    ],
)
def test_okta_a_malformed_grant_names_its_record_and_field(
    tmp_path: Path, change: dict[str, Any], field: str, message: str
) -> None:
    user = {"id": "00u1", "profile": {"login": "a@example.com"}}
    grant = {"id": "g1", "clientId": "c1", "scopeId": "openid", "status": "ACTIVE"}
    error = refusal("okta", write(tmp_path, user, [grant, {**grant, **change}]))
    assert (error.record_no, error.field, error.message) == (3, field, message)


def test_okta_a_malformed_user_names_its_record_and_field(tmp_path: Path) -> None:
    error = refusal("okta", write(tmp_path, [{"id": "00u1", "profile": {"login": 5}}]))
    assert (error.record_no, error.field, error.message) == (1, "profile.login", "must be a string, not a number")


def test_github_a_permission_too_long_for_a_scope_name_is_refused(tmp_path: Path) -> None:
    installation = {"id": 1, "app_id": 2, "app_slug": "bot", "permissions": {"p" * 295: "write"}}
    error = refusal("github", write(tmp_path, installation))
    assert (error.record_no, error.field) == (1, "permissions." + "p" * 295)
    assert error.message == "a permission and its level must be at most 300 characters"


def test_a_control_character_in_a_nested_field_name_is_named_with_its_parent(tmp_path: Path) -> None:
    error = refusal("slack", write(tmp_path, {"app": {"i\x01d": "A1", "id": "A1"}, "scopes": []}))
    assert (error.record_no, error.field) == (1, "app.i\\x01d")
