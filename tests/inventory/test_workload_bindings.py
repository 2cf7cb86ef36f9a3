"""Binding an integration to its workload identity: who may, the input rules, one identity per
integration, audit and history, re-review of high-risk integrations, what the runtime records
back, the identity status (proven / bound / declared / none) on the pages and in the API."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals import services as approvals_services
from approvals.models import AccessRequest, RequestStatus, RequestType
from governance.actors import Actor
from governance.exceptions import Conflict, NotAllowed, NotFound, Unprocessable, ValidationFailed
from governance.models import AuditEvent, User
from inventory import selectors, services
from inventory.choices import IdentityStatus
from inventory.models import Integration, TrustedIssuer, WorkloadBinding
from inventory.signals import integration_identity_changed
from tests.inventory.conftest import grant_all

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def k8s(db: Any) -> TrustedIssuer:
    return TrustedIssuer.objects.create(
        name="Kubernetes prod", kind="oidc", issuer="https://k8s.example.com", jwks={"keys": []}
    )


@pytest.fixture
def spiffe(db: Any) -> TrustedIssuer:
    return TrustedIssuer.objects.create(name="Mesh", kind="spiffe", issuer="spiffe://example.org", jwks={"keys": []})


@pytest.fixture
def notes(owner: User, make_integration: Callable[..., Integration]) -> Integration:
    return make_integration(owner, name="Notes bot")


def bind(actor: Any, integration: Integration, issuer: TrustedIssuer, subject: str, **claims: Any) -> WorkloadBinding:
    return services.workload_binding_set(
        actor=actor, integration=integration, issuer=issuer, subject=subject, required_claims=claims
    )


def make_high(integration: Integration, approver: User, *, status: str = "active") -> Integration:
    """Active (with its grants) or pending, at the high tier."""
    if status == "active":
        grant_all(integration, approver)
    else:
        services.integration_transition(
            actor=Actor.system(on_behalf_of=integration.business_owner), integration=integration, to_status=status
        )
    Integration.objects.filter(pk=integration.pk).update(risk_tier="high", risk_score=45)
    integration.refresh_from_db()
    return integration


# --- The service: who may, and the rules ------------------------------------------------------


def test_owner_binds_the_identity_audited_with_the_business_owner_and_history_user(
    owner: User, notes: Integration, k8s: TrustedIssuer
) -> None:
    binding = bind(owner, notes, k8s, "system:serviceaccount:ai:notes", **{"kubernetes.io.namespace": "ai"})
    assert binding.claims_key == hashlib.sha256(b'{"kubernetes.io.namespace":"ai"}').hexdigest()
    event = AuditEvent.objects.get(action="integration.identity_bound")
    assert event.target_id == str(notes.pk) and event.owner_username == "owner" and event.actor_username == "owner"
    assert event.before is None
    assert event.after == {
        "issuer": "https://k8s.example.com",
        "issuer_id": k8s.pk,
        "subject": "system:serviceaccount:ai:notes",
        "required_claims": {"kubernetes.io.namespace": "ai"},
    }
    assert binding.history.get().history_user == owner


def test_iam_admin_binds_any_integration(iam_admin: User, notes: Integration, k8s: TrustedIssuer) -> None:
    bind(iam_admin, notes, k8s, "system:serviceaccount:ai:notes")
    event = AuditEvent.objects.get(action="integration.identity_bound")
    assert event.actor_username == "admin" and event.owner_username == "owner"


@pytest.mark.parametrize("who", ["outsider", "reviewer", "auditor"])
def test_only_owners_and_iam_admins_bind(request: Any, who: str, notes: Integration, k8s: TrustedIssuer) -> None:
    with pytest.raises(NotAllowed):
        bind(request.getfixturevalue(who), notes, k8s, "system:serviceaccount:ai:notes")
    assert not WorkloadBinding.objects.exists() and not AuditEvent.objects.filter(action__contains="identity").exists()


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("", "Give the subject"),
        ("   ", "Give the subject"),
        ("repo:org/repo env:prod", "no spaces"),
        ("x" * 301, "At most 300"),
    ],
)
def test_subject_is_one_word_of_at_most_300_characters(
    owner: User, notes: Integration, k8s: TrustedIssuer, subject: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        bind(owner, notes, k8s, subject)
    assert message in refused.value.errors["subject"][0]


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("system:serviceaccount:ai:notes", "SPIFFE ID"),
        ("spiffe://example.org", "SPIFFE ID"),
        ("spiffe://example.org/ns//sa", "SPIFFE ID"),
        ("spiffe://example.org/ns/ai?x=1", "SPIFFE ID"),
        ("spiffe://other.org/ns/ai/sa/notes", "trust domain example.org"),
    ],
)
def test_a_spiffe_issuer_takes_a_spiffe_id_of_its_trust_domain(
    owner: User, notes: Integration, spiffe: TrustedIssuer, subject: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        bind(owner, notes, spiffe, subject)
    assert message in refused.value.errors["subject"][0]


def test_a_spiffe_id_of_the_trust_domain_is_accepted(owner: User, notes: Integration, spiffe: TrustedIssuer) -> None:
    assert bind(owner, notes, spiffe, "spiffe://example.org/ns/ai/sa/notes").subject.endswith("/sa/notes")


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"repository": {"id": 1}}, "no list, object or null"),
        ({"groups": ["a"]}, "no list, object or null"),
        ({"env": None}, "no list, object or null"),
        ({f"c{n}": "v" for n in range(11)}, "At most 10"),
        ({"sub": "x"}, "checked by the token verification"),
        ({"a..b": "x"}, "claim names joined by dots"),
        ({"a b": "x"}, "claim names joined by dots"),
        ({"ratio": float("nan")}, "finite"),
        ({"env": "x" * 301}, "At most 300"),
    ],
)
def test_required_claims_are_a_flat_map_of_at_most_ten_plain_values(
    owner: User, notes: Integration, k8s: TrustedIssuer, claims: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.workload_binding_set(
            actor=owner, integration=notes, issuer=k8s, subject="sa:notes", required_claims=claims
        )
    assert message in refused.value.errors["required_claims"][0]


def test_numbers_and_booleans_are_claim_values(owner: User, notes: Integration, k8s: TrustedIssuer) -> None:
    binding = bind(owner, notes, k8s, "sa:notes", repository_id=123456, ref_protected=True, weight=0.5)
    binding.refresh_from_db()
    assert binding.required_claims == {"repository_id": 123456, "ref_protected": True, "weight": 0.5}


def test_an_inactive_issuer_is_refused(owner: User, notes: Integration, k8s: TrustedIssuer) -> None:
    TrustedIssuer.objects.filter(pk=k8s.pk).update(is_active=False)
    with pytest.raises(Unprocessable) as refused:
        bind(owner, notes, k8s, "sa:notes")
    assert "active trusted issuer" in refused.value.errors["issuer"][0]


def test_claims_key_does_not_depend_on_the_claims_order(
    owner: User, notes: Integration, k8s: TrustedIssuer, make_integration: Callable[..., Integration]
) -> None:
    first = services.workload_binding_set(
        actor=owner, integration=notes, issuer=k8s, subject="sa:x", required_claims={"b": "2", "a": "1"}
    )
    other = make_integration(owner, name="Other bot")
    with pytest.raises(Unprocessable):
        services.workload_binding_set(
            actor=owner, integration=other, issuer=k8s, subject="sa:x", required_claims={"a": "1", "b": "2"}
        )
    assert (
        first.claims_key == hashlib.sha256(json.dumps({"a": "1", "b": "2"}, separators=(",", ":")).encode()).hexdigest()
    )


def test_an_identity_bound_elsewhere_is_named_only_to_who_may_see_that_integration(
    owner: User,
    outsider: User,
    iam_admin: User,
    notes: Integration,
    k8s: TrustedIssuer,
    make_integration: Callable[..., Integration],
) -> None:
    bind(owner, notes, k8s, "sa:shared")
    theirs = make_integration(outsider, name="Their bot")
    with pytest.raises(Unprocessable) as hidden:
        bind(outsider, theirs, k8s, "sa:shared")
    assert hidden.value.errors["subject"] == ["This identity is already bound to another integration."]
    with pytest.raises(Unprocessable) as named:
        bind(iam_admin, theirs, k8s, "sa:shared")
    assert named.value.errors["subject"] == ["This identity is already bound to Notes bot."]
    # Other claims make another identity (the runtime refuses a token matching both).
    assert bind(outsider, theirs, k8s, "sa:shared", namespace="theirs").integration_id == theirs.pk


def test_a_change_is_audited_and_unproven_until_the_next_token(
    owner: User, notes: Integration, k8s: TrustedIssuer, spiffe: TrustedIssuer
) -> None:
    with time_machine.travel(T0 - timedelta(days=1), tick=False):
        bind(owner, notes, k8s, "sa:notes")
    services.workload_bindings_verified({notes.pk: (T0, T0)})
    assert WorkloadBinding.objects.get().first_verified_at == T0
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        changed = bind(owner, notes, spiffe, "spiffe://example.org/ns/ai/sa/notes")
    changed.refresh_from_db()
    assert changed.first_verified_at is None and changed.last_verified_at is None
    event = AuditEvent.objects.get(action="integration.identity_changed")
    assert (event.before or {})["subject"] == "sa:notes" and (event.after or {})["issuer"] == "spiffe://example.org"
    assert WorkloadBinding.objects.count() == 1


def test_giving_the_same_identity_again_changes_nothing(owner: User, notes: Integration, k8s: TrustedIssuer) -> None:
    with time_machine.travel(T0 - timedelta(days=1), tick=False):
        bind(owner, notes, k8s, "sa:notes", env="prod")
    services.workload_bindings_verified({notes.pk: (T0, T0)})
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        again = bind(owner, notes, k8s, "sa:notes", env="prod")
    assert again.first_verified_at is not None
    assert AuditEvent.objects.filter(action__startswith="integration.identity").count() == 1


def test_remove_is_audited_with_its_reason(owner: User, notes: Integration, k8s: TrustedIssuer) -> None:
    bind(owner, notes, k8s, "sa:notes")
    services.workload_binding_remove(actor=owner, integration=notes, reason="moved to another cluster")
    assert not WorkloadBinding.objects.exists()
    event = AuditEvent.objects.get(action="integration.identity_unbound")
    assert event.reason == "moved to another cluster" and event.after is None
    assert (event.before or {})["subject"] == "sa:notes"
    with pytest.raises(NotFound):
        services.workload_binding_remove(actor=owner, integration=notes)


def test_outsider_cannot_remove(owner: User, outsider: User, notes: Integration, k8s: TrustedIssuer) -> None:
    bind(owner, notes, k8s, "sa:notes")
    with pytest.raises(NotAllowed):
        services.workload_binding_remove(actor=outsider, integration=notes)
    assert WorkloadBinding.objects.exists()


def test_a_retired_integration_keeps_its_identity(owner: User, notes: Integration, k8s: TrustedIssuer) -> None:
    bind(owner, notes, k8s, "sa:notes")
    services.integration_retire(actor=owner, integration=notes, reason="done")
    with pytest.raises(Conflict):
        bind(owner, notes, k8s, "sa:other")
    with pytest.raises(Conflict):
        services.workload_binding_remove(actor=owner, integration=notes)


# --- Re-review of high-risk integrations ----------------------------------------------------------


def test_signal_only_for_high_or_critical_integrations_that_run_or_are_decided(
    owner: User, reviewer: User, k8s: TrustedIssuer, make_integration: Callable[..., Integration]
) -> None:
    seen: list[dict[str, Any]] = []
    integration_identity_changed.connect(lambda sender, **kw: seen.append(kw), weak=False, dispatch_uid="t-seen")
    try:
        low = make_integration(owner, name="Low bot")
        grant_all(low, reviewer)
        bind(owner, low, k8s, "sa:low")
        draft = make_integration(owner, name="Draft bot")
        Integration.objects.filter(pk=draft.pk).update(risk_tier="critical")
        draft.refresh_from_db()
        bind(owner, draft, k8s, "sa:draft")
        assert seen == []
        high = make_high(make_integration(owner, name="High bot"), reviewer)
        bind(owner, high, k8s, "sa:high")
        services.workload_binding_remove(actor=owner, integration=high)
    finally:
        integration_identity_changed.disconnect(dispatch_uid="t-seen")
    assert [(kw["old_identity"], kw["new_identity"]) for kw in seen] == [
        ("no workload binding", "sa:high from https://k8s.example.com"),
        ("sa:high from https://k8s.example.com", "no workload binding"),
    ]


def test_an_active_high_risk_integration_whose_identity_changes_is_re_reviewed(
    owner: User, reviewer: User, k8s: TrustedIssuer, make_integration: Callable[..., Integration]
) -> None:
    approvals_services.default_workflows_ensure()
    high = make_high(make_integration(owner, name="High bot"), reviewer)
    bind(owner, high, k8s, "sa:old")
    request = AccessRequest.objects.get(integration=high, type=RequestType.RE_REVIEW)
    assert request.status == RequestStatus.IN_REVIEW
    assert request.justification == (
        "Workload identity changed from no workload binding to sa:old from https://k8s.example.com."
    )
    assert list(request.requested_scopes.values_list("code", flat=True)) == ["msgraph:User.Read"]
    # One open re-review covers later changes too.
    bind(owner, high, k8s, "sa:new", env="prod")
    assert AccessRequest.objects.filter(integration=high, type=RequestType.RE_REVIEW).count() == 1


def test_a_pending_high_risk_integrations_request_starts_its_round_again(
    owner: User, reviewer: User, k8s: TrustedIssuer, make_integration: Callable[..., Integration]
) -> None:
    approvals_services.default_workflows_ensure()
    high = make_high(make_integration(owner, name="High bot"), reviewer, status="pending")
    with transaction.atomic():
        request = approvals_services.request_open(
            actor=owner, integration=high, type=RequestType.REGISTRATION, scopes=list(high.requested_scopes.all())
        )
    bind(owner, high, k8s, "sa:new")
    request.refresh_from_db()
    assert request.round == 2 and request.status == RequestStatus.IN_REVIEW
    restart = AuditEvent.objects.get(action="access_request.restarted", target_id=str(request.pk))
    assert restart.reason.startswith("Workload identity changed from no workload binding to sa:new")


# --- What the runtime records back --------------------------------------------------------------


def test_verified_times_set_first_once_and_move_last_forward(
    owner: User, notes: Integration, k8s: TrustedIssuer, make_integration: Callable[..., Integration]
) -> None:
    with time_machine.travel(T0 - timedelta(days=1), tick=False):
        bind(owner, notes, k8s, "sa:notes")
    unbound = make_integration(owner, name="Unbound")
    assert services.workload_bindings_verified({notes.pk: (T0, T0 + timedelta(minutes=1)), unbound.pk: (T0, T0)}) == 1
    services.workload_bindings_verified({notes.pk: (T0 + timedelta(hours=1), T0 + timedelta(hours=2))})
    # A late batch of older events moves nothing back.
    services.workload_bindings_verified({notes.pk: (T0 - timedelta(hours=1), T0 - timedelta(minutes=30))})
    binding = WorkloadBinding.objects.get()
    assert binding.first_verified_at == T0 and binding.last_verified_at == T0 + timedelta(hours=2)
    assert not AuditEvent.objects.filter(action__contains="verified").exists()


def test_tokens_older_than_the_bindings_last_change_do_not_prove_it(
    owner: User, notes: Integration, k8s: TrustedIssuer
) -> None:
    with time_machine.travel(T0, tick=False):
        bind(owner, notes, k8s, "sa:notes")
    assert services.workload_bindings_verified({notes.pk: (T0 - timedelta(minutes=5), T0 - timedelta(minutes=1))}) == 0
    services.workload_bindings_verified({notes.pk: (T0 - timedelta(minutes=5), T0 + timedelta(minutes=1))})
    binding = WorkloadBinding.objects.get()
    assert binding.first_verified_at == T0 and binding.last_verified_at == T0 + timedelta(minutes=1)


# --- Identity status ----------------------------------------------------------------------------


@pytest.fixture
def four(owner: User, k8s: TrustedIssuer, make_integration: Callable[..., Integration]) -> dict[str, Integration]:
    """One integration in each identity status."""
    proven = make_integration(owner, name="Proven")
    with time_machine.travel(T0 - timedelta(days=1), tick=False):
        bind(owner, proven, k8s, "sa:proven")
    services.workload_bindings_verified({proven.pk: (T0, T0)})
    bound = make_integration(owner, name="Bound")
    bind(owner, bound, k8s, "sa:bound")
    declared = make_integration(owner, name="Declared")
    nothing = make_integration(owner, name="Nothing", workload_identity="")
    return {"proven": proven, "bound": bound, "declared": declared, "none": nothing}


def test_identity_status_in_the_query_and_of_one_integration(owner: User, four: dict[str, Integration]) -> None:
    rows = selectors.identity_status_annotated(selectors.integrations_listed(owner)).order_by("name")
    assert {row.name: row.identity_status for row in rows} == {  # type: ignore[attr-defined]
        "Bound": "bound",
        "Declared": "declared",
        "Nothing": "none",
        "Proven": "proven",
    }
    for status, integration in four.items():
        assert list(Integration.objects.filter(selectors.identity_status_q(status))) == [integration]
        loaded = selectors.integration_detail(owner).get(pk=integration.pk)
        assert selectors.identity_status_of(loaded) == IdentityStatus(status)


# --- Pages --------------------------------------------------------------------------------------


def test_detail_page_shows_each_status(owner: User, web_as: Any, four: dict[str, Integration]) -> None:
    client = web_as(owner)
    texts = {
        "proven": "first verified",
        "bound": "Bound, never verified",
        "declared": "Declared only",
        "none": "cannot obtain tokens until bound",
    }
    for status, text in texts.items():
        page = client.get(reverse("inventory:detail", args=[four[status].pk])).content.decode()
        assert text in page, status
    proven = client.get(reverse("inventory:detail", args=[four["proven"].pk])).content.decode()
    assert "by Kubernetes prod" in proven and "sa:proven" in proven
    assert "Choose a trusted issuer" in proven, "owners get the binding form"


def test_binding_form_saves_and_shows_the_claims(
    owner: User, web_as: Any, notes: Integration, k8s: TrustedIssuer
) -> None:
    client = web_as(owner)
    response = client.post(
        reverse("inventory:workload-binding", args=[notes.pk]),
        {
            "issuer": k8s.pk,
            "subject": "repo:org/notes:environment:prod",
            "required_claims": "repository_id=123456\nref_protected:=true\n",
        },
    )
    assert response.status_code == 302
    binding = WorkloadBinding.objects.get()
    assert binding.required_claims == {"repository_id": "123456", "ref_protected": True}
    page = client.get(reverse("inventory:detail", args=[notes.pk])).content.decode()
    assert "repository_id = 123456" in page and "Bound, never verified" in page
    assert "ref_protected:=true" in page, "the form shows the binding to change it"


def test_a_refused_binding_comes_back_with_the_input(
    owner: User, web_as: Any, notes: Integration, spiffe: TrustedIssuer
) -> None:
    response = web_as(owner).post(
        reverse("inventory:workload-binding", args=[notes.pk]),
        {"issuer": spiffe.pk, "subject": "spiffe://other.org/ns/ai", "required_claims": "env=prod"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "trust domain example.org" in page and "spiffe://other.org/ns/ai" in page and "env=prod" in page
    bad_line = web_as(owner).post(
        reverse("inventory:workload-binding", args=[notes.pk]),
        {"issuer": spiffe.pk, "subject": "spiffe://example.org/x", "required_claims": "no equals sign"},
    )
    assert bad_line.status_code == 400 and "write path=value" in bad_line.content.decode()
    assert not WorkloadBinding.objects.exists()


def test_a_claim_value_nested_too_deep_is_a_field_error_not_a_crash(
    owner: User, web_as: Any, notes: Integration, k8s: TrustedIssuer
) -> None:
    response = web_as(owner).post(
        reverse("inventory:workload-binding", args=[notes.pk]),
        {"issuer": k8s.pk, "subject": "sa:notes", "required_claims": "env=prod\nlevel:=" + "[" * 100_000},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Line 2: after := give a number, true or false." in page and "sa:notes" in page
    assert not WorkloadBinding.objects.exists()


def test_remove_button(owner: User, web_as: Any, notes: Integration, k8s: TrustedIssuer) -> None:
    bind(owner, notes, k8s, "sa:notes")
    response = web_as(owner).post(reverse("inventory:workload-binding-remove", args=[notes.pk]), {"reason": "gone"})
    assert response.status_code == 302 and not WorkloadBinding.objects.exists()


def test_binding_pages_for_outsiders(
    client: Any, web_as: Any, owner: User, outsider: User, reviewer: User, notes: Integration, k8s: TrustedIssuer
) -> None:
    bind(owner, notes, k8s, "sa:notes")
    urls = [
        reverse("inventory:workload-binding", args=[notes.pk]),
        reverse("inventory:workload-binding-remove", args=[notes.pk]),
    ]
    post = {"issuer": k8s.pk, "subject": "sa:mine"}
    for url in urls:
        assert client.post(url, post).status_code == 302, "anonymous: to the login page"
    outsider_client = web_as(outsider)
    for url in urls:
        assert outsider_client.post(url, post).status_code == 404
    reviewer_client = web_as(reviewer)
    page = reviewer_client.get(reverse("inventory:detail", args=[notes.pk])).content.decode()
    assert "sa:notes" in page and "Choose a trusted issuer" not in page
    for url in urls:
        assert reviewer_client.post(url, post).status_code == 403
    assert WorkloadBinding.objects.get().subject == "sa:notes"


def test_list_filters_on_identity_in_a_fixed_number_of_queries(
    owner: User,
    web_as: Any,
    k8s: TrustedIssuer,
    four: dict[str, Integration],
    make_integration: Callable[..., Integration],
) -> None:
    client = web_as(owner)
    for status, integration in four.items():
        page = client.get(reverse("inventory:list"), {"identity": status}).content.decode()
        names = {name for name in ("Proven", "Bound", "Declared", "Nothing") if f">{name}</a>" in page}
        assert names == {integration.name}, status
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("inventory:list"), {"identity": "bound"})
    for n in range(6):
        more = make_integration(owner, name=f"More {n}")
        bind(owner, more, k8s, f"sa:more{n}")
    with CaptureQueriesContext(connection) as large:
        page = client.get(reverse("inventory:list"), {"identity": "bound"}).content.decode()
    assert "More 5" in page
    assert len(large.captured_queries) == len(small.captured_queries)


# --- API ----------------------------------------------------------------------------------------


def test_api_binds_reads_and_removes(
    owner: User, api_as: Callable[[User], Any], notes: Integration, k8s: TrustedIssuer
) -> None:
    client = api_as(owner)
    url = f"/api/v1/integrations/{notes.pk}/workload-binding/"
    response = client.put(
        url, {"issuer": "https://k8s.example.com", "subject": "sa:notes", "required_claims": {"n": 1}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "issuer": "https://k8s.example.com",
        "issuer_id": k8s.pk,
        "subject": "sa:notes",
        "required_claims": {"n": 1},
        "first_verified_at": None,
        "last_verified_at": None,
    }
    body = client.get(f"/api/v1/integrations/{notes.pk}/").json()
    assert body["identity_status"] == "bound" and body["workload_binding"]["subject"] == "sa:notes"
    assert body["workload_identity"] == "spiffe://example.org/ns/ai/sa/notes", "the declared text stays"
    by_id = client.put(url, {"issuer_id": k8s.pk, "subject": "sa:notes2"}, format="json")
    assert by_id.status_code == 200 and by_id.json()["required_claims"] == {}
    assert client.delete(url + "?reason=moved").status_code == 204
    assert AuditEvent.objects.get(action="integration.identity_unbound").reason == "moved"
    assert client.get(f"/api/v1/integrations/{notes.pk}/").json()["workload_binding"] is None
    assert client.delete(url).status_code == 404


def test_api_refusals_are_problem_details_with_field_errors(
    owner: User, api_as: Callable[[User], Any], notes: Integration, k8s: TrustedIssuer
) -> None:
    client = api_as(owner)
    url = f"/api/v1/integrations/{notes.pk}/workload-binding/"
    cases = [
        ({"subject": "sa:x"}, 422, "issuer"),
        ({"issuer": "https://k8s.example.com", "issuer_id": k8s.pk, "subject": "sa:x"}, 422, "issuer"),
        ({"issuer_id": k8s.pk}, 400, "subject"),
        ({"issuer_id": "1", "subject": "sa:x"}, 400, "issuer_id"),
        ({"issuer": "https://unknown.example.com", "subject": "sa:x"}, 422, "issuer"),
        ({"issuer_id": k8s.pk, "subject": "two words"}, 422, "subject"),
        ({"issuer_id": k8s.pk, "subject": "x" * 301}, 400, "subject"),
        ({"issuer_id": k8s.pk, "subject": "sa:x", "required_claims": {"a": [1]}}, 400, "required_claims"),
        ({"issuer_id": k8s.pk, "subject": "sa:x", "required_claims": {"a": None}}, 400, "required_claims"),
        ({"issuer_id": k8s.pk, "subject": "sa:x", "required_claims": {"a b": "x"}}, 422, "required_claims"),
        ({"issuer_id": k8s.pk, "subject": "sa:x", "required_claims": {"env\n": "x"}}, 422, "required_claims"),
        ({"issuer_id": k8s.pk, "subject": "sa:x", "required_claims": ["a"]}, 400, "required_claims"),
    ]
    for body, status, field in cases:
        response = client.put(url, body, format="json")
        assert response.status_code == status, (body, response.content)
        assert response["Content-Type"].startswith("application/problem+json")
        assert any(name.split(".")[0] == field for name in response.json()["errors"]), response.json()
    assert not WorkloadBinding.objects.exists()


def test_api_for_outsiders(
    api_client: Any,
    api_as: Callable[[User], Any],
    owner: User,
    outsider: User,
    reviewer: User,
    notes: Integration,
    k8s: TrustedIssuer,
) -> None:
    bind(owner, notes, k8s, "sa:notes")
    url = f"/api/v1/integrations/{notes.pk}/workload-binding/"
    body = {"issuer_id": k8s.pk, "subject": "sa:mine"}
    assert api_client.put(url, body, format="json").status_code in (401, 403)
    assert api_client.delete(url).status_code in (401, 403)
    assert api_as(outsider).put(url, body, format="json").status_code == 404
    assert api_as(outsider).delete(url).status_code == 404
    assert api_as(reviewer).put(url, body, format="json").status_code == 403
    assert api_as(reviewer).delete(url).status_code == 403
    assert api_as(reviewer).get(f"/api/v1/integrations/{notes.pk}/").json()["workload_binding"]["subject"] == "sa:notes"
    assert WorkloadBinding.objects.get().subject == "sa:notes"


def test_api_list_filters_on_identity_in_a_fixed_number_of_queries(
    owner: User,
    api_as: Callable[[User], Any],
    k8s: TrustedIssuer,
    four: dict[str, Integration],
    make_integration: Callable[..., Integration],
) -> None:
    client = api_as(owner)
    for status, integration in four.items():
        results = client.get("/api/v1/integrations/", {"identity": status}).json()["results"]
        assert [(row["name"], row["identity_status"]) for row in results] == [(integration.name, status)]
    assert client.get("/api/v1/integrations/", {"identity": "sideways"}).status_code == 400
    with CaptureQueriesContext(connection) as small:
        client.get("/api/v1/integrations/")
    for n in range(6):
        more = make_integration(owner, name=f"More {n}")
        bind(owner, more, k8s, f"sa:more{n}")
    with CaptureQueriesContext(connection) as large:
        rows = client.get("/api/v1/integrations/").json()["results"]
    assert sum(1 for row in rows if row["workload_binding"]) == 8
    assert len(large.captured_queries) == len(small.captured_queries)


def test_a_large_batch_of_verified_bindings_is_written_in_chunks(owner: User, k8s: TrustedIssuer) -> None:
    integrations = Integration.objects.bulk_create(
        [Integration(name=f"Bulk {n}", kind="agent", purpose="p", business_owner=owner) for n in range(1100)]
    )
    with time_machine.travel(T0 - timedelta(days=1), tick=False):
        WorkloadBinding.objects.bulk_create(
            [
                WorkloadBinding(integration=integ, issuer=k8s, subject=f"sa:{integ.pk}", claims_key="0" * 64)
                for integ in integrations
            ]
        )
    times = {integ.pk: (T0, T0 + timedelta(minutes=integ.pk % 7)) for integ in integrations}
    assert services.workload_bindings_verified(times) == 1100
    assert not WorkloadBinding.objects.filter(first_verified_at__isnull=True).exists()
    sample = WorkloadBinding.objects.get(integration=integrations[-1])
    assert sample.last_verified_at == T0 + timedelta(minutes=integrations[-1].pk % 7)
