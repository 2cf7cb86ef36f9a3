"""Trusted workload issuers: IAM admins keep them (every change audited), each kind's rules hold
whoever calls, reviewers and auditors read them, and nobody else sees them — pages and API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance import outbound
from governance.exceptions import IllegalTransition, NotAllowed, ValidationFailed
from governance.models import AuditEvent, User
from inventory import issuer_keys, services, views
from inventory.models import Integration, TrustedIssuer, WorkloadBinding
from tests.outbound_support import FakeDNS
from tests.runtime.issuer_support import IssuerKey, TestIssuer

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
OIDC = {"name": "Production cluster", "kind": "oidc", "issuer": "https://kube.example.com"}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Names resolve to nothing (an https issuer's fetch fails as "unreachable", nothing leaves
    the machine) and no key set stays cached across tests."""
    monkeypatch.setattr(outbound, "resolve", FakeDNS())
    issuer_keys.forget()
    yield
    issuer_keys.forget()


@pytest.fixture
def live_issuer(settings: Any) -> Iterator[TestIssuer]:
    issuer = TestIssuer()
    settings.OUTBOUND_ALLOWED_HOSTS = [*settings.OUTBOUND_ALLOWED_HOSTS, issuer.host]
    yield issuer
    issuer.stop()


def static_values(key: IssuerKey | None = None, **over: Any) -> dict[str, Any]:
    key = key or IssuerKey.generate()
    return {
        "name": "Partner keys",
        "kind": "static_jwks",
        "issuer": "partner-idp",
        "jwks": {"keys": [key.public_jwk()]},
        **over,
    }


def bind(issuer: TrustedIssuer, integration: Integration) -> WorkloadBinding:
    """A binding written directly: bindings have their own service and tests."""
    return WorkloadBinding.objects.create(
        integration=integration, issuer=issuer, subject="system:serviceaccount:ai:notes", claims_key="0" * 64
    )


# --- Services ---------------------------------------------------------------------------------


def test_an_iam_admin_adds_an_issuer_and_it_is_audited_with_them_as_owner(iam_admin: User) -> None:
    issuer = services.trusted_issuer_create(actor=iam_admin, values=OIDC)

    assert issuer.is_active and issuer.allowed_algorithms == ["RS256", "ES256", "ES384", "PS256"]
    event = AuditEvent.objects.get(action="trusted_issuer.created")
    assert event.owner == iam_admin and event.target_id == str(issuer.pk)
    assert event.before is None and (event.after or {})["issuer"] == "https://kube.example.com"


@pytest.mark.parametrize("who", ["owner", "reviewer", "auditor"])
def test_only_iam_admins_keep_issuers(who: str, request: pytest.FixtureRequest, iam_admin: User) -> None:
    actor = request.getfixturevalue(who)
    with pytest.raises(NotAllowed):
        services.trusted_issuer_create(actor=actor, values=OIDC)
    issuer = services.trusted_issuer_create(actor=iam_admin, values=OIDC)
    with pytest.raises(NotAllowed):
        services.trusted_issuer_update(actor=actor, issuer=issuer, values={"name": "Mine"})
    with pytest.raises(NotAllowed):
        services.trusted_issuer_set_active(actor=actor, issuer=issuer, active=False)
    assert AuditEvent.objects.filter(action__startswith="trusted_issuer.").count() == 1


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({**OIDC, "issuer": "http://kube.example.com"}, "issuer", "Use an https URL"),
        ({**OIDC, "issuer": "https://kube.example.com?x=1"}, "issuer", "no query or fragment"),
        ({**OIDC, "discovery_url": "https://user:pw@kube.example.com/d"}, "discovery_url", "valid URL"),
        ({**OIDC, "allowed_algorithms": ["HS256"]}, "allowed_algorithms", "can never be allowed"),
        ({**OIDC, "allowed_algorithms": ["ES256", "none"]}, "allowed_algorithms", "can never be allowed"),
        ({**OIDC, "allowed_algorithms": []}, "allowed_algorithms", "at least one"),
        ({**OIDC, "allowed_algorithms": ["ES257"]}, "allowed_algorithms", "Unknown"),
        ({**OIDC, "clock_skew_seconds": 61}, "clock_skew_seconds", "from 0 to 60"),
        ({**OIDC, "jwks_uri": "https://kube.example.com/keys"}, "jwks_uri", "discovery document"),
        ({**OIDC, "issuer": ""}, "issuer", "required"),
        ({**OIDC, "kind": "saml"}, "kind", "Choose one of"),
        (
            {"name": "Mesh", "kind": "spiffe", "issuer": "spiffe://Example.org/ns", "jwks_uri": "https://b.example.com"},
            "issuer",
            "spiffe://<trust domain>",
        ),
        (
            {"name": "Mesh", "kind": "spiffe", "issuer": "spiffe://example.org", "jwks_uri": "https://b.example.com",
             "allowed_algorithms": ["ES256", "EdDSA"]},
            "allowed_algorithms",
            "remove EdDSA",
        ),
        ({"name": "Mesh", "kind": "spiffe", "issuer": "spiffe://example.org"}, "jwks_uri", "bundle URL"),
        (static_values(jwks={}), "jwks", "Paste"),
        (static_values(jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), "jwks", "symmetric key"),
        (static_values(jwks_uri="https://keys.example.com"), "jwks_uri", "paste the keys"),
    ],
)  # fmt: skip
def test_each_kinds_rules_are_enforced_with_a_field_error(
    iam_admin: User, values: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.trusted_issuer_create(actor=iam_admin, values=values)
    assert message in " ".join(refused.value.errors[field])
    assert not TrustedIssuer.objects.exists()


def test_pasted_keys_must_be_public(iam_admin: User) -> None:
    key = IssuerKey.generate("RS256")
    with pytest.raises(ValidationFailed) as refused:
        services.trusted_issuer_create(actor=iam_admin, values=static_values(jwks={"keys": [key.private_jwk()]}))
    assert "private key material" in refused.value.errors["jwks"][0]
    issuer = services.trusted_issuer_create(actor=iam_admin, values=static_values(key))
    assert issuer.keys_fetched_at is not None
    assert (AuditEvent.objects.get().after or {})["pasted_keys"] == [{"kid": key.kid, "algorithm": "RS256"}]


def test_a_spiffe_trust_domain_takes_a_bundle_url_or_a_pasted_bundle(iam_admin: User) -> None:
    key = IssuerKey.generate()
    values = {"name": "Mesh", "kind": "spiffe", "issuer": "spiffe://example.org", "jwks": {"keys": [key.public_jwk()]}}
    pasted = services.trusted_issuer_create(actor=iam_admin, values=values)
    assert services.keys_are_pasted(pasted)
    with pytest.raises(ValidationFailed, match="not both"):
        services.trusted_issuer_update(actor=iam_admin, issuer=pasted, values={"jwks_uri": "https://b.example.com"})
    fetched = services.trusted_issuer_update(
        actor=iam_admin, issuer=pasted, values={"jwks_uri": "https://b.example.com", "jwks": {}}
    )
    assert not services.keys_are_pasted(fetched) and fetched.jwks == {} and fetched.keys_fetched_at is None


def test_an_issuer_is_unique_and_its_kind_fixed(iam_admin: User) -> None:
    issuer = services.trusted_issuer_create(actor=iam_admin, values=OIDC)
    with pytest.raises(ValidationFailed) as duplicate:
        services.trusted_issuer_create(actor=iam_admin, values={**OIDC, "name": "Again"})
    assert "already" in duplicate.value.errors["issuer"][0]
    with pytest.raises(ValidationFailed) as kind:
        services.trusted_issuer_update(actor=iam_admin, issuer=issuer, values={"kind": "static_jwks"})
    assert "fixed" in kind.value.errors["kind"][0]


def test_a_change_is_audited_with_before_and_after_and_a_new_key_source_drops_the_keys(
    iam_admin: User, live_issuer: TestIssuer
) -> None:
    issuer = services.trusted_issuer_create(
        actor=iam_admin, values={**OIDC, "issuer": live_issuer.issuer, "discovery_url": live_issuer.discovery_url}
    )
    issuer_keys.refresh(issuer)
    assert issuer.jwks and issuer.jwks_uri == live_issuer.jwks_uri
    before_version = issuer.updated_at
    # Emptying the discovery URL names the same document (the default one): the keys stay.
    same = services.trusted_issuer_update(actor=iam_admin, issuer=issuer, values={"discovery_url": ""})
    assert same.jwks == issuer.jwks and same.keys_fetched_at is not None

    changed = services.trusted_issuer_update(
        actor=iam_admin,
        issuer=issuer,
        values={"clock_skew_seconds": 10, "discovery_url": live_issuer.base_url + "/other"},
    )

    event = AuditEvent.objects.filter(action="trusted_issuer.changed").latest("id")
    assert ((event.before or {})["clock_skew_seconds"], (event.after or {})["clock_skew_seconds"]) == (30, 10)
    assert event.owner == iam_admin
    assert changed.updated_at > before_version
    assert changed.jwks == {} and changed.keys_fetched_at is None and changed.jwks_uri == ""


def test_a_change_that_changes_nothing_is_not_audited(iam_admin: User) -> None:
    issuer = services.trusted_issuer_create(actor=iam_admin, values=OIDC)
    services.trusted_issuer_update(actor=iam_admin, issuer=issuer, values={"name": OIDC["name"]})
    assert not AuditEvent.objects.filter(action="trusted_issuer.changed").exists()


def test_an_issuer_with_bindings_may_be_deactivated_and_that_is_audited(
    iam_admin: User, owner: User, make_integration: Callable[..., Integration]
) -> None:
    issuer = services.trusted_issuer_create(actor=iam_admin, values=OIDC)
    bind(issuer, make_integration(owner))

    services.trusted_issuer_set_active(actor=iam_admin, issuer=issuer, active=False, reason="Cluster retired")

    event = AuditEvent.objects.get(action="trusted_issuer.deactivated")
    assert event.after == {"is_active": False, "bindings": 1} and event.reason == "Cluster retired"
    with pytest.raises(IllegalTransition):
        services.trusted_issuer_set_active(actor=iam_admin, issuer=issuer, active=False)
    services.trusted_issuer_set_active(actor=iam_admin, issuer=issuer, active=True)
    assert AuditEvent.objects.filter(action="trusted_issuer.activated").count() == 1


# --- Pages ------------------------------------------------------------------------------------


def test_the_list_shows_kind_issuer_keys_and_bindings_in_a_fixed_number_of_queries(
    iam_admin: User, owner: User, web_as: Any, make_integration: Callable[..., Integration]
) -> None:
    first = services.trusted_issuer_create(actor=iam_admin, values=OIDC)
    bind(first, make_integration(owner))
    client = web_as(iam_admin)
    client.get("/inventory/issuers/")  # the admin's roles, cached from then on
    with CaptureQueriesContext(connection) as one:
        page = client.get("/inventory/issuers/")
    for number in range(4):
        services.trusted_issuer_create(actor=iam_admin, values=static_values(issuer=f"idp-{number}", name=f"K{number}"))
    with CaptureQueriesContext(connection) as five:
        more = client.get("/inventory/issuers/")
    assert page.status_code == more.status_code == 200
    assert len(five.captured_queries) == len(one.captured_queries)
    text = page.content.decode()
    assert "Production cluster" in text and "OpenID Connect issuer" in text and "https://kube.example.com" in text
    assert "No keys yet" in text and "<td>1</td>" in text
    assert "1 key (pasted)" in more.content.decode()


def test_the_detail_page_lists_a_page_of_bound_integrations_and_counts_them_all(
    iam_admin: User, owner: User, web_as: Any, make_integration: Callable[..., Integration], monkeypatch: Any
) -> None:
    monkeypatch.setattr(views, "ISSUER_BINDINGS_SHOWN", 2)
    issuer = services.trusted_issuer_create(actor=iam_admin, values=static_values())
    for number in range(3):
        WorkloadBinding.objects.create(
            integration=make_integration(owner, name=f"Bound {number}"),
            issuer=issuer,
            subject=f"system:serviceaccount:ai:agent-{number}",
            claims_key="0" * 64,
        )
    client = web_as(iam_admin)
    client.get(f"/inventory/issuers/{issuer.pk}/")
    with CaptureQueriesContext(connection) as three:
        text = client.get(f"/inventory/issuers/{issuer.pk}/").content.decode()
    assert "Bound 0" in text and "Bound 1" in text and "Bound 2" not in text
    assert "Showing the first 2 of 3 bound integrations" in text and "(3 now)" in text
    WorkloadBinding.objects.create(
        integration=make_integration(owner, name="Bound 3"), issuer=issuer, subject="sa-3", claims_key="0" * 64
    )
    with CaptureQueriesContext(connection) as four:
        client.get(f"/inventory/issuers/{issuer.pk}/")
    assert len(four.captured_queries) == len(three.captured_queries)


def test_outsiders_see_no_issuer_page(owner: User, iam_admin: User, web_as: Any, client: Any) -> None:
    issuer = services.trusted_issuer_create(actor=iam_admin, values=OIDC)
    urls = ["/inventory/issuers/", f"/inventory/issuers/{issuer.pk}/", "/inventory/issuers/new/",
            f"/inventory/issuers/{issuer.pk}/edit/"]  # fmt: skip
    for url in urls:
        assert client.get(url).status_code == 302  # anonymous: to the sign-in page
    business = web_as(owner)
    for url in urls:
        assert business.get(url).status_code == 404, url
    assert business.post(f"/inventory/issuers/{issuer.pk}/refresh-keys/").status_code == 404
    assert business.post(f"/inventory/issuers/{issuer.pk}/active/", {"active": "false"}).status_code == 404
    assert TrustedIssuer.objects.get().is_active


@pytest.mark.parametrize("who", ["reviewer", "auditor"])
def test_reviewers_and_auditors_read_but_do_not_change(
    who: str, request: pytest.FixtureRequest, iam_admin: User, web_as: Any, live_issuer: TestIssuer
) -> None:
    issuer = live_issuer.trusted_issuer()
    client = web_as(request.getfixturevalue(who))
    assert client.get("/inventory/issuers/").status_code == 200
    detail = client.get(f"/inventory/issuers/{issuer.pk}/").content.decode()
    assert live_issuer.issuer in detail and "Refresh keys now" not in detail and "Deactivate" not in detail
    assert client.get("/inventory/issuers/new/").status_code == 403
    assert client.get(f"/inventory/issuers/{issuer.pk}/edit/").status_code == 403
    assert client.post(f"/inventory/issuers/{issuer.pk}/refresh-keys/").status_code == 403
    assert client.post(f"/inventory/issuers/{issuer.pk}/active/", {"active": "false"}).status_code == 403
    assert sum(live_issuer.requests.values()) == 0 and TrustedIssuer.objects.get().is_active


def test_the_form_keeps_the_input_and_shows_the_services_field_error(iam_admin: User, web_as: Any) -> None:
    data = {"name": "Cluster A", "kind": "oidc", "issuer": "http://kube.example.com", "allowed_algorithms": ["ES256"],
            "max_token_age_seconds": 3600, "clock_skew_seconds": 30, "key_cache_seconds": 300}  # fmt: skip
    response = web_as(iam_admin).post("/inventory/issuers/new/", data)
    assert response.status_code == 200
    text = response.content.decode()
    assert 'id="id_issuer-error"' in text and "Use an https URL" in text
    assert 'value="Cluster A"' in text and 'value="http://kube.example.com"' in text
    assert not TrustedIssuer.objects.exists()


def test_a_pasted_jwks_nested_too_deep_is_a_field_error_not_a_crash(iam_admin: User, web_as: Any) -> None:
    data = {"name": "Partner keys", "kind": "static_jwks", "issuer": "partner-idp", "jwks": "[" * 100_000,
            "allowed_algorithms": ["ES256"], "max_token_age_seconds": 3600, "clock_skew_seconds": 30,
            "key_cache_seconds": 300}  # fmt: skip
    response = web_as(iam_admin).post("/inventory/issuers/new/", data)
    assert response.status_code == 200
    text = response.content.decode()
    assert 'id="id_jwks-error"' in text and "Not valid JSON" in text and 'value="Partner keys"' in text
    assert not TrustedIssuer.objects.exists()


def test_a_new_issuer_from_the_form_gets_its_keys_at_once(
    iam_admin: User, web_as: Any, live_issuer: TestIssuer
) -> None:
    data = {"name": "Cluster A", "kind": "oidc", "issuer": live_issuer.issuer, "allowed_algorithms": ["ES256"],
            "max_token_age_seconds": 3600, "clock_skew_seconds": 30, "key_cache_seconds": 300}  # fmt: skip
    response = web_as(iam_admin).post("/inventory/issuers/new/", data, follow=True)
    issuer = TrustedIssuer.objects.get()
    assert response.redirect_chain[-1][0] == f"/inventory/issuers/{issuer.pk}/"
    text = response.content.decode()
    assert live_issuer.key.kid in text and live_issuer.jwks_uri in text
    assert issuer.allowed_algorithms == ["ES256"]


def test_the_edit_form_changes_a_static_jwks(iam_admin: User, web_as: Any) -> None:
    issuer = services.trusted_issuer_create(actor=iam_admin, values=static_values())
    client = web_as(iam_admin)
    form = client.get(f"/inventory/issuers/{issuer.pk}/edit/").content.decode()
    assert issuer.jwks["keys"][0]["kid"] in form  # the pasted set, to edit
    new_key = IssuerKey.generate("RS256")
    data = {"name": "Partner keys", "issuer": "partner-idp", "jwks": f'{{"keys": [{json.dumps(new_key.public_jwk())}]}}',
            "allowed_algorithms": ["RS256"], "max_token_age_seconds": 600, "clock_skew_seconds": 5,
            "key_cache_seconds": 300}  # fmt: skip
    assert client.post(f"/inventory/issuers/{issuer.pk}/edit/", data).status_code == 302
    issuer.refresh_from_db()
    assert issuer.jwks["keys"][0]["kid"] == new_key.kid and issuer.kind == "static_jwks"
    changed = AuditEvent.objects.get(action="trusted_issuer.changed")
    assert (changed.after or {})["pasted_keys"][0]["kid"] == new_key.kid


def test_a_failed_refresh_is_shown_on_the_page_and_the_keys_are_kept(
    iam_admin: User, web_as: Any, live_issuer: TestIssuer
) -> None:
    issuer = live_issuer.trusted_issuer()
    client = web_as(iam_admin)
    client.post(f"/inventory/issuers/{issuer.pk}/refresh-keys/")
    live_issuer.failing = 502

    answer = client.post(f"/inventory/issuers/{issuer.pk}/refresh-keys/", follow=True)

    text = answer.content.decode()
    assert "Last key refresh failed" in text and "The discovery document answered HTTP 502." in text
    assert "The keys fetched before are still used" in text and live_issuer.key.kid in text
    assert "The keys could not be refreshed" in text  # the button's own message
    assert live_issuer.requests["/.well-known/openid-configuration"] == 2
    listing = client.get("/inventory/issuers/").content.decode()
    assert "Refresh failed" in listing and "1 key kept" in listing


def test_deactivating_from_the_page_says_what_it_does_to_bound_integrations(
    iam_admin: User, owner: User, web_as: Any, make_integration: Callable[..., Integration]
) -> None:
    issuer = services.trusted_issuer_create(actor=iam_admin, values=OIDC)
    bind(issuer, make_integration(owner, name="Notes bot"))
    client = web_as(iam_admin)
    detail = client.get(f"/inventory/issuers/{issuer.pk}/").content.decode()
    assert "Deactivating is allowed while integrations are bound to it (1 now)" in detail and "Notes bot" in detail

    after = client.post(f"/inventory/issuers/{issuer.pk}/active/", {"active": "false"}, follow=True)

    assert "every token it issues is refused" in after.content.decode()
    assert not TrustedIssuer.objects.get().is_active


# --- API --------------------------------------------------------------------------------------


def test_the_api_lists_issuers_for_readers_in_a_fixed_number_of_queries(
    iam_admin: User, reviewer: User, api_as: Any
) -> None:
    services.trusted_issuer_create(actor=iam_admin, values=OIDC)
    client = api_as(reviewer)
    client.get("/api/v1/trusted-issuers/")  # the reviewer's roles, cached from then on
    with CaptureQueriesContext(connection) as one:
        first = client.get("/api/v1/trusted-issuers/")
    for number in range(4):
        services.trusted_issuer_create(actor=iam_admin, values=static_values(issuer=f"idp-{number}", name=f"K{number}"))
    with CaptureQueriesContext(connection) as five:
        more = client.get("/api/v1/trusted-issuers/", {"ordering": "issuer"})
    assert len(five.captured_queries) == len(one.captured_queries)
    row = first.json()["results"][0]
    assert row["kind"] == "oidc" and row["bindings_count"] == 0 and row["keys"] == [] and row["jwks"] is None
    assert more.json()["count"] == 5
    assert client.get("/api/v1/trusted-issuers/", {"kind": "static_jwks"}).json()["count"] == 4


def test_outsiders_of_the_api(owner: User, iam_admin: User, api_as: Any, api_client: Any) -> None:
    issuer = services.trusted_issuer_create(actor=iam_admin, values=OIDC)
    anonymous = api_client.get("/api/v1/trusted-issuers/")
    assert anonymous.status_code == 401 and anonymous["Content-Type"] == PROBLEM
    business = api_as(owner)
    assert business.get("/api/v1/trusted-issuers/").json()["count"] == 0
    hidden = business.get(f"/api/v1/trusted-issuers/{issuer.pk}/")
    assert hidden.status_code == 404 and hidden["Content-Type"] == PROBLEM
    assert business.patch(f"/api/v1/trusted-issuers/{issuer.pk}/", {"name": "x"}, format="json").status_code == 404
    refused = business.post("/api/v1/trusted-issuers/", OIDC, format="json")
    assert refused.status_code == 403 and refused["Content-Type"] == PROBLEM


@pytest.mark.parametrize("who", ["reviewer", "auditor"])
def test_readers_may_not_write_through_the_api(
    who: str, request: pytest.FixtureRequest, iam_admin: User, api_as: Any
) -> None:
    issuer = services.trusted_issuer_create(actor=iam_admin, values=OIDC)
    client = api_as(request.getfixturevalue(who))
    assert client.get(f"/api/v1/trusted-issuers/{issuer.pk}/").status_code == 200
    assert (
        client.post("/api/v1/trusted-issuers/", {**OIDC, "issuer": "https://b.example.com"}, format="json").status_code
        == 403
    )
    assert client.patch(f"/api/v1/trusted-issuers/{issuer.pk}/", {"is_active": False}, format="json").status_code == 403
    assert client.post(f"/api/v1/trusted-issuers/{issuer.pk}/refresh-keys/").status_code == 403
    assert TrustedIssuer.objects.get().is_active


def test_an_hmac_algorithm_is_a_problem_naming_the_field(iam_admin: User, api_as: Any) -> None:
    response = api_as(iam_admin).post(
        "/api/v1/trusted-issuers/", {**OIDC, "allowed_algorithms": ["HS256"]}, format="json"
    )
    # The schema cannot say it (any algorithm name is a string): a 422 naming the field.
    assert response.status_code == 422 and response["Content-Type"] == PROBLEM
    assert "can never be allowed" in response.json()["errors"]["allowed_algorithms"][0]


def test_a_post_with_the_same_idempotency_key_creates_one_issuer(iam_admin: User, token_client: Any) -> None:
    client = token_client(iam_admin)
    first = client.post("/api/v1/trusted-issuers/", OIDC, format="json", HTTP_IDEMPOTENCY_KEY="ISS-1")
    again = client.post("/api/v1/trusted-issuers/", OIDC, format="json", HTTP_IDEMPOTENCY_KEY="ISS-1")
    assert first.status_code == again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert first.json() == again.json() and TrustedIssuer.objects.count() == 1
    assert first.json()["keys"] == [] and first.json()["keys_fetched_at"] is None  # fetched on first use


def test_the_api_changes_deactivates_and_refreshes(iam_admin: User, api_as: Any, live_issuer: TestIssuer) -> None:
    issuer = live_issuer.trusted_issuer()
    client = api_as(iam_admin)
    changed = client.patch(
        f"/api/v1/trusted-issuers/{issuer.pk}/", {"key_cache_seconds": 600, "is_active": False}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["key_cache_seconds"] == 600 and changed.json()["is_active"] is False
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"trusted_issuer.changed", "trusted_issuer.deactivated"} <= actions
    refreshed = client.post(f"/api/v1/trusted-issuers/{issuer.pk}/refresh-keys/")
    assert refreshed.status_code == 200
    assert refreshed.json()["keys"] == [{"kid": live_issuer.key.kid, "algorithm": "ES256"}]
    assert refreshed.json()["keys_error"] == "" and refreshed.json()["keys_stale"] is False
    skew = client.patch(f"/api/v1/trusted-issuers/{issuer.pk}/", {"clock_skew_seconds": 61}, format="json")
    assert skew.status_code == 400 and "clock_skew_seconds" in skew.json()["errors"]
