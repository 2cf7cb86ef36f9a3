"""Pulls from the providers' APIs, run against a real local HTTP server that answers with
recorded pages (``tests/discovery/recorded/``): every request goes through the outbound client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from governance import outbound
from governance.actors import Actor
from governance.models import AuditEvent, User
from governance.roles import Role
from inventory.discovery import pull, tasks
from inventory.discovery.choices import FindingKind, ImportMethod, ImportStatus
from inventory.discovery.models import DiscoveredApp, DiscoveredConsent, DiscoveryImport, Finding
from tests.discovery.provider_server import ProviderServer, provider_server
from tests.outbound_support import FakeDNS, listener

SOURCES = ("google", "entra", "slack", "github", "okta")
TENANTS = {
    "google": "C0invented",
    "entra": "tenant-invented",
    "slack": "E0INVENTED",
    "github": "acme-invented",
    "okta": "acme-invented",
}


def connectors(base: str, **overrides: dict[str, str]) -> dict[str, dict[str, str]]:
    configured = {
        source: {
            "base_url": base,
            "tenant": TENANTS[source],
            "token": f"{source}-read-token",
            "write_token": f"{source}-write-token",
        }
        for source in SOURCES
    }
    for source, values in overrides.items():
        configured[source] = {**configured[source], **values}
    return configured


@pytest.fixture
def provider(settings: Any, tmp_path: Path) -> Iterator[ProviderServer]:
    """The providers' APIs on one local server; waits kept tiny, two retries."""
    with provider_server() as server:
        settings.OUTBOUND_ALLOWED_HOSTS = [server.host]
        settings.DISCOVERY_CONNECTORS = connectors(server.base)
        settings.DISCOVERY_SPOOL_DIR = tmp_path / "spool"
        settings.DISCOVERY_PULL_RETRIES = 2
        settings.DISCOVERY_PULL_BACKOFF_SECONDS = 0.01
        settings.DISCOVERY_PULL_MAX_WAIT_SECONDS = 0.02
        settings.DISCOVERY_PULL_BUDGET_SECONDS = 30
        yield server


def documents(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def recorded_documents(source: str, base: str) -> list[Any]:
    """Every body the recording of ``source`` holds, and every item of those that are arrays."""
    recording = json.loads((Path(__file__).parent / "recorded" / f"{source}.json").read_text())
    bodies = [json.loads(json.dumps(item.get("body")).replace("{base}", base)) for item in recording["exchanges"]]
    return bodies + [item for body in bodies if isinstance(body, list) for item in body]


def spool_files(settings: Any) -> list[Path]:
    spool = Path(settings.DISCOVERY_SPOOL_DIR)
    return sorted(spool.iterdir()) if spool.exists() else []


# --- Small parts --------------------------------------------------------------------------------


def test_retry_after_reads_delay_seconds_and_http_dates() -> None:
    now = datetime(2026, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert pull.retry_after_seconds("120") == 120.0
    assert pull.retry_after_seconds(" 0 ") == 0.0
    assert pull.retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", now=now) == 30.0
    assert pull.retry_after_seconds("Wed, 21 Oct 2026 07:00:00 GMT", now=now) == 0.0  # already past
    assert pull.retry_after_seconds("soon") is None
    assert pull.retry_after_seconds("-5") is None


def test_next_link_is_the_rel_next_target_of_a_link_header() -> None:
    header = '<https://api.example.com/x?page=1>; rel="prev", <https://api.example.com/x?page=3>; rel="next"'
    assert pull.next_link(header) == "https://api.example.com/x?page=3"
    assert pull.next_link("<https://o.example.com/u?after=a,b>; rel=next") == "https://o.example.com/u?after=a,b"
    assert pull.next_link('<https://api.example.com/x?page=9>; rel="last"') == ""
    assert pull.next_link("") == ""


def test_configured_sources_are_those_with_a_read_token(settings: Any) -> None:
    settings.DISCOVERY_CONNECTORS = connectors("https://api.example.com", slack={"token": ""}, okta={"token": ""})
    assert pull.configured_sources() == ["google", "entra", "github"]


def test_the_pull_schedule_is_registered_at_the_configured_cron(settings: Any) -> None:
    from governance import scheduling

    tasks = {task.name: task for task in scheduling.registered()}
    assert tasks["discovery-pull"].func == "inventory.discovery.tasks.pull_all"
    assert tasks["discovery-pull"].cron == settings.DISCOVERY_PULL_CRON
    assert "inventory.discovery.tasks.pull_all" in scheduling.allowed_task_functions()


# --- Pagination: every page of every provider, in the order the formats read -------------------

EXPECTED_REQUESTS = {
    "google": [
        "/admin/directory/v1/users?customer=C0invented&maxResults=500",
        "/admin/directory/v1/users/108000000000000000001/tokens",
        "/admin/directory/v1/users/108000000000000000002/tokens",
        "/admin/directory/v1/users?customer=C0invented&maxResults=500&pageToken=page%2B2%2Fof%3D2",
        "/admin/directory/v1/users/108000000000000000003/tokens",
    ],
    "entra": [
        "/v1.0/oauth2PermissionGrants",
        "/v1.0/oauth2PermissionGrants?$skiptoken=X1invented",
        "/v1.0/servicePrincipals/9e1c6b2a-0000-4a6b-9c1e-111111111111",
        "/v1.0/servicePrincipals/9e1c6b2a-0000-4a6b-9c1e-111111111112",
        "/v1.0/users/2f4d9c3e-0000-4e5f-8a9b-222222222201?$select=id,userPrincipalName,mail",
        "/v1.0/users/2f4d9c3e-0000-4e5f-8a9b-222222222202?$select=id,userPrincipalName,mail",
    ],
    "slack": [
        "/api/admin.apps.approved.list?limit=1000&enterprise_id=E0INVENTED",
        "/api/admin.apps.approved.list?limit=1000&enterprise_id=E0INVENTED&cursor=dGVhbTpDMDYx%3D%3D",
    ],
    "github": [
        "/orgs/acme-invented/installations?per_page=100",
        "/organizations/424242/installations?per_page=100&page=2",
    ],
    "okta": [
        "/api/v1/users?limit=200",
        "/api/v1/users/00uinvented1/grants?expand=scope&limit=200",
        "/api/v1/users/00uinvented1/grants?after=oaginvented2&expand=scope&limit=200",
        "/api/v1/users/00uinvented2/grants?expand=scope&limit=200",
        "/api/v1/users?after=00uinvented2&limit=200",
        "/api/v1/users/00uinvented3/grants?expand=scope&limit=200",
    ],
}


def _shape(document: Any) -> str:
    """A short name for a spooled document: its list's key and length, or the object's id."""
    if isinstance(document, list):
        return f"[{len(document)}]"
    for key in ("users", "items", "value", "approved_apps", "installations"):
        if key in document:
            return f"{key}[{len(document[key])}]"
    return f"object {document.get('id')}"


EXPECTED_SPOOL = {
    # Users pages, each followed by its users' token lists; a user without tokens adds nothing.
    "google": ["users[2]", "items[2]", "users[1]", "items[1]"],
    # Grant pages, then the service principals and users they name.
    "entra": [
        "value[2]",
        "value[1]",
        "object 9e1c6b2a-0000-4a6b-9c1e-111111111111",
        "object 9e1c6b2a-0000-4a6b-9c1e-111111111112",
        "object 2f4d9c3e-0000-4e5f-8a9b-222222222201",
        "object 2f4d9c3e-0000-4e5f-8a9b-222222222202",
    ],
    "slack": ["approved_apps[1]", "approved_apps[1]"],
    "github": ["installations[2]", "installations[1]"],
    # Each user with grants, then its grant pages; a user without grants adds nothing.
    "okta": ["object 00uinvented1", "[2]", "[2]", "object 00uinvented3", "[1]"],
}


@pytest.mark.parametrize("source", SOURCES)
def test_a_pull_follows_every_page_of_the_provider(provider: ProviderServer, source: str, tmp_path: Path) -> None:
    provider.load(source)
    path = tmp_path / f"{source}.jsonl"

    written = pull.download(pull.connector(source), path)

    assert [seen.target for seen in provider.seen] == EXPECTED_REQUESTS[source]
    assert provider.unexpected == []
    assert [_shape(document) for document in documents(path)] == EXPECTED_SPOOL[source]
    assert written == len(EXPECTED_SPOOL[source])
    # Each line is a page (or, for Okta, one user of a page) exactly as the provider sent it.
    assert all(document in recorded_documents(source, provider.base) for document in documents(path))


@pytest.mark.parametrize(
    ("source", "authorization"),
    [
        ("google", "Bearer google-read-token"),
        ("entra", "Bearer entra-read-token"),
        ("slack", "Bearer slack-read-token"),
        ("github", "Bearer github-read-token"),
        ("okta", "SSWS okta-read-token"),
    ],
)
def test_every_request_carries_the_read_token(
    provider: ProviderServer, source: str, authorization: str, tmp_path: Path
) -> None:
    provider.load(source)

    pull.download(pull.connector(source), tmp_path / "pulled.jsonl")

    assert provider.seen
    assert {seen.headers.get("Authorization") for seen in provider.seen} == {authorization}
    assert {seen.method for seen in provider.seen} == {"GET"}
    if source == "github":
        assert {seen.headers.get("Accept") for seen in provider.seen} == {"application/vnd.github+json"}
        assert {seen.headers.get("X-GitHub-Api-Version") for seen in provider.seen} == {"2022-11-28"}


# --- Waits, retries, the budget -----------------------------------------------------------------

GOOGLE_USERS = "GET /admin/directory/v1/users?customer=C0invented&maxResults=500"
ENTRA_GRANTS = "GET /v1.0/oauth2PermissionGrants"
SLACK_FIRST = "GET /api/admin.apps.approved.list?limit=1000&enterprise_id=E0INVENTED"
GITHUB_FIRST = "GET /orgs/acme-invented/installations?per_page=100"
OKTA_USERS = "GET /api/v1/users?limit=200"


@pytest.fixture
def admin_actor(make_user: Callable[..., User]) -> Actor:
    """The system pulling for an IAM admin, as the schedule does."""
    return Actor.system(on_behalf_of=make_user("iam-pull", Role.IAM_ADMIN))


def assert_failed_and_nothing_imported(imp: DiscoveryImport, settings: Any, *, error: str) -> None:
    assert imp.status == ImportStatus.FAILED
    assert imp.method == ImportMethod.PULL
    assert error in imp.error
    assert DiscoveredApp.objects.count() == 0
    assert DiscoveredConsent.objects.count() == 0
    assert spool_files(settings) == []
    event = AuditEvent.objects.get(action="discovery.import_failed", target_id=str(imp.pk))
    assert event.after is not None and event.after["error"] == imp.error
    assert event.owner_username == "iam-pull"


def test_a_429_is_retried_after_the_wait_it_asks_for(provider: ProviderServer, tmp_path: Path) -> None:
    provider.add(GOOGLE_USERS, 429, {"error": {"code": 429}}, {"Retry-After": "1"})
    provider.load("google")

    pull.download(pull.connector("google"), tmp_path / "pulled.jsonl")

    assert [seen.target for seen in provider.seen].count(GOOGLE_USERS.removeprefix("GET ")) == 2
    assert [_shape(document) for document in documents(tmp_path / "pulled.jsonl")] == EXPECTED_SPOOL["google"]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1000000000"},  # primary limit, reset passed
        {"Retry-After": "1"},  # secondary limit
    ],
)
def test_githubs_rate_limit_403_is_waited_out(
    provider: ProviderServer, headers: dict[str, str], tmp_path: Path
) -> None:
    provider.add(GITHUB_FIRST, 403, {"message": "API rate limit exceeded"}, headers)
    provider.load("github")

    pull.download(pull.connector("github"), tmp_path / "pulled.jsonl")

    assert [seen.target for seen in provider.seen] == [EXPECTED_REQUESTS["github"][0], *EXPECTED_REQUESTS["github"]]


def test_a_wait_that_would_outlast_the_budget_fails_the_pull_at_once(
    provider: ProviderServer, settings: Any, admin_actor: Actor
) -> None:
    settings.DISCOVERY_PULL_BUDGET_SECONDS = 5
    settings.DISCOVERY_PULL_MAX_WAIT_SECONDS = 600
    provider.add(SLACK_FIRST, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3600"})

    imp = pull.pull_source("slack", actor=admin_actor)

    assert len(provider.seen) == 1  # the hour it asked for was not waited, nor retried early
    assert_failed_and_nothing_imported(imp, settings, error="ran out of its time budget")


def test_server_errors_are_retried_with_backoff(provider: ProviderServer, tmp_path: Path) -> None:
    provider.add(ENTRA_GRANTS, 503, {"error": {"code": "ServiceUnavailable"}})
    provider.add(ENTRA_GRANTS, 502, None)
    provider.load("entra")

    pull.download(pull.connector("entra"), tmp_path / "pulled.jsonl")

    assert [seen.target for seen in provider.seen].count("/v1.0/oauth2PermissionGrants") == 3
    assert [_shape(document) for document in documents(tmp_path / "pulled.jsonl")] == EXPECTED_SPOOL["entra"]


def test_a_pull_gives_up_after_the_retries(provider: ProviderServer, settings: Any, admin_actor: Actor) -> None:
    provider.add(SLACK_FIRST, 500, {"ok": False})

    imp = pull.pull_source("slack", actor=admin_actor)

    assert len(provider.seen) == 3  # DISCOVERY_PULL_RETRIES = 2: three tries in all
    assert_failed_and_nothing_imported(imp, settings, error="HTTP 500, given up after 3 tries")


def test_a_pull_that_runs_out_of_its_budget_imports_nothing(
    provider: ProviderServer, settings: Any, admin_actor: Actor
) -> None:
    settings.DISCOVERY_PULL_BUDGET_SECONDS = 0.5
    settings.OUTBOUND_TIMEOUT_SECONDS = 5
    provider.add(OKTA_USERS, 200, [{"id": "00uslow", "profile": {"login": "slow@example.com"}}], delay=0.3)
    provider.add("GET /api/v1/users/00uslow/grants?expand=scope&limit=200", 200, [], delay=2)

    imp = pull.pull_source("okta", actor=admin_actor)

    # The second request was cut at the budget (not at the 5 s timeout) and not retried.
    assert len(provider.seen) == 2
    assert_failed_and_nothing_imported(imp, settings, error="ran out of its time budget")


def test_timeouts_are_retried(provider: ProviderServer, settings: Any, tmp_path: Path) -> None:
    settings.OUTBOUND_TIMEOUT_SECONDS = 0.2
    provider.add(GITHUB_FIRST, 200, {"total_count": 0, "installations": []}, delay=1)
    provider.add(GITHUB_FIRST, 200, {"total_count": 0, "installations": []})

    pull.download(pull.connector("github"), tmp_path / "pulled.jsonl")

    assert len(provider.seen) == 2
    assert documents(tmp_path / "pulled.jsonl") == [{"total_count": 0, "installations": []}]


# --- What a pull refuses --------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["entra", "github"])
def test_a_next_page_link_to_another_site_is_not_followed(
    provider: ProviderServer, settings: Any, admin_actor: Actor, source: str
) -> None:
    with listener() as elsewhere:
        # Even a host the outbound policy allows: the read token goes to the connector's origin only.
        settings.OUTBOUND_ALLOWED_HOSTS = [provider.host, f"127.0.0.1:{elsewhere.port}"]
        other = f"http://127.0.0.1:{elsewhere.port}"
        if source == "entra":
            provider.add(
                ENTRA_GRANTS, 200, {"value": [], "@odata.nextLink": f"{other}/v1.0/oauth2PermissionGrants?$skiptoken=x"}
            )
        else:
            link = f'<{other}/organizations/1/installations?page=2>; rel="next"'
            provider.add(GITHUB_FIRST, 200, {"total_count": 9, "installations": []}, {"Link": link})

        imp = pull.pull_source(source, actor=admin_actor)

        assert elsewhere.accepted == 0
    assert len(provider.seen) == 1
    assert_failed_and_nothing_imported(imp, settings, error="the next-page link points to another site")


def test_a_provider_host_the_outbound_policy_does_not_allow_is_refused(
    provider: ProviderServer, settings: Any, admin_actor: Actor
) -> None:
    with listener() as unlisted:
        settings.DISCOVERY_CONNECTORS = connectors(f"http://127.0.0.1:{unlisted.port}")

        imp = pull.pull_source("google", actor=admin_actor)

        assert unlisted.accepted == 0
    assert_failed_and_nothing_imported(imp, settings, error="refused by outbound policy")


def test_a_provider_name_that_resolves_to_an_internal_address_is_refused(
    settings: Any, admin_actor: Actor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dns = FakeDNS()
    dns.set("graph.example.com", "10.20.30.40")
    monkeypatch.setattr(outbound, "resolve", dns)
    settings.OUTBOUND_ALLOWED_HOSTS = []
    settings.DISCOVERY_SPOOL_DIR = tmp_path / "spool"
    settings.DISCOVERY_CONNECTORS = connectors("https://graph.example.com")

    imp = pull.pull_source("entra", actor=admin_actor)

    assert dns.lookups == ["graph.example.com"]
    assert_failed_and_nothing_imported(imp, settings, error="refused by outbound policy")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            {"status": 302, "headers": {"Location": "https://elsewhere.example.com/"}},
            "redirect (HTTP 302), which is not followed",
        ),
        ({"status": 401, "body": {"message": "Bad credentials"}}, "HTTP 401 (check the connector's read token"),
        ({"status": 404, "body": {"message": "Not Found"}}, "HTTP 404"),
        ({"status": 200, "raw": b"<html>maintenance</html>"}, "the answer is not JSON"),
        ({"status": 200, "body": [1, 2]}, "the answer is not an object"),
    ],
)
def test_an_answer_that_is_not_a_page_fails_the_pull_without_retrying(
    provider: ProviderServer, settings: Any, admin_actor: Actor, answer: dict[str, Any], error: str
) -> None:
    provider.add(GITHUB_FIRST, answer["status"], answer.get("body"), answer.get("headers"), raw=answer.get("raw"))

    imp = pull.pull_source("github", actor=admin_actor)

    assert len(provider.seen) == 1
    assert_failed_and_nothing_imported(imp, settings, error=error)


def test_a_slack_error_answer_fails_the_pull(provider: ProviderServer, settings: Any, admin_actor: Actor) -> None:
    provider.add(SLACK_FIRST, 200, {"ok": False, "error": "not_allowed_token_type"})

    imp = pull.pull_source("slack", actor=admin_actor)

    assert_failed_and_nothing_imported(imp, settings, error="Slack answered an error (not_allowed_token_type)")


def test_objects_deleted_while_the_pull_runs_are_skipped(provider: ProviderServer, tmp_path: Path) -> None:
    provider.add("GET /v1.0/servicePrincipals/9e1c6b2a-0000-4a6b-9c1e-111111111112", 404, {"error": {}})
    provider.add("GET /v1.0/users/2f4d9c3e-0000-4e5f-8a9b-222222222202?$select=id,userPrincipalName,mail", 404, None)
    provider.load("entra")

    pull.download(pull.connector("entra"), tmp_path / "pulled.jsonl")

    assert [_shape(document) for document in documents(tmp_path / "pulled.jsonl")] == [
        "value[2]",
        "value[1]",
        "object 9e1c6b2a-0000-4a6b-9c1e-111111111111",
        "object 2f4d9c3e-0000-4e5f-8a9b-222222222201",
    ]


def test_a_source_without_a_base_url_is_not_pulled(provider: ProviderServer, settings: Any, admin_actor: Actor) -> None:
    settings.DISCOVERY_CONNECTORS = connectors(provider.base, okta={"base_url": ""})

    imp = pull.pull_source("okta", actor=admin_actor)

    assert provider.seen == []
    assert_failed_and_nothing_imported(imp, settings, error="DISCOVERY_OKTA_BASE_URL is not set")


def test_only_iam_admins_pull(provider: ProviderServer, make_user: Callable[..., User]) -> None:
    from django.core.exceptions import PermissionDenied

    provider.load("google")
    with pytest.raises(PermissionDenied):
        pull.pull_source("google", actor=make_user("someone", Role.BUSINESS_USER))
    with pytest.raises(PermissionDenied):
        pull.pull_source("google", actor=Actor.system(on_behalf_of=None))
    assert provider.seen == []
    assert DiscoveryImport.objects.count() == 0


# --- End to end: pulled, then imported ----------------------------------------------------------

EXPECTED_APPS = {
    "google": [
        "123456789012-meetingnotes.apps.googleusercontent.com",
        "223456789012-draftbot.apps.googleusercontent.com",
    ],
    "entra": ["a1a1a1a1-0000-4000-8000-aaaaaaaaaaa1", "a1a1a1a1-0000-4000-8000-aaaaaaaaaaa2"],
    "slack": ["A07INVENTED1", "A07INVENTED2"],
    "github": ["910001", "910002", "910003"],
    "okta": ["0oainventedai1", "0oainventedai2"],  # the REVOKED grant's client is not listed
}
# The people pages fetched beside the grants name whom each consent belongs to.
EXPECTED_EMAILS = {
    "google": {"alice@example.com", "carol@example.com"},
    "entra": {"alice@example.com", "dave@example.com", ""},  # "": the admin consent for everyone
    "slack": {""},
    "github": {""},
    "okta": {"alice@example.com", "carol@example.com"},
}


@pytest.mark.parametrize("source", SOURCES)
def test_a_pull_imports_the_providers_complete_listing(
    provider: ProviderServer, settings: Any, admin_actor: Actor, source: str
) -> None:
    provider.load(source)

    imp = pull.pull_source(source, actor=admin_actor)

    assert imp.status == ImportStatus.SUCCEEDED, imp.error
    assert (imp.method, imp.complete, imp.tenant) == (ImportMethod.PULL, True, TENANTS[source])
    assert imp.started_by is not None and imp.started_by.username == "iam-pull"
    assert (
        sorted(DiscoveredApp.objects.filter(source=source, present=True).values_list("app_key", flat=True))
        == (EXPECTED_APPS[source])
    )
    emails = set(DiscoveredConsent.objects.filter(app__source=source).values_list("person_email", flat=True))
    assert emails == EXPECTED_EMAILS[source]
    assert spool_files(settings) == []
    assert provider.unexpected == []


def test_a_failed_pull_leaves_what_the_last_pull_found_present(
    provider: ProviderServer, settings: Any, admin_actor: Actor
) -> None:
    provider.load("github")
    assert pull.pull_source("github", actor=admin_actor).status == ImportStatus.SUCCEEDED
    provider.routes.clear()
    provider.add(GITHUB_FIRST, 200, {"total_count": 3, "installations": []}, {"Link": '<{base}/x?page=2>; rel="next"'})
    provider.add("GET /x?page=2", 503)

    failed = pull.pull_source("github", actor=admin_actor)

    assert failed.status == ImportStatus.FAILED
    assert "HTTP 503, given up after 3 tries" in failed.error
    # The first page listed nothing, but a partial listing is never imported: nothing is gone.
    assert DiscoveredApp.objects.filter(source="github", present=True).count() == 3
    assert not Finding.objects.filter(kind=FindingKind.GONE).exists()
    assert spool_files(settings) == []


def test_the_scheduled_pull_pulls_every_configured_source_and_one_failing_stops_none(
    provider: ProviderServer, settings: Any, make_user: Callable[..., User]
) -> None:
    owner = make_user("iam-owner", Role.IAM_ADMIN)
    settings.DISCOVERY_PULL_OWNER = "iam-owner"
    settings.DISCOVERY_CONNECTORS = connectors(provider.base, okta={"token": ""})  # okta: not configured
    for source in ("google", "entra", "github", "okta"):
        provider.load(source)
    provider.add(SLACK_FIRST, 500, {"ok": False})

    results = tasks.pull_all()

    assert results == {"google": "succeeded", "entra": "succeeded", "slack": "failed", "github": "succeeded"}
    imports = DiscoveryImport.objects.filter(method=ImportMethod.PULL)
    assert sorted(imports.values_list("source", "status")) == [
        ("entra", "succeeded"),
        ("github", "succeeded"),
        ("google", "succeeded"),
        ("slack", "failed"),
    ]
    assert set(imports.values_list("started_by", flat=True)) == {owner.pk}
    assert not provider.requests(prefix="/api/v1/")  # okta has no read token: never asked


def test_the_scheduled_pull_needs_someone_to_answer_for_it(provider: ProviderServer, db: Any) -> None:
    provider.load("google")

    assert tasks.pull_all() == {}
    assert provider.seen == []
    assert DiscoveryImport.objects.count() == 0
